"""The sandbox in a process of its own, driven over its admin endpoints.

The platforms answer from their own machines: a sandbox in the measured process would spend the
pipeline's CPU and hold its GIL while building replies (a third of the process's CPU in the
daily scenario), and bill that to the pipeline. The harness therefore runs it here, in a child
process started with `RemoteSandbox(posts_per_day)`, and only talks HTTP to it:
`POST /_sandbox/faults` (latency), `POST /_sandbox/reset` (log), `GET /_sandbox/requests/count`.

    .venv/bin/python -m benchmarks.remote_sandbox --posts-per-day 3   # prints its URL, then
                                                                       # serves until stdin closes
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from types import TracebackType

import requests

_START_TIMEOUT_S = 60.0
_ADMIN_TIMEOUT_S = 30.0


class RemoteSandbox:
    """A sandbox child process; a context manager (the child stops when it exits)."""

    def __init__(self, posts_per_day: int) -> None:
        command = [sys.executable, "-m", "benchmarks.remote_sandbox"]
        command += ["--posts-per-day", str(posts_per_day)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.close()
            raise RuntimeError(f"the sandbox process did not start (said {self.base_url!r})")
        self._http = requests.Session()

    def _admin(self, method: str, path: str, json: object = None) -> dict:
        url = f"{self.base_url}/_sandbox/{path}"
        reply = self._http.request(method, url, json=json, timeout=_ADMIN_TIMEOUT_S)
        reply.raise_for_status()
        return reply.json()

    def request_count(self) -> int:
        return int(self._admin("GET", "requests/count")["count"])

    def set_latency(self, milliseconds: int) -> None:
        self._admin("POST", "faults", {"latency_ms": milliseconds})

    def clear_log(self) -> None:
        """Empties the request log, keeping the latency (reset clears every switch)."""
        latency = self._admin("GET", "faults")["latency_ms"]
        self._admin("POST", "reset")
        self.set_latency(latency)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()  # the child serves until its stdin closes
        try:
            self._process.wait(timeout=_START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def __enter__(self) -> RemoteSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def main(argv: Sequence[str] | None = None) -> int:
    from analytics_sandbox.data import SandboxConfig
    from analytics_sandbox.server import SandboxServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--posts-per-day", type=int, default=3)
    args = parser.parse_args(argv)
    config = SandboxConfig(posts_per_day=(args.posts_per_day, args.posts_per_day))
    with SandboxServer(config=config) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or exits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
