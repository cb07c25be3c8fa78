"""Every function `functions/main.py` deploys and the service account it names, as JSON
(`{"name": "account@"}`), read the way the deploy reads them.

    functions/venv/bin/python scripts/list_functions.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"


def main() -> int:
    os.chdir(FUNCTIONS)  # where the deploy loads main.py from
    project = os.environ.setdefault("GCLOUD_PROJECT", "demo-agenttrader")
    # main.py starts the Admin SDK's app; listing never uses it, so its settings are the least
    os.environ["FIREBASE_CONFIG"] = json.dumps({"projectId": project})
    from firebase_functions.private import serving

    declared = {
        name: getattr(function.__firebase_endpoint__, "serviceAccountEmail", None)
        for name, function in serving.get_functions().items()
    }
    print(json.dumps(declared, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
