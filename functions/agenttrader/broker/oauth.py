"""Ending a Connect with Alpaca token at Alpaca. Alpaca's OAuth reference documents only the
authorize page and the token endpoint; integrations revoke a token with an RFC 7009 request
(`POST /oauth/revoke`: `token`, `client_id`, `client_secret`, form-encoded; 200 whether or not
the token was still live). A person can always end an app's access themselves under OAuth
Apps in Alpaca's dashboard, which is what the product tells them when this does not succeed.
"""

from __future__ import annotations

import requests
from firebase_functions import logger

ATTEMPTS = 2


def revoke_token(url: str, client_id: str, client_secret: str, token: str) -> bool:
    """True when Alpaca confirmed the token is revoked; False when it could not be reached,
    refused, or redirected (never followed: the form holds the app's secret)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            answer = requests.post(
                url,
                data={"token": token, "client_id": client_id, "client_secret": client_secret},
                timeout=10,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            logger.warn("alpaca.revoke_unreachable", attempt=attempt, error=type(error).__name__)
            continue
        if answer.status_code == 200:
            return True
        logger.warn("alpaca.revoke_refused", attempt=attempt, status=answer.status_code)
        if answer.status_code < 500 and answer.status_code != 429:
            return False  # a refusal that another try would only repeat
    return False
