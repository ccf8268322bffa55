"""TLS listeners and SASL users for the local broker (tests and trying a secured setup).

`BrokerSecurity` lists the listeners to secure: the first on the broker's port, the
others on the ports after its controller (port+2, port+3, ...). A CA, a broker
certificate for 127.0.0.1/localhost and a client certificate are made with `openssl`
once per broker home and port; the broker reads them as PEM (no JKS). SASL users
get SCRAM-SHA-256 and SCRAM-SHA-512 credentials written at storage format time (KRaft
keeps them in the metadata log) and a PLAIN entry in the listener's JAAS config.
An SSL listener requires a client certificate signed by the CA (mutual TLS).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from schemas import BrokerError
from streams.settings import KafkaSettings, SaslMechanism

Protocol = Literal["SSL", "SASL_PLAINTEXT", "SASL_SSL"]
MECHANISMS: tuple[SaslMechanism, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
BROKER_USER = "tocsin-broker"  # the broker's own login on its SASL inter-broker listener


@dataclass(frozen=True)
class BrokerSecurity:
    protocols: tuple[Protocol, ...] = ("SASL_SSL",)
    # user -> password; every user may log in with PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512
    users: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.protocols or len(set(self.protocols)) != len(self.protocols):
            raise ValueError("BrokerSecurity needs distinct protocols, at least one")
        if any(p.startswith("SASL") for p in self.protocols) and not self.users:
            raise ValueError("a SASL listener needs at least one user")


@dataclass(frozen=True)
class TlsFiles:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def broker(self) -> Path:  # private key (PKCS#8) and certificate chain, for Kafka
        return self.directory / "broker.pem"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"


def ensure_tls(directory: Path) -> TlsFiles:
    """A CA, the broker's certificate and a client certificate, made once."""
    files = TlsFiles(directory)
    if files.ca.exists() and files.broker.exists() and files.client_key.exists():
        return files
    openssl = shutil.which("openssl")
    if openssl is None:
        raise BrokerError("openssl is not installed: the secured local broker makes its "
                          "certificates with it (Debian: apt-get install openssl)")  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    d = directory

    def run(*args: str) -> None:
        proc = subprocess.run([openssl, *args], capture_output=True, text=True, check=False,
                              cwd=d)  # fmt: skip
        if proc.returncode != 0:
            raise BrokerError(f"openssl {args[0]} failed: {proc.stderr[-2000:]}")

    days = "3650"
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", days, "-subj", "/CN=tocsin local CA")  # fmt: skip
    for name, cn, ext in (
        ("broker", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                "extendedKeyUsage=serverAuth,clientAuth\n"),
        ("client", "tocsin", "extendedKeyUsage=clientAuth\n"),
    ):  # fmt: skip
        (d / f"{name}.ext").write_text(ext)
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", f"/CN={cn}")  # fmt: skip
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", days,
            "-extfile", f"{name}.ext")  # fmt: skip
    # Kafka's PEM keystore: an unencrypted PKCS#8 key followed by the certificate chain
    (d / "broker.pem").write_text((d / "broker.key").read_text() + (d / "broker.crt").read_text()
                                  + (d / "ca.pem").read_text())  # fmt: skip
    (d / "client.pem").write_text((d / "client.crt").read_text())
    for path in d.iterdir():
        path.chmod(0o600)
    return files


def listener_ports(port: int, controller_port: int, security: BrokerSecurity) -> list[int]:
    extra = [controller_port + 1 + i for i in range(len(security.protocols) - 1)]
    return [port, *extra]


def properties(security: BrokerSecurity, port: int, controller_port: int,
               tls: TlsFiles, broker_password: str) -> dict[str, str]:  # fmt: skip
    """The server.properties entries that replace the plain listener."""
    ports = listener_ports(port, controller_port, security)
    names = list(security.protocols)
    listeners = ",".join(f"{n}://127.0.0.1:{p}" for n, p in zip(names, ports, strict=True))
    first = names[0]
    props = {
        "listeners": f"{listeners},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": listeners,
        "listener.security.protocol.map": ",".join(f"{n}:{n}" for n in names)
        + ",CONTROLLER:PLAINTEXT",
        # the broker talks to itself over its first secured listener, never in clear
        "inter.broker.listener.name": first,
    }
    if any(n.endswith("SSL") for n in names):
        props |= {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls.broker),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls.ca),
            "ssl.endpoint.identification.algorithm": "https",
        }
    if "SSL" in names:
        props["listener.name.ssl.ssl.client.auth"] = "required"
    sasl = [n for n in names if n.startswith("SASL")]
    if sasl:
        props["sasl.enabled.mechanisms"] = ",".join(MECHANISMS)
        if first.startswith("SASL"):
            props["sasl.mechanism.inter.broker.protocol"] = "SCRAM-SHA-512"
    users = {BROKER_USER: broker_password, **security.users}
    for name in sasl:
        prefix = f"listener.name.{name.lower()}"
        plain_users = " ".join(f'user_{u}="{_quoted(pw)}"' for u, pw in users.items())
        props[f"{prefix}.plain.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{BROKER_USER}" password="{_quoted(broker_password)}" {plain_users};'
        )
        for mech in ("scram-sha-256", "scram-sha-512"):
            props[f"{prefix}.{mech}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{BROKER_USER}" password="{_quoted(broker_password)}";'
            )
    return props


def scram_arguments(security: BrokerSecurity, broker_password: str) -> list[str]:
    """`kafka-storage format` arguments that create every user's SCRAM credentials."""
    if not any(p.startswith("SASL") for p in security.protocols):
        return []
    users = {BROKER_USER: broker_password, **security.users}
    args: list[str] = []
    for user, password in users.items():
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            args += ["--add-scram", f"{mech}=[name={user},password={password}]"]
    return args


def client_settings(security: BrokerSecurity, port: int, controller_port: int, tls: TlsFiles,
                    protocol: Protocol | None = None, user: str | None = None,
                    mechanism: SaslMechanism = "SCRAM-SHA-512",
                    **overrides: object) -> KafkaSettings:  # fmt: skip
    """Settings that reach one of this broker's listeners (the first by default)."""
    protocol = protocol or security.protocols[0]
    ports = dict(zip(security.protocols, listener_ports(port, controller_port, security),
                     strict=True))  # fmt: skip
    values: dict[str, object] = {"bootstrap_servers": f"127.0.0.1:{ports[protocol]}",
                                 "security_protocol": protocol}  # fmt: skip
    if protocol.endswith("SSL"):
        values["ssl_ca_location"] = str(tls.ca)
    if protocol == "SSL":
        values["ssl_certificate_location"] = str(tls.client_cert)
        values["ssl_key_location"] = str(tls.client_key)
    if protocol.startswith("SASL"):
        name = user or next(iter(security.users))
        values |= {"sasl_mechanism": mechanism, "sasl_username": name,
                   "sasl_password": security.users[name]}  # fmt: skip
    return KafkaSettings(**(values | overrides))  # type: ignore[arg-type]


def new_password() -> str:
    return secrets.token_urlsafe(24)  # letters, digits, - and _: safe in JAAS and --add-scram


def _quoted(value: str) -> str:
    if any(c in value for c in '"\\;,[]=\n'):
        raise ValueError("a local broker password may not contain quotes, \\ ; , [ ] = or newlines")
    return value
