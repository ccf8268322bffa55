#!/usr/bin/env python3
# tocsin
# Bulk: yes
"""Checkmk notification plugin: sends host and service notifications to tocsin.

Install: copy to ~/local/share/check_mk/notifications/tocsin in the site, make it
executable, and choose "tocsin" as the notification method of a rule with the
parameters: 1. the gateway's URL (https://tocsin.example.com/v1/checkmk), 2. a tocsin
intake token (or leave it out and set TOCSIN_TOKEN, or TOCSIN_TOKEN_FILE naming a file
that holds it, in the site's environment: ~/etc/environment).

Checkmk runs the plugin with the notification's context in NOTIFY_* variables, or with
``--bulk`` and the bulk's contexts on standard input. Either way the plugin posts one
request (tocsin maps the context; see docs/connectors.md), retries what is worth
retrying, and exits as Checkmk expects: 0 sent, 1 try again later, 2 permanent failure.
Standard library only: it runs on the site's Python as it is.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping

# context variables sent to tocsin: what the mapping uses and what a responder reads;
# never the contact's address book entries or the plugin's own parameters (the token)
SENT = frozenset({
    "WHAT", "NOTIFICATIONTYPE", "OMD_SITE", "MICROTIME", "SHORTDATETIME",
    "HOSTNAME", "HOSTALIAS", "HOSTADDRESS", "HOSTSTATE", "LASTHOSTSTATE",
    "HOSTOUTPUT", "LONGHOSTOUTPUT", "HOSTPROBLEMID", "LASTHOSTPROBLEMID", "HOSTNOTESURL",
    "HOSTTAGS", "SERVICEDESC", "SERVICESTATE", "SERVICESHORTSTATE", "LASTSERVICESTATE",
    "SERVICEOUTPUT", "LONGSERVICEOUTPUT", "SERVICEPROBLEMID", "LASTSERVICEPROBLEMID",
    "SERVICENOTESURL", "NOTIFICATIONAUTHOR", "NOTIFICATIONCOMMENT",
})  # fmt: skip
LABELS = ("HOSTLABEL_", "SERVICELABEL_")
ATTEMPTS = 3
TIMEOUT_S = 10.0
MAX_WAIT_S = 20.0  # Checkmk stops a plugin after 60 s by default
SENT_OK, RETRY_LATER, PERMANENT = 0, 1, 2


def read_bulk(lines: Iterable[str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Checkmk's bulk protocol: the parameters, a blank line, then each context's
    variables, contexts separated by blank lines; a newline in a value arrives as \\x01."""
    params: dict[str, str] = {}
    contexts: list[dict[str, str]] = []
    current = params
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line.strip():
            current = {}
            contexts.append(current)
            continue
        name, sep, value = line.partition("=")
        if sep:
            current[name.strip()] = value.replace("\x01", "\n")
    return params, [c for c in contexts if c]


def from_environment(env: Mapping[str, str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    context = {k[7:]: v for k, v in env.items() if k.startswith("NOTIFY_")}
    params = {k: v for k, v in context.items() if k.startswith("PARAMETER")}
    return params, [context]


def _dead(value: str) -> bool:
    """A Nagios macro that did not expand ($SERVICEACKAUTHOR$)."""
    inner = value[1:-1].replace("_", "A")
    return len(value) > 2 and value[0] == value[-1] == "$" and inner.isalpha() and inner.isupper()


def outgoing(context: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in context.items()
            if (k in SENT or k.startswith(LABELS)) and not _dead(v)}  # fmt: skip


def token_of(params: Mapping[str, str], env: Mapping[str, str]) -> str | None:
    token = params.get("PARAMETER_2", "").strip() or env.get("TOCSIN_TOKEN", "").strip()
    if token:
        return token
    path = env.get("TOCSIN_TOKEN_FILE", "").strip()
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().strip() or None
        except OSError as exc:
            print(f"tocsin: cannot read TOCSIN_TOKEN_FILE {path}: {exc.strerror}", file=sys.stderr)
    return None


def post(url: str, token: str, body: bytes, attempts: int = ATTEMPTS,
         sleep: Callable[[float], None] = time.sleep) -> int:  # fmt: skip
    """Post with retries on what may pass (no answer, 429, 5xx); the exit code."""
    wait = 1.0
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}",
            "User-Agent": "tocsin-checkmk-plugin"})  # fmt: skip
        retry_after: float | None = None
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                print(f"tocsin: sent, {answer.status} {answer.read(400).decode(errors='replace')}")
                return SENT_OK
        except urllib.error.HTTPError as exc:
            text = exc.read(600).decode(errors="replace")
            if exc.code != 429 and exc.code < 500:
                print(f"tocsin refused the notification ({exc.code}): {text}", file=sys.stderr)
                return PERMANENT
            print(f"tocsin answered {exc.code} (attempt {attempt}): {text}", file=sys.stderr)
            header = exc.headers.get("Retry-After", "") if exc.headers else ""
            retry_after = float(header) if header.isdigit() else None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            print(f"tocsin unreachable (attempt {attempt}): {reason}", file=sys.stderr)
        if attempt < attempts:
            sleep(min(retry_after if retry_after is not None else wait, MAX_WAIT_S))
            wait *= 2
    return RETRY_LATER


def main(argv: list[str], env: Mapping[str, str], stdin: Iterable[str]) -> int:
    bulk = "--bulk" in argv[1:]
    params, contexts = read_bulk(stdin) if bulk else from_environment(env)
    url = params.get("PARAMETER_1", "").strip()
    if not url.startswith(("http://", "https://")):
        print("tocsin: parameter 1 must be the gateway's URL (https://.../v1/checkmk)",
              file=sys.stderr)  # fmt: skip
        return PERMANENT
    token = token_of(params, env)
    if token is None:
        print("tocsin: no token: give it as parameter 2, TOCSIN_TOKEN or TOCSIN_TOKEN_FILE",
              file=sys.stderr)  # fmt: skip
        return PERMANENT
    body = json.dumps({"version": "1", "notifications": [outgoing(c) for c in contexts]})
    return post(url, token, body.encode())


if __name__ == "__main__":
    sys.exit(main(sys.argv, os.environ, sys.stdin))
