"""Serve both stand-ins until interrupted.

python -m localdev [--alpaca-port N] [--secrets-port N] [--open-accounts]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from localdev import ALPACA_PORT, SECRETS_PORT
from localdev.alpaca_standin import AlpacaServer
from localdev.secret_manager_standin import SecretManagerServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alpaca-port", type=int, default=ALPACA_PORT)
    parser.add_argument("--secrets-port", type=int, default=SECRETS_PORT)
    parser.add_argument(
        "--open-accounts",
        action="store_true",
        help="any well-formed key pair opens a simulated paper account (PKBAD... is refused)",
    )
    args = parser.parse_args()
    try:
        alpaca = AlpacaServer(args.alpaca_port, open_accounts=args.open_accounts).start()
        secrets = SecretManagerServer(args.secrets_port).start()
    except OSError as error:
        print(f"localdev: cannot listen: {error}", file=sys.stderr)
        return 1
    print(f"localdev: alpaca {alpaca.url} secret-manager {secrets.host}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    alpaca.stop()
    secrets.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
