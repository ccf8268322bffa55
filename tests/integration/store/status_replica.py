"""One API worker's webhook delivery loop alone in a process, for the tests that run two
and kill one: the store from the environment (as `tocsin run api` reads it), the pages
of `PAGES`, the lease and send timeout from the command line, and its name in an
`X-Replica` header so the test's subscriber knows who sent what.

`python -m tests.integration.store.status_replica NAME LEASE_S SEND_TIMEOUT_S`
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta

import httpx

from schemas.status import StatusConfig
from streams.status.delivery import Deliverer
from streams.store.db import StoreSettings, open_engine

PAGES = {"acme": StatusConfig.model_validate({
    "components": [{"id": "shop", "name": "Shop", "services": ["checkout"]}],
    "pages": [{"id": "public", "audience": "public", "title": "Acme status"}],
})}  # fmt: skip


def now() -> datetime:
    return datetime.now(UTC)


async def main(name: str, lease_s: float, send_timeout_s: float) -> None:
    engine = open_engine(StoreSettings())
    client = httpx.AsyncClient(timeout=send_timeout_s, headers={"X-Replica": name})
    loop = Deliverer(engine, PAGES, now, every=0.1, client=client,
                     lease=timedelta(seconds=lease_s), send_timeout_s=send_timeout_s)  # fmt: skip
    print("ready", loop.me, flush=True)
    await loop.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))
