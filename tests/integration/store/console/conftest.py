"""The console in a real browser: Debian's chromium driven by Playwright (its own
browsers cannot be downloaded here, so it launches the system's executable)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator

import pytest

from tests.integration.store.api.conftest import running_projector  # noqa: F401

CHROMIUM = ("chromium", "chromium-browser")


def chromium_path() -> str:
    """The system Chromium, or skip (fail on CI, where `make peers` installs it)."""
    found = next((p for p in map(shutil.which, CHROMIUM) if p), None)
    reason = None
    if found is None:
        reason = "chromium is not installed (`make peers` installs it)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            reason = "playwright is not installed (`make venv` installs it)"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests on CI: {reason}")
        pytest.skip(f"browser tests: {reason}")
    assert found is not None
    return found


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    path = chromium_path()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        # --no-sandbox: test containers run as root, where Chromium's sandbox cannot start
        b = await p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            yield b
        finally:
            await b.close()
