"""A throwaway PostgreSQL server from Debian's `postgresql` package, for tests and
benchmarks: a cluster in a temporary directory, on a port of the caller's, trusting
local connections, stopped and removed at the end. PostgreSQL refuses to run as root:
as root the server runs as the package's `postgres` user."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def binaries() -> Path | None:
    """The newest installed server's bin directory, or None when there is none."""
    for d in BIN_DIRS:
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    return None


class LocalPostgres:
    def __init__(self, port: int, root: Path | None = None) -> None:
        found = binaries()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed (make peers installs `postgresql`)")
        self.bin = found
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="tocsin-pg-", dir=root))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._user: str | None = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, timeout=120)

    def start(self) -> LocalPostgres:
        if self._user is not None:
            pw = pwd.getpwnam(self._user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "tocsin", "--auth=trust",
                  "--no-sync", "-E", "UTF8")  # fmt: skip
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                "-c fsync=on -c max_connections=50")  # fmt: skip
        try:
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w",
                      "-t", "60", "start")  # fmt: skip
        except subprocess.CalledProcessError:
            said = self.log.read_text()[-1500:] if self.log.exists() else "(no log)"
            raise RuntimeError(f"PostgreSQL did not start on port {self.port}: {said}") from None
        self._wait()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute("CREATE DATABASE tocsin")
        return self

    def _wait(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.admin_dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://tocsin@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://tocsin@127.0.0.1:{self.port}/tocsin"

    def new_database(self, name: str) -> str:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://tocsin@127.0.0.1:{self.port}/{name}"

    def stop_server(self) -> None:
        """Stop the server, keeping its data (an outage; `resume` starts it again)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)

    def resume(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w",
                  "-t", "60", "start")  # fmt: skip
        self._wait()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)
