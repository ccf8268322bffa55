"""A stand-in for Amazon SNS: a locally generated signing certificate, messages signed
with it exactly as SNS signs them, and the fetcher the gateway is handed to reach
"AWS" (it serves the certificate at its AWS-looking URL and records confirmations).

The gateway's verification runs unchanged against it: the test trusts this certificate
by serving it, never by switching a check off.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from connectors.sources.sns import SnsError, SnsMessage, string_to_sign

REGION = "eu-west-1"
TOPIC = f"arn:aws:sns:{REGION}:123456789012:tocsin-alarms"
CERT_URL = f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"


def make_certificate(key: rsa.RSAPrivateKey, days: int = 30) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
            .sign(key, hashes.SHA256()))  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class FakeSns:
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    certs: dict[str, bytes] = field(default_factory=dict)  # URL -> PEM
    fetched: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.certs.setdefault(CERT_URL, make_certificate(self.key))

    async def fetch(self, url: str) -> bytes:
        """What the gateway reaches instead of AWS: certificates and SubscribeURLs."""
        self.fetched.append(url)
        if url in self.certs:
            return self.certs[url]
        if "Action=ConfirmSubscription" in url:
            return b"<ConfirmSubscriptionResponse/>"
        raise SnsError(403, f"{url} answered 404")

    def sign(self, doc: dict[str, Any], key: rsa.RSAPrivateKey | None = None) -> dict[str, Any]:
        doc = {k: v for k, v in doc.items() if k != "Signature"}
        algorithm = hashes.SHA1() if doc["SignatureVersion"] == "1" else hashes.SHA256()
        data = string_to_sign(SnsMessage.model_validate(doc | {"Signature": "x"}))
        signature = (key or self.key).sign(data, padding.PKCS1v15(), algorithm)
        return doc | {"Signature": base64.b64encode(signature).decode()}

    def notification(self, message: str | dict[str, Any], *, version: str = "2",
                     subject: str | None = "ALARM: checkout", topic: str = TOPIC,
                     at: datetime | None = None, message_id: str | None = None,
                     cert_url: str = CERT_URL) -> dict[str, Any]:  # fmt: skip
        text = message if isinstance(message, str) else orjson.dumps(message).decode()
        doc: dict[str, Any] = {
            "Type": "Notification", "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic, "Message": text, "Timestamp": _stamp(at),
            "SignatureVersion": version, "SigningCertURL": cert_url,
            "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe"
                              f"&SubscriptionArn={topic}:sub",
        }  # fmt: skip
        if subject is not None:
            doc["Subject"] = subject
        return self.sign(doc)

    def confirmation(self, *, subscribe_url: str | None = None, topic: str = TOPIC,
                     kind: str = "SubscriptionConfirmation") -> dict[str, Any]:  # fmt: skip
        url = subscribe_url or (f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription"
                                f"&TopicArn={topic}&Token=2336412f37fb687f5d51e6e2425")  # fmt: skip
        return self.sign({
            "Type": kind, "MessageId": str(uuid.uuid4()), "TopicArn": topic,
            "Token": "2336412f37fb687f5d51e6e2425", "SubscribeURL": url,
            "Message": f"You have chosen to subscribe to the topic {topic}.",
            "Timestamp": _stamp(None), "SignatureVersion": "1", "SigningCertURL": CERT_URL,
        })  # fmt: skip


def _stamp(at: datetime | None) -> str:
    moment = at or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
