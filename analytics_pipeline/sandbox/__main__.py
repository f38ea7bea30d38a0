"""`python -m analytics_pipeline.sandbox [--host H] [--port P] [--faults JSON]`."""

from __future__ import annotations

import argparse

from analytics_pipeline.sandbox.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the platform API sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--faults", default=None, help="initial fault switches as JSON")
    args = parser.parse_args(argv)
    serve(args.host, args.port, faults_json=args.faults)


if __name__ == "__main__":
    main()
