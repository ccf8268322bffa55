"""The demo's web console: a projector into a SQLite store in the run's directory and the
API worker that serves /console, with a responder token made for this run only."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from pathlib import Path

from streams.api.auth import new_token

DEMO_USER = "alice"


def workers(workdir: Path, config: Path, port: int) -> tuple[list[tuple[str, list[str]]],
                                                            dict[str, str], str]:  # fmt: skip
    """(name, `tocsin run` arguments) of the two workers, their environment, and the
    token to log in with."""
    token, digest = new_token()
    tokens = workdir / "console-tokens.yaml"
    tokens.write_text(f"api_tokens:\n  - {{user: {DEMO_USER}, role: responder, "
                      f"sha256: {digest}, name: demo}}\n")  # fmt: skip
    env = {"TOCSIN_STORE_PATH": str(workdir / "store.sqlite3")}
    return [
        ("projector", ["projector", "--health-port", "0"]),
        ("api", ["api", "--config", str(config), "--config", str(tokens),
                 "--host", "127.0.0.1", "--port", str(port)]),
    ], env, token  # fmt: skip


def hold(url: str, token: str, echo: Callable[[str], None]) -> None:
    """Keep the console reachable until Ctrl-C (or SIGTERM: the workers are stopped either
    way, since they run in sessions of their own and would outlive the demo)."""
    echo(f"\nweb console: {url}/console/  (log in with the token {token})")
    echo("the workers keep running for the console: Ctrl-C to stop")
    stop = threading.Event()
    before = {sig: signal.signal(sig, lambda *_: stop.set())
              for sig in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
    try:
        while not stop.wait(1):
            pass
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    echo("stopping the workers")
