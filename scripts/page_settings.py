"""Write the page's App Check settings (web/dist/app-check.json) from the APP_CHECK_SITE_KEY
param in the files `firebase deploy` reads; `make deploy` runs it before the preflight.

    functions/venv/bin/python scripts/page_settings.py --project my-firebase-project
"""

from __future__ import annotations

import argparse
import json

from preflight import ROOT, env_files

from agenttrader.core import config

SETTINGS = ROOT / "web" / "dist" / "app-check.json"


def site_key(project: str) -> str:
    name = config.APP_CHECK_SITE_KEY.name
    return env_files(project).get(name, config.APP_CHECK_SITE_KEY.default or "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", required=True)
    args = parser.parse_args()
    SETTINGS.write_text(json.dumps({"siteKey": site_key(args.project)}) + "\n")
    print(f"page: App Check settings written to {SETTINGS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
