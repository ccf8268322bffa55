"""An API server on 127.0.0.1 over a store that a real projector fills from the real broker;
tokens of each role."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from sqlalchemy import Engine

from harness.incidents import EXAMPLE_CONFIG
from schemas.config import Config, load_config
from streams.api.app import Api
from streams.api.auth import digest
from streams.api.server import application
from streams.catalog import Catalog
from streams.settings import KafkaSettings
from streams.store.projector import Projector
from tests.integration.store.conftest import PG_PORT

TOKENS = {"viewer": "tsn_viewer_token", "responder": "tsn_responder_token",
          "admin": "tsn_admin_token"}  # fmt: skip
PG_PORT_OUTAGE = PG_PORT + 2  # a server of its own: the outage test stops it
USERS = {"viewer": "dave", "responder": "carol", "admin": "alice"}


def config_dir(tmp: Path) -> list[Path]:
    lines = ["api_tokens:"] + [
        f"  - {{user: {USERS[role]}, role: {role}, sha256: {digest(tok)}}}"
        for role, tok in TOKENS.items()
    ]
    (tmp / "tokens.yaml").write_text("\n".join(lines) + "\n")
    return [EXAMPLE_CONFIG, tmp / "tokens.yaml"]


@pytest.fixture
def api_config(tmp_path: Path) -> Config:
    return load_config(config_dir(tmp_path))


@pytest.fixture
def running_projector(kafka_settings: KafkaSettings, topics: Catalog,
                      engine: Engine) -> Iterator[Projector]:  # fmt: skip
    p = Projector(kafka_settings, engine)
    stop = threading.Event()
    t = threading.Thread(target=p.run, args=(stop,), daemon=True)
    t.start()
    yield p
    stop.set()
    t.join(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    api: Api
    url: str

    def client(self, role: str | None = "viewer") -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)


@contextlib.asynccontextmanager
async def serve(api: Api) -> AsyncIterator[Served]:
    runner = web.AppRunner(application(api))
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield Served(api, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


@pytest.fixture
async def served(kafka_settings: KafkaSettings, topics: Catalog, engine: Engine,
                 api_config: Config) -> AsyncIterator[Served]:  # fmt: skip
    async with serve(Api(kafka_settings, engine, api_config)) as s:
        yield s
