"""Write what the served page needs for one project, from the files `firebase deploy` reads;
`make deploy` runs it before the preflight:

- the page's App Check settings (web/dist/app-check.json) from the APP_CHECK_SITE_KEY param;
- the deploy's Firebase config (firebase.deploy.json): firebase.json with a Content Security
  Policy that lets the page talk to this project's own hosts only. firebase.json itself keeps
  the emulators' policy (loopback addresses), which never reaches a real project.

    functions/venv/bin/python scripts/page_settings.py --project my-firebase-project
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from preflight import ROOT, env_files

from agenttrader.core import config

SETTINGS = ROOT / "web" / "dist" / "app-check.json"
DEPLOY_CONFIG = ROOT / "firebase.deploy.json"
CSP = "Content-Security-Policy"


def site_key(project: str) -> str:
    name = config.APP_CHECK_SITE_KEY.name
    return env_files(project).get(name, config.APP_CHECK_SITE_KEY.default or "")


def connect_sources(project: str) -> list[str]:
    """Every host the page talks to on a real project, by name: Firestore, Auth (sign-in and
    its token refresh), App Check and reCAPTCHA, and this project's functions."""
    return [
        "'self'",
        "https://firestore.googleapis.com",
        "https://identitytoolkit.googleapis.com",
        "https://securetoken.googleapis.com",
        "https://content-firebaseappcheck.googleapis.com",
        f"https://{config.REGION}-{project}.cloudfunctions.net",
        "https://www.google.com/recaptcha/",
    ]


def production_policy(emulated: str, project: str) -> str:
    """The emulators' policy with its connect-src replaced by this project's own hosts."""
    directives = []
    for directive in (part.strip() for part in emulated.split(";") if part.strip()):
        if directive.split()[0] == "connect-src":
            directives.append(" ".join(["connect-src", *connect_sources(project)]))
        else:
            directives.append(directive)
    return "; ".join(directives)


def deploy_config(project: str) -> dict[str, Any]:
    """firebase.json as deployed to `project`."""
    deployed: dict[str, Any] = json.loads((ROOT / "firebase.json").read_text())
    deployed.pop("emulators", None)
    for rule in deployed["hosting"].get("headers", []):
        for header in rule["headers"]:
            if header["key"] == CSP:
                header["value"] = production_policy(header["value"], project)
    return deployed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", required=True)
    args = parser.parse_args()
    SETTINGS.write_text(json.dumps({"siteKey": site_key(args.project)}) + "\n")
    print(f"page: App Check settings written to {SETTINGS.relative_to(ROOT)}")
    DEPLOY_CONFIG.write_text(json.dumps(deploy_config(args.project), indent=2) + "\n")
    print(f"page: the deploy's config (this project's hosts only) in {DEPLOY_CONFIG.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
