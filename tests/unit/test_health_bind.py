"""Where workers serve /metrics, /healthz and /readyz: settable, every interface by
default (probes reach the pod IP)."""

from __future__ import annotations

import urllib.request

import click
import pytest
from prometheus_client import CollectorRegistry

from streams.health import Health, HealthServer


def test_the_health_server_listens_where_it_is_told() -> None:
    server = HealthServer(Health(), CollectorRegistry(), host="127.0.0.1", port=0).start()
    try:
        host, port = server._server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        server.stop()


@pytest.mark.parametrize("worker", ["processor", "agents", "notifier", "ingest"])
def test_every_worker_takes_a_health_host_from_option_or_environment(worker: str) -> None:
    from streams.cli.run import WORKERS

    module, _, name = WORKERS[worker].partition(":")
    command: click.Command = getattr(__import__(module, fromlist=[name]), name)
    [option] = [p for p in command.params if "--health-host" in getattr(p, "opts", [])]
    assert option.envvar == "TOCSIN_HEALTH_HOST" and option.default == "0.0.0.0"
    ctx = click.Context(command)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOCSIN_HEALTH_HOST", "127.0.0.1")
        assert option.value_from_envvar(ctx) == "127.0.0.1"
