"""A worker told to stop while Kafka is away stops cleanly: a rollout or a scale-down
during a broker outage must not read as a crash (exit status 0, no traceback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_processor_stops_cleanly_while_the_broker_is_away(tmp_path: Path) -> None:
    env = {**os.environ, "TOCSIN_BOOTSTRAP_SERVERS": "127.0.0.1:1", "TOCSIN_LOG_FORMAT": "json"}
    err = tmp_path / "stderr"
    with err.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streams.cli.main", "run", "processor",
             "--rules", str(ROOT / "rules" / "default.yaml"), "--health-port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            # started: the processor is waiting for the transaction coordinator
            while b"processor_started" not in err.read_bytes():
                assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = err.read_text()
    assert rc == 0, text
    assert "Traceback" not in text, text
    assert "stopped_before_start" in text
