"""The container tier: the image built from ./Dockerfile, on a local Debian base."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.container.podman import base_image, build_image, missing_tools, remove_image


@pytest.fixture(scope="session")
def image() -> Iterator[str]:
    """The tag of a freshly built image (removed afterwards; the base stays cached)."""
    missing = missing_tools()
    if missing:
        reason = f"{', '.join(missing)} not installed (`make peers` installs them)"
        if os.environ.get("CI"):
            pytest.fail(f"container tier on CI: {reason}")
        pytest.skip(f"container tier: {reason}")
    started = time.monotonic()
    base = base_image()
    based = time.monotonic()
    tag = build_image(base)
    built = time.monotonic()
    print(f"\ncontainer tier: base {based - started:.0f}s, build {built - based:.0f}s")
    try:
        yield tag
    finally:
        remove_image(tag)
