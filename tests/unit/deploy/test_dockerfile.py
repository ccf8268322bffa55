"""The Dockerfile builds one non-root image whose entrypoint is `tocsin`, from uv.lock,
with no secret baked in. (No Docker engine here: the structure is what is checked.)"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatch

from tests.unit.deploy.conftest import ROOT

SECRETISH = re.compile(r"(TOKEN|SECRET|PASSWORD|ROUTING_KEY|API_KEY)", re.I)


def instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), re.sub(r"\s+", " ", rest.strip())))
    return out


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for op, rest in instructions():
        if op == "FROM":
            result.append([])
        if result:
            result[-1].append((op, rest))
    return result


def test_multi_stage_build_from_python_slim_and_the_lock_file() -> None:
    build, runtime = stages()
    args = dict(rest.split("=", 1) for op, rest in instructions() if op == "ARG" and "=" in rest)
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert all(rest.startswith("${PYTHON_IMAGE}") for op, rest in (build[0], runtime[0]))
    runs = " ".join(rest for op, rest in build if op == "RUN")
    assert "uv sync --frozen --no-dev" in runs
    assert not any("uv" in rest for op, rest in runtime if op == "RUN"), "no uv at runtime"
    assert ("COPY", "--from=build /app/.venv /app/.venv") in runtime


def test_runtime_runs_as_a_numeric_non_root_user() -> None:
    runtime = stages()[-1]
    users = [rest for op, rest in runtime if op == "USER"]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric: runAsNonRoot can verify it


def test_entrypoint_is_tocsin_in_exec_form_behind_an_init() -> None:
    runtime = stages()[-1]
    entry = json.loads(next(rest for op, rest in runtime if op == "ENTRYPOINT"))
    # exec form (a JSON list): no shell in between to swallow SIGTERM
    assert entry[-1] == "tocsin"
    assert entry[:-1] in ([], ["/usr/bin/tini", "--"])
    assert "tini" in " ".join(rest for op, rest in runtime if op == "RUN")


def test_no_secret_is_baked_into_the_image() -> None:
    for op, rest in instructions():
        if op in ("ENV", "ARG", "LABEL"):
            assert not SECRETISH.search(rest), f"{op} {rest}"
        if op in ("COPY", "ADD"):
            assert not re.search(r"\.env\b|secret|\.pem|\.key\b", rest, re.I), f"{op} {rest}"


def test_everything_copied_from_the_context_exists_and_is_not_ignored() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            pattern = pattern.removeprefix("!").rstrip("/")
            if fnmatch(path, pattern) or fnmatch(path.split("/")[0], pattern):
                keep = negated
        return keep

    copied = []
    for op, rest in instructions():
        if op == "COPY" and not rest.startswith("--from"):
            copied += rest.split()[:-1]
    assert {"uv.lock", "pyproject.toml", "streams", "rules", "examples"} <= set(copied)
    for path in copied:
        assert (ROOT / path).exists(), path
        assert included(path), f"{path} is excluded by .dockerignore"
    # and what must never reach a build context stays out
    for path in (".venv", ".git", ".broker", ".env", "tests", "deploy/overlays"):
        assert not included(path), path
