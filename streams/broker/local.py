"""The local single-node KRaft Kafka broker for development, tests, CI and the demo.

Jars come from Maven Central through ``mvn`` (resolved once into the project's
``.broker/`` cache), storage is formatted for one combined broker+controller
node, and ``kafka.Kafka`` runs on 127.0.0.1 with a small heap. Start, stop and
status are idempotent and guarded by a pidfile that is checked against the
process command line, so a stale pidfile (reboot, kill -9) is harmless.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from schemas import BrokerError
from streams.broker import secure
from streams.broker.secure import BrokerSecurity
from streams.kafka import broker_reachable
from streams.settings import KafkaSettings, SaslMechanism

KAFKA_VERSION = "4.1.1"
_READY_MARKER = ".complete"


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    reachable: bool
    bootstrap: str
    log_file: Path

    def __str__(self) -> str:
        if not self.running and self.reachable:
            home = self.log_file.parent.parent
            return f"a broker not started from {home} answers on {self.bootstrap}"
        state = "running" if self.running else "stopped"
        extra = f" pid={self.pid}" if self.pid else ""
        answer = "answers metadata" if self.reachable else "not answering"
        return f"broker {state}{extra} on {self.bootstrap} ({answer}); log: {self.log_file}"


class LocalBroker:
    def __init__(
        self,
        home: Path | None = None,
        port: int = 9092,
        controller_port: int | None = None,
        heap: str = "512m",
        version: str = KAFKA_VERSION,
        security: BrokerSecurity | None = None,
        node_id: int = 1,
        voters: str | None = None,
        cluster_id: str | None = None,
        replicas: int = 1,
    ) -> None:
        self.home = (home or Path(os.environ.get("TOCSIN_BROKER_HOME", ".broker"))).resolve()
        self.port = port
        self.controller_port = controller_port or port + 1
        self.heap = heap
        self.version = version
        self.lib_dir = self.home / "lib" / version
        # this object started the broker process (not one found running): only then is
        # stopping it the starter's business
        self.launched = False
        # a user id of its own (root only): what a test's iptables rule tells this node's
        # traffic apart by, to cut it off from the other nodes but not from the clients
        self.uid: int | None = None
        self.data_dir = self.home / f"data-{port}"
        self.log_dir = self.home / f"logs-{port}"
        self.pid_file = self.home / f"broker-{port}.pid"
        self.properties = self.home / f"server-{port}.properties"
        # None: one PLAINTEXT listener; else TLS listeners and SASL users (secure.py)
        self.security = security
        self.tls_dir = self.home / f"tls-{port}"
        self.secrets_dir = self.home / f"secrets-{port}"
        # one node of a cluster (cluster.py): its id, the controller quorum, the id its
        # storage is formatted with, and how many copies the cluster's own topics keep
        self.node_id = node_id
        self.voters = voters or f"{node_id}@127.0.0.1:{self.controller_port}"
        self.cluster_id = cluster_id
        self.replicas = replicas

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "server.log"

    def client_settings(self, protocol: secure.Protocol | None = None, user: str | None = None,
                        mechanism: SaslMechanism = "SCRAM-SHA-512",
                        **overrides: object) -> KafkaSettings:  # fmt: skip
        """Settings that reach this broker: its plain listener, or one of its secured
        listeners (the first by default) with a user of the security's users."""
        if self.security is None:
            return KafkaSettings(bootstrap_servers=self.bootstrap, **overrides)  # type: ignore[arg-type]
        return secure.client_settings(self.security, self.port, self.controller_port,
                                      secure.TlsFiles(self.tls_dir), protocol, user, mechanism,
                                      **overrides)  # fmt: skip

    # -- jars -------------------------------------------------------------------

    def ensure_jars(self) -> Path:
        """Resolve the broker jars, and Kafka's tools, with Maven once; later calls reuse
        the cache."""
        # a cache resolved before the tools were in the pom lacks them: Maven adds only
        # what is missing, and a broker running from the cache keeps the jars it loaded
        tools = any(self.lib_dir.glob(f"kafka-tools-{self.version}.jar"))
        if (self.lib_dir / _READY_MARKER).exists() and tools:
            return self.lib_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                "Maven (mvn) is not installed: it resolves the Kafka broker jars from "
                "Maven Central. Install it (Debian: apt-get install maven) and retry."
            )
        self._require_java()
        self.lib_dir.mkdir(parents=True, exist_ok=True)
        pom = self.home / "pom.xml"
        template = resources.files("streams.broker").joinpath("pom.xml").read_text()
        pom.write_text(template.replace("@KAFKA_VERSION@", self.version))
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={self.lib_dir}",
            "-DincludeScope=runtime",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BrokerError(
                f"Maven could not resolve org.apache.kafka:kafka_2.13:{self.version} "
                f"(exit {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
            )
        jars = list(self.lib_dir.glob("*.jar"))
        if not any(j.name.startswith("kafka_2.13-") for j in jars):
            raise BrokerError(f"Maven finished but no kafka_2.13 jar is in {self.lib_dir}")
        (self.lib_dir / _READY_MARKER).write_text(f"{len(jars)} jars\n")
        return self.lib_dir

    def tool(self, main_class: str, *args: str) -> list[str]:
        """The command line of one of Kafka's own tools (a class of kafka-tools, such as
        `org.apache.kafka.tools.reassign.ReassignPartitionsCommand`) on the broker's jars."""
        return [self._require_java(), "-cp", f"{self.ensure_jars()}/*", main_class, *args]

    # -- lifecycle --------------------------------------------------------------

    def status(self) -> BrokerStatus:
        pid = self._live_pid()
        reachable = broker_reachable(self.client_settings(), timeout=2.0)
        return BrokerStatus(pid is not None, pid, reachable, self.bootstrap, self.log_file)

    def start(self, timeout: float = 120.0) -> BrokerStatus:
        pid = self.launch()
        if pid is not None:
            self._wait_ready(pid, timeout)
        return self.status()

    def launch(self) -> int | None:
        """Start the broker process without waiting for it to answer (a cluster's nodes
        answer only once a quorum of them runs): its pid, or None when a broker not
        started from here already serves the port."""
        pid = self._live_pid()
        if pid is not None:
            return pid
        self.pid_file.unlink(missing_ok=True)  # stale: the process is gone
        if broker_reachable(self.client_settings(), timeout=2.0):
            # another checkout's broker (or the user's own) already serves this port:
            # use it rather than fail on a port clash
            return None
        java = self._require_java()
        lib = self.ensure_jars()
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._write_properties()
        self._format_storage(java, lib)
        stdout = (self.log_dir / "stdout.log").open("ab")
        as_user: list[str] = []
        if self.uid is not None:
            for path in (self.data_dir, self.log_dir, self.properties):
                subprocess.run(["chown", "-R", f"{self.uid}:{self.uid}", str(path)], check=True)
            as_user = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]
        proc = subprocess.Popen(
            [
                *as_user,
                java,
                f"-Xmx{self.heap}",
                f"-Xms{self.heap}",
                # Kafka's own start script's collector settings (kafka-run-class.sh): short
                # young pauses; G1's default 200 ms goal stalled commits by 40-150 ms
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-XX:InitiatingHeapOccupancyPercent=35",
                "-XX:+ExplicitGCInvokesConcurrent",
                *self._log_flags(),
                "-cp",
                f"{lib}/*",
                "kafka.Kafka",
                str(self.properties),
            ],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the CLI that started it, like a daemon
        )
        self.pid_file.write_text(f"{proc.pid}\n")
        self.launched = True
        return proc.pid

    def wait_ready(self, timeout: float = 120.0) -> None:
        pid = self._live_pid()
        if pid is None:
            raise BrokerError(f"the broker on {self.bootstrap} is not running; see {self.log_file}")
        self._wait_ready(pid, timeout)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker; True if one was running. Stopping a stopped broker is fine."""
        pid = self._live_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """kill -9 the broker (fault tests)."""
        pid = self._live_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)

    def reset(self) -> None:
        """Stop and delete all data (not the jar cache)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- internals --------------------------------------------------------------

    def _require_java(self) -> str:
        java = shutil.which("java", path=_java_path())
        if java is None:
            raise BrokerError(
                "Java is not installed: the Kafka broker needs a JRE 17+ "
                "(Debian: apt-get install openjdk-17-jre-headless), or set JAVA_HOME."
            )
        return java

    def _log_flags(self) -> list[str]:
        config = resources.files("streams.broker").joinpath("log4j2.properties")
        return [
            f"-Dlog4j2.configurationFile={config}",
            f"-Dtocsin.log.dir={self.log_dir}",
            f"-Dkafka.logs.dir={self.log_dir}",
        ]

    def _write_properties(self) -> None:
        c = self.controller_port
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{c}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "6",
            "offsets.topic.replication.factor": str(self.replicas),
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": str(self.replicas),
            "transaction.state.log.min.isr": str(min(2, self.replicas)),
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": str(self.replicas),
            "share.coordinator.state.topic.min.isr": str(min(2, self.replicas)),
            # topics come from the catalog (or faust), never from a typo in a producer
            # tests and the demo start consumers right away: do not wait 3 s to rebalance
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.retention.check.interval.ms": "60000",
            "log.cleaner.dedupe.buffer.size": "16777216",
        }
        if self.security is not None:
            tls = secure.ensure_tls(self.tls_dir)
            props |= secure.properties(self.security, self.port, c, tls, self._broker_password())
        self.properties.touch(mode=0o600)  # the JAAS entries hold passwords
        self.properties.chmod(0o600)
        self.properties.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def _broker_password(self) -> str:
        """The broker's own SASL password: storage is formatted with it once and every
        later start must log in with the same one."""
        return self.user_password(secure.BROKER_USER)

    def password_file(self, user: str) -> Path:
        return self.secrets_dir / f"{user}.password"

    def user_password(self, user: str) -> str:
        """A password made once for `user` and kept (mode 0600) beside the broker's data."""
        path = self.password_file(user)
        if not path.exists():
            self.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.touch(mode=0o600)
            path.write_text(secure.new_password())
        return path.read_text().strip()

    def client_environment(self, user: str) -> dict[str, str]:
        """TOCSIN_* variables that reach this broker as `user`, the password by file."""
        env = self.client_settings(user=user).environment()
        for key in ("TOCSIN_TOPIC_PREFIX", "TOCSIN_PARTITIONS", "TOCSIN_REPLICATION_FACTOR",
                    "TOCSIN_MIN_INSYNC_REPLICAS", "TOCSIN_CLIENT_ID"):  # fmt: skip
            env.pop(key, None)
        if env.pop("TOCSIN_SASL_PASSWORD", None) is not None:
            env["TOCSIN_SASL_PASSWORD_FILE"] = str(self.password_file(user))
        return env

    def _passwords(self) -> list[str]:
        if self.security is None:
            return []
        return [self._broker_password(), *self.security.users.values()]

    def _listeners(self) -> str:
        return ",".join(self.security.protocols) if self.security else "PLAINTEXT"

    def _format_storage(self, java: str, lib: Path) -> None:
        marker = self.data_dir / "tocsin-listeners"
        if (self.data_dir / "meta.properties").exists():
            formatted = marker.read_text().strip() if marker.exists() else "PLAINTEXT"
            if formatted != self._listeners():
                raise BrokerError(
                    f"{self.data_dir} belongs to a {formatted} broker, not {self._listeners()}: "
                    f"`tocsin broker reset --port {self.port}` first (deletes its data)"
                )
            return
        scram = (secure.scram_arguments(self.security, self._broker_password())
                 if self.security else [])  # fmt: skip
        cluster_id = self.cluster_id or new_cluster_id()
        proc = subprocess.run(
            [
                java,
                "-Xmx256m",
                *self._log_flags(),
                "-cp",
                f"{lib}/*",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(self.properties),
                *scram,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            output = proc.stdout + proc.stderr
            for password in self._passwords():
                output = output.replace(password, "***")
            raise BrokerError(f"formatting KRaft storage failed:\n{output}")
        marker.write_text(self._listeners() + "\n")

    def _wait_ready(self, pid: int, timeout: float) -> None:
        settings = self.client_settings()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(pid):
                raise BrokerError(
                    f"the broker exited during start-up; see {self.log_file} and "
                    f"{self.log_dir / 'stdout.log'}:\n{_tail(self.log_dir / 'stdout.log')}"
                )
            if broker_reachable(settings, timeout=2.0):
                return
            time.sleep(0.5)
        raise BrokerError(f"the broker did not answer within {timeout:.0f}s; see {self.log_file}")

    def _live_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if not _alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if b"kafka.Kafka" in cmdline else None


def new_cluster_id() -> str:
    """A random KRaft cluster id in Kafka's own format (base64url of 16 bytes).

    Kafka's Uuid.randomUuid() never returns an id starting with '-', because the
    storage tool's argument parser would read it as an option (about 1 start in 64
    failed with "--cluster-id: expected one argument" before this rule)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _java_path() -> str:
    java_home = os.environ.get("JAVA_HOME")
    path = os.environ.get("PATH", "")
    return f"{java_home}/bin:{path}" if java_home else path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def port_of(bootstrap: str) -> int:
    """The port of the first bootstrap server, the local broker's default port."""
    first = bootstrap.split(",")[0]
    return int(first.rsplit(":", 1)[1]) if ":" in first else 9092
