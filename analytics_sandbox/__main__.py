"""`analytics-sandbox` (or `python -m analytics_sandbox`): serve the sandbox, or run the demo.

- `analytics-sandbox serve [--host H] [--port P] [--faults JSON]`: the four platform APIs;
- `analytics-sandbox demo [--days D] [--pages N]`: the whole pipeline end to end on SQLite and a
  sandbox of its own, then a summary (the README's first command).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="analytics-sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="Serve the local imitation of the platform APIs.")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--faults", default=None, help="initial fault switches as JSON")
    demo = sub.add_parser("demo", help="End to end on SQLite + sandbox, then a summary.")
    demo.add_argument("--days", type=int, default=7, choices=range(1, 29), metavar="1..28")
    demo.add_argument("--pages", type=int, default=3, choices=range(1, 51), metavar="1..50")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from analytics_sandbox.server import serve

        print(f"Sandbox APIs on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
        serve(args.host, args.port, faults_json=args.faults)
        return 0
    from analytics_pipeline.cli import run_reporting_errors
    from analytics_sandbox.demo import run_demo

    return run_reporting_errors("analytics-sandbox demo", lambda: run_demo(args.days, args.pages))


if __name__ == "__main__":
    sys.exit(main())
