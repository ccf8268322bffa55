"""The API as the CLI reaches it: TOCSIN_API_URL and TOCSIN_API_TOKEN (or
TOCSIN_API_TOKEN_FILE) from the environment, answers as tables or JSON."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import click
import httpx
import orjson

from streams.display import number
from streams.settings import secret

output_option = click.option("--output", "-o", type=click.Choice(["table", "json"]),
                             default="table", show_default=True)  # fmt: skip


WRITE_ATTEMPTS = 4
RETRY_S = 2.0
MAX_RETRY_S = 10.0


def _retry_after(resp: httpx.Response) -> float:
    try:
        return max(float(resp.headers.get("Retry-After", RETRY_S)), 0.0)
    except ValueError:
        return RETRY_S


class Client:
    sleep = staticmethod(time.sleep)

    def __init__(self) -> None:
        import os

        self.url = os.environ.get("TOCSIN_API_URL", "http://127.0.0.1:8081").rstrip("/")
        token = secret("TOCSIN_API_TOKEN")
        if not token:
            raise click.ClickException("set TOCSIN_API_TOKEN (or TOCSIN_API_TOKEN_FILE) to an "
                                       "API token (`tocsin token new`)")  # fmt: skip
        self._http = httpx.Client(base_url=self.url, timeout=30,
                                  headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    def call(self, method: str, path: str, attempts: int = WRITE_ATTEMPTS,
             **kw: Any) -> httpx.Response:  # fmt: skip
        """One request; a write is tried again while Kafka or the API is briefly away,
        under one Idempotency-Key, so that a retry is the same command, applied once."""
        if method == "GET":
            attempts = 1
        else:
            kw["headers"] = {**kw.get("headers", {}), "Idempotency-Key": uuid.uuid4().hex}
        for attempt in range(1, attempts + 1):
            try:
                resp = self._http.request(method, f"/api/v1{path}", **kw)
            except httpx.HTTPError as exc:
                if attempt == attempts:
                    raise click.ClickException(f"{self.url}: {exc}") from None
                self.sleep(RETRY_S)
                continue
            if resp.status_code not in (429, 503) or attempt == attempts:
                break
            self.sleep(min(_retry_after(resp), MAX_RETRY_S))
        if resp.status_code >= 400:
            try:
                why = resp.json().get("error", resp.text)
            except ValueError:
                why = resp.text
            raise click.ClickException(f"{resp.status_code}: {why}")
        return resp

    def json(self, method: str, path: str, **kw: Any) -> Any:
        return self.call(method, path, **kw).json()


def emit(doc: Any, output: str, rows: Sequence[dict[str, Any]] | None = None,
         columns: Sequence[str] = ()) -> None:  # fmt: skip
    if output == "json":
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    table(rows if rows is not None else [doc], columns)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in v.items())
    if isinstance(v, list):
        return ",".join(_cell(x) for x in v)
    if isinstance(v, float):
        return number(v)
    text = str(v)
    if len(text) >= 20 and text[4:5] == "-" and "T" in text:  # an instant: to the second
        return text[:19].replace("T", " ")
    return text[:60]
