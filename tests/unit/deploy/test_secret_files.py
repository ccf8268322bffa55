"""The manifests' Secret files and the workers agree: a Secret that is optional may be
absent, a key may be missing or empty, and the workers start with what is there.

Kubernetes mounts a Secret volume as one file per key it holds; an optional volume whose
Secret does not exist mounts empty. The *_FILE variables of the manifests then name files
that do not exist, which must read as "not configured", not crash the worker at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from streams.settings import KafkaSettings, secret
from tests.unit.deploy.conftest import ROOT, find
from tests.unit.deploy.kustomize import pod_containers, pod_spec

Doc = dict[str, Any]
# the gateway's tokens (the intake's credential) and the store's DSN (no store without it)
REQUIRED = {"tocsin-gateway", "tocsin-store"}
TOKEN = "gateway-token"


def _secret_volumes(doc: Doc) -> dict[str, Doc]:
    """Mount path -> the Secret volume mounted there, for the workload's one container."""
    pod = pod_spec(doc)
    assert pod is not None
    volumes = {v["name"]: v["secret"] for v in pod.get("volumes", []) if "secret" in v}
    (container,) = [c for c in pod_containers(doc)]
    return {m["mountPath"]: volumes[m["name"]]
            for m in container.get("volumeMounts", []) if m["name"] in volumes}  # fmt: skip


def _file_env(doc: Doc, mounted: dict[str, Path]) -> dict[str, str]:
    """The container's *_FILE variables, each moved under the directory standing in for
    the Secret mounted at its directory."""
    (container,) = [c for c in pod_containers(doc)]
    out = {}
    for env in container.get("env", []):
        if env["name"].endswith("_FILE"):
            path = Path(env["value"])
            out[env["name"]] = str(mounted[str(path.parent)] / path.name)
    return out


def _mount(doc: Doc, tmp_path: Path, present: dict[str, dict[str, str]]) -> dict[str, str]:
    """Lay the workload's Secrets out as Kubernetes would, holding only the keys given
    in ``present`` (Secret name -> key -> content); returns its *_FILE environment."""
    mounted = {}
    for mount_path, volume in _secret_volumes(doc).items():
        directory = tmp_path / doc["metadata"]["name"] / volume["secretName"]
        directory.mkdir(parents=True)
        for key, content in present.get(volume["secretName"], {}).items():
            (directory / key).write_text(content)
        mounted[mount_path] = directory
    return _file_env(doc, mounted)


def test_every_secret_but_the_gateway_tokens_is_optional(base: list[Doc]) -> None:
    seen = set()
    for doc in base:
        if pod_spec(doc) is None:
            continue
        for volume in _secret_volumes(doc).values():
            name = volume["secretName"]
            seen.add(name)
            assert volume.get("optional", False) is (name not in REQUIRED), (
                f"{doc['metadata']['name']}: {name} optional={volume.get('optional')}"
            )
    assert seen >= {"tocsin-slack", "tocsin-pagerduty", "tocsin-kafka", "tocsin-gateway"}


@pytest.mark.parametrize("content", [None, "", "\n"], ids=["missing", "empty", "blank"])
def test_a_missing_or_empty_secret_file_reads_as_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None
) -> None:
    path = tmp_path / "app-token"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("SLACK_APP_TOKEN_FILE", str(path))
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    assert secret("SLACK_APP_TOKEN") is None
    path.write_text("xapp-1\n")
    assert secret("SLACK_APP_TOKEN") == "xapp-1"


def test_a_secret_file_that_cannot_be_read_is_an_error_not_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a directory where a file belongs is a broken mount, not an unconfigured key
    monkeypatch.setenv("SLACK_APP_TOKEN_FILE", str(tmp_path))
    with pytest.raises(OSError):
        secret("SLACK_APP_TOKEN")


def test_sasl_still_says_which_setting_is_missing_when_its_secret_is_absent(
    base: list[Doc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _mount(find(base, "Deployment", "tocsin-processor"), tmp_path, {})
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert KafkaSettings().sasl_password is None  # PLAINTEXT: nothing needed
    monkeypatch.setenv("TOCSIN_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TOCSIN_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TOCSIN_SASL_USERNAME", "tocsin")
    with pytest.raises(ValueError, match="TOCSIN_SASL_PASSWORD_FILE"):
        KafkaSettings()


def test_the_gateway_starts_with_only_its_tokens_and_every_optional_secret_absent(
    base: list[Doc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiohttp import web

    from streams.cli.main import cli

    doc = find(base, "Deployment", "tocsin-gateway")
    env = _mount(doc, tmp_path, {"tocsin-gateway": {"tokens": TOKEN + "\n"}})
    for name in ("SLACK_SIGNING_SECRET_FILE", "SLACK_APP_TOKEN_FILE", "SLACK_BOT_TOKEN_FILE",
                 "TOCSIN_PAGERDUTY_INTAKE_KEYS_FILE", "TOCSIN_SASL_PASSWORD_FILE"):  # fmt: skip
        assert not Path(env[name]).exists(), name  # the case under test
    started: list[web.Application] = []
    monkeypatch.setattr(web, "run_app", lambda app, **_: started.append(app))
    (container,) = [c for c in pod_containers(doc)]
    args = list(container["args"])
    args[args.index("--config") + 1] = str(ROOT / "examples" / "config")
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(started) == 1, "the gateway reached its HTTP server"


def test_the_notifier_starts_on_the_console_with_its_secrets_absent(
    base: list[Doc], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streams.notifier.sinks import build_sinks

    env = _mount(find(base, "Deployment", "tocsin-notifier"), tmp_path, {})
    assert {"SLACK_BOT_TOKEN_FILE", "PAGERDUTY_ROUTING_KEYS_FILE"} <= set(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in (
        "SLACK_BOT_TOKEN",
        "PAGERDUTY_ROUTING_KEYS",
        "ILERT_API_KEYS",
        "TOCSIN_WEBHOOK_URLS",
        "TOCSIN_SLACK_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    sinks = build_sinks(state=None)  # type: ignore[arg-type]  # only Slack's sink keeps it
    assert set(sinks) == {"*"}, "no credentials: everything goes to the console"
