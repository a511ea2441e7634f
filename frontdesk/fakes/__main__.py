"""Run the three fakes until SIGTERM/SIGINT:

    python -m frontdesk.fakes --circle-port 8101 --kit-port 8102 --stripe-port 8103 [--seed F]

Prints one JSON line with the URLs on stdout once all three listen, so a parent process can
read it and go on.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from frontdesk.fakes import start_all

__all__ = ["main", "start_all"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m frontdesk.fakes", description=__doc__)
    parser.add_argument("--circle-port", type=int, default=0)
    parser.add_argument("--kit-port", type=int, default=0)
    parser.add_argument("--stripe-port", type=int, default=0)
    parser.add_argument("--seed", type=Path, help='JSON: {"circle": …, "kit": …, "stripe": …}')
    args = parser.parse_args(argv)

    seed: dict[str, Any] = {}
    if args.seed:
        seed = json.loads(args.seed.read_text(encoding="utf-8"))
    servers = start_all(args.circle_port, args.kit_port, args.stripe_port, seed=seed)

    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    print(json.dumps({name: server.url for name, server in servers.items()}), flush=True)
    while not done.wait(0.5):  # a timed wait keeps the main thread responsive to signals
        pass
    for server in servers.values():
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
