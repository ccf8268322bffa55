"""Console sessions across real API worker processes (`tocsin run api`): a login survives
a restart and holds on a second replica with the same secret, the CSRF token of a page
served before the restart still carries an action after it, and a changed cookie, one
made with another secret, or one logged out is refused."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.workers import kill9
from streams.console.session import COOKIE
from streams.settings import KafkaSettings
from streams.store.db import StoreSettings, migrate, open_engine
from tests.integration.store.api.conftest import TOKENS, config_dir, free_port
from tests.integration.store.console.test_console_browser import _env, _up, _worker

SECRET = "the-console-secret-of-this-test-0123456789"


class Replicas:
    """API workers on one SQLite store, started and killed on demand."""

    def __init__(self, settings: KafkaSettings, tmp: Path) -> None:
        store = StoreSettings(path=str(tmp / "store.sqlite3"))
        engine = open_engine(store)
        migrate(engine)
        engine.dispose()
        self.settings, self.tmp, self.store = settings, tmp, store
        self.configs = [a for p in config_dir(tmp) for a in ("--config", str(p))]
        self.procs: list[subprocess.Popen[bytes]] = []

    async def start(self, name: str, secret: str | None, port: int | None = None) -> str:
        port = port or free_port()
        extra = {"TOCSIN_STORE_PATH": self.store.path}
        if secret is not None:
            extra["TOCSIN_CONSOLE_SECRET"] = secret
        env = {k: v for k, v in _env(self.settings, **extra).items()
               if secret is not None or k != "TOCSIN_CONSOLE_SECRET"}  # fmt: skip
        log = self.tmp / f"{name}.log"
        proc = _worker(["api", *self.configs, "--host", "127.0.0.1", "--port", str(port)],
                       env, log)  # fmt: skip
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        await _up(url, proc, log)
        return url

    def kill(self, url: str) -> None:
        port = url.rsplit(":", 1)[1]
        for p in self.procs:
            if str(p.args[-1]) == port and p.poll() is None:
                kill9(p)

    def stop(self) -> None:
        for p in self.procs:
            kill9(p)


@pytest.fixture
def replicas(kafka_settings: KafkaSettings, tmp_path: Path) -> Iterator[Replicas]:
    r = Replicas(kafka_settings, tmp_path)
    yield r
    r.stop()


async def _login(url: str, role: str = "responder") -> str:
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        r = await c.post("/console/login", data={"token": TOKENS[role]})
        assert r.status_code == 303, r.text
        cookie = r.cookies.get(COOKIE)
        assert cookie and TOKENS[role] not in cookie
        return cookie


async def _page(url: str, cookie: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30, cookies={COOKIE: cookie}) as c:
        return await c.get("/console/silences")


def _logged_in(r: httpx.Response) -> bool:
    if r.status_code == 303:
        assert r.headers["Location"].endswith("/console/login")
        return False
    assert r.status_code == 200, r.text
    assert "carol" in r.text, "the page is the session user's"
    return True


def _csrf(r: httpx.Response) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert m is not None, "the page carries a CSRF token"
    return m.group(1)


async def _logout(url: str, cookie: str, csrf: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=30, cookies={COOKIE: cookie}) as c:
        return (await c.post("/console/logout", data={"csrf": csrf})).status_code


async def test_a_login_survives_a_restart_and_holds_on_another_replica(
    replicas: Replicas,
) -> None:
    a = await replicas.start("a", SECRET)
    cookie = await _login(a)
    before = await _page(a, cookie)
    assert _logged_in(before)
    csrf = _csrf(before)

    port = int(a.rsplit(":", 1)[1])
    replicas.kill(a)  # kill -9: nothing is written on the way out
    a = await replicas.start("a-again", SECRET, port)
    assert _logged_in(await _page(a, cookie)), "still logged in after the restart"
    b = await replicas.start("b", SECRET)
    assert _logged_in(await _page(b, cookie)), "and on another replica"

    assert await _logout(b, cookie, "not-the-token") == 403, "CSRF is still checked"
    assert await _logout(b, cookie, csrf) == 303, "a token from before the restart"
    assert not _logged_in(await _page(b, cookie)), "logged out on the replica that did it"


async def test_a_changed_cookie_or_another_secret_is_refused(replicas: Replicas) -> None:
    a = await replicas.start("a", SECRET)
    other = await replicas.start("other", "another-secret-of-another-deployment-xxxx")
    unset = await replicas.start("unset", None)
    cookie = await _login(a)
    assert _logged_in(await _page(a, cookie))
    mid = len(cookie) // 2
    changed = cookie[:mid] + ("A" if cookie[mid] != "A" else "B") + cookie[mid + 1 :]
    assert not _logged_in(await _page(a, changed))
    assert not _logged_in(await _page(a, cookie[:-4]))
    assert not _logged_in(await _page(other, cookie)), "made with another secret"
    assert not _logged_in(await _page(unset, cookie)), "a worker with a key of its own"
    assert _logged_in(await _page(unset, await _login(unset))), "which still has sessions"
    log = (replicas.tmp / "unset.log").read_text()
    assert "console_secret_unset" in log, "the worker without a secret says so"
    assert SECRET not in log and SECRET not in (replicas.tmp / "a.log").read_text()
