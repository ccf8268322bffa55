"""A real Zabbix 6.0 from Debian's packages (`make peers`) in a temporary directory:
PostgreSQL 15 with Zabbix's schema, zabbix_server, zabbix_agentd, and the PHP frontend
(whose api_jsonrpc.php is Zabbix's configuration API) on PHP's built-in web server.
Every process listens on 127.0.0.1 on a free port and is stopped at the end.

PostgreSQL and zabbix_server refuse to run as root: as root they run as the `zabbix`
user the package created. Debian's frontend reads its database settings from a fixed
path (/etc/zabbix/zabbix.conf.php); the test's copy of the frontend (hard links, so
nothing is copied) reads them from its own directory instead, the only change.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


def _pg_bin() -> Path:
    """Debian's newest installed PostgreSQL (15 on bookworm)."""
    versions = [p.parent.parent.name for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    newest = max((v for v in versions if v.isdigit()), key=int, default="15")
    return Path(f"/usr/lib/postgresql/{newest}/bin")


PG_BIN = _pg_bin()
SCHEMA = Path("/usr/share/zabbix-server-pgsql")
FRONTEND = Path("/usr/share/zabbix")
CONFIG_CLASS = "include/classes/core/CConfigFile.php"
DEBIAN_CONFIG = "'/etc/zabbix/zabbix.conf.php'"


def missing() -> str | None:
    """Why the stack cannot run here, or None."""
    needs = {"zabbix_server": shutil.which("zabbix_server"),
             "zabbix_agentd": shutil.which("zabbix_agentd"), "php": shutil.which("php"),
             "initdb": (PG_BIN / "initdb").exists() or None,
             "schema": (SCHEMA / "schema.sql.gz").exists() or None,
             "frontend": (FRONTEND / "api_jsonrpc.php").exists() or None}  # fmt: skip
    absent = [name for name, found in needs.items() if not found]
    if absent:
        return f"Zabbix peers missing ({', '.join(absent)}): make peers"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("zabbix")
        except KeyError:
            return "running as root and there is no zabbix user to run PostgreSQL as"
    return None


def free_port(start: int = 15050, end: int = 16000) -> int:
    """A free port below 32768: Zabbix refuses ListenPort values above 32767."""
    for port in range(start, end):
        if port in _TAKEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _TAKEN.add(port)
        return port
    raise RuntimeError(f"no free port in {start}-{end}")


_TAKEN: set[int] = set()


class ZabbixStack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pg_port, self.server_port = free_port(), free_port()
        self.agent_port, self.web_port = free_port(), free_port()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.api = f"http://127.0.0.1:{self.web_port}/api_jsonrpc.php"
        self.auth: str | None = None
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "zabbix", "--"]
            os.chown(root, pwd.getpwnam("zabbix").pw_uid, -1)
        root.chmod(0o755)

    # -- processes ---------------------------------------------------------------------

    def _run(self, *cmd: str, stdin: bytes | None = None, timeout: float = 120) -> None:
        done = subprocess.run([*self._as, *cmd], input=stdin, capture_output=True,
                              timeout=timeout, check=False)  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"{cmd[0]} failed: {done.stderr.decode()[-2000:]}")

    def _spawn(self, name: str, *cmd: str, as_service: bool = True) -> None:
        log = (self.root / f"{name}.out").open("ab")
        prefix = self._as if as_service else []
        self.procs.append(subprocess.Popen([*prefix, *cmd], stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True))  # fmt: skip

    def start(self) -> ZabbixStack:
        self._postgres()
        self._server_and_agent()
        self._frontend()
        self.login()
        return self

    def _postgres(self) -> None:
        data = self.root / "pg"
        self._run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "zabbix", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        self._spawn("postgres", str(PG_BIN / "postgres"), "-D", str(data), "-p",
                    str(self.pg_port), "-k", str(self.root), "-c", "listen_addresses=127.0.0.1",
                    "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "wal_level=minimal",
                    "-c", "max_wal_senders=0", "-c", "full_page_writes=off")  # fmt: skip
        psql = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "zabbix",
                "-q", "-v", "ON_ERROR_STOP=1"]  # fmt: skip
        self._wait(lambda: subprocess.run([*psql, "-c", "select 1", "postgres"],
                                          capture_output=True).returncode == 0,
                   120, "PostgreSQL")  # fmt: skip
        self._run(*psql, "-c", "create database zabbix", "postgres")
        sql = b"".join(gzip.decompress((SCHEMA / f"{part}.sql.gz").read_bytes())
                       for part in ("schema", "images", "data"))  # fmt: skip
        # some 10 s on a quiet machine; minutes while other test files load it too
        self._run(*psql, "zabbix", stdin=sql, timeout=900)

    def _server_and_agent(self) -> None:
        server = self.root / "server.conf"
        # on a loaded machine an agent's answer can take seconds: it is waited for longer,
        # and one that came too late is asked again within seconds, not the defaults'
        # 15 s while unreachable and 60 s once unavailable
        server.write_text(f"""ListenIP=127.0.0.1
ListenPort={self.server_port}
LogFile={self.root}/server.log
LogFileSize=0
PidFile={self.root}/server.pid
SocketDir={self.root}
DBHost=127.0.0.1
DBPort={self.pg_port}
DBName=zabbix
DBUser=zabbix
CacheUpdateFrequency=1
StartPollers=2
StartPollersUnreachable=1
StartTrappers=1
StartPingers=0
StartDiscoverers=0
StartHTTPPollers=0
StartAlerters=1
StartEscalators=1
StartLLDProcessors=1
StartPreprocessors=1
StartDBSyncers=1
StartHistoryPollers=1
StartTimers=1
HousekeepingFrequency=0
Timeout=15
UnreachableDelay=1
UnavailableDelay=2
""")
        agent = self.root / "agent.conf"
        agent.write_text(f"""ListenIP=127.0.0.1
ListenPort={self.agent_port}
Server=127.0.0.1
ServerActive=
Hostname=tocsin-agent
LogFile={self.root}/agent.log
LogFileSize=0
PidFile={self.root}/agent.pid
StartAgents=2
""")
        self._spawn("server", "zabbix_server", "-f", "-c", str(server))
        self._spawn("agent", "zabbix_agentd", "-f", "-c", str(agent))
        self._wait(lambda: _listening(self.server_port), 180, "zabbix_server")
        self._wait(lambda: _listening(self.agent_port), 120, "zabbix_agentd")

    def _frontend(self) -> None:
        web = self.root / "web"
        try:
            shutil.copytree(FRONTEND, web, copy_function=os.link, symlinks=True)
        except OSError:  # another file system: copy instead
            shutil.rmtree(web, ignore_errors=True)
            shutil.copytree(FRONTEND, web, symlinks=True)
        conf = web / "conf" / "zabbix.conf.php"
        # a new file replaces the hard link: /usr/share/zabbix stays as it is
        source = (FRONTEND / CONFIG_CLASS).read_text()
        assert DEBIAN_CONFIG in source, "the frontend no longer reads /etc/zabbix/zabbix.conf.php"
        patched = web / CONFIG_CLASS
        patched.unlink()
        patched.write_text(source.replace(DEBIAN_CONFIG, f"'{conf}'"))
        conf.write_text(f"""<?php
$DB['TYPE'] = 'POSTGRESQL';
$DB['SERVER'] = '127.0.0.1';
$DB['PORT'] = '{self.pg_port}';
$DB['DATABASE'] = 'zabbix';
$DB['USER'] = 'zabbix';
$DB['PASSWORD'] = '';
$DB['SCHEMA'] = '';
$DB['ENCRYPTION'] = false;
$DB['KEY_FILE'] = '';
$DB['CERT_FILE'] = '';
$DB['CA_FILE'] = '';
$DB['VERIFY_HOST'] = false;
$DB['CIPHER_LIST'] = '';
$DB['VAULT_URL'] = '';
$DB['VAULT_DB_PATH'] = '';
$DB['VAULT_TOKEN'] = '';
$DB['DOUBLE_IEEE754'] = true;
$ZBX_SERVER = '127.0.0.1';
$ZBX_SERVER_PORT = '{self.server_port}';
$ZBX_SERVER_NAME = 'tocsin-test';
$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
""")
        self._spawn("php", "php", "-d", "memory_limit=512M", "-d", "post_max_size=16M",
                    "-S", f"127.0.0.1:{self.web_port}", "-t", str(web),
                    as_service=False)  # fmt: skip
        self._wait(lambda: _listening(self.web_port), 120, "the PHP frontend")

    def stop(self) -> None:
        """One process at a time, the database last (the server's children still write
        to it while they stop); then whatever of a process group is left is killed, so
        no child of zabbix_server outlives the test."""
        for proc in reversed(self.procs):
            # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for clients)
            stop = signal.SIGINT if proc is self.procs[0] else signal.SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, stop)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _wait(self, ready: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{what}: a process exited\n{self.logs()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} not ready within {timeout:g}s\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for name in ("server.log", "agent.log", "postgres.out", "server.out"):
            path = self.root / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    def reload_config(self) -> None:
        """Make the server read the configuration the API just wrote, now."""
        self._run("zabbix_server", "-c", str(self.root / "server.conf"), "-R",
                  "config_cache_reload")  # fmt: skip

    # -- the API -------------------------------------------------------------------------

    def call(self, method: str, params: Any) -> Any:
        doc: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
        if self.auth is not None and method != "user.login":
            doc["auth"] = self.auth
        answer = httpx.post(self.api, json=doc, timeout=60,
                            headers={"Content-Type": "application/json-rpc"}).json()  # fmt: skip
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def login(self) -> None:
        self.auth = self.call("user.login", {"username": "Admin", "password": "zabbix"})


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def zabbix_stack() -> Iterator[ZabbixStack]:
    root = Path(tempfile.mkdtemp(prefix="tocsin-zabbix-"))
    stack = ZabbixStack(root)
    try:
        yield stack.start()
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)
