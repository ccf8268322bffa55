"""Every exception class tocsin defines belongs to the one tree rooted at TocsinError,
and the tree drawn in schemas/errors.py names each of them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import schemas.errors
from schemas.errors import TocsinError

PACKAGES = ("schemas", "processors", "connectors", "streams")


def _modules() -> list[str]:
    names: list[str] = []
    for package in PACKAGES:
        names.append(package)
        path = importlib.import_module(package).__path__
        names += [m.name for m in pkgutil.walk_packages(path, f"{package}.")]
    # Alembic's environment and revisions are scripts Alembic runs, not modules to import
    return [n for n in names if ".migrations." not in n]


def _exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, BaseException)
                    and obj.__module__ == name):  # fmt: skip
                found[f"{name}.{obj.__qualname__}"] = obj
    return found


def test_every_exception_defined_in_tocsin_derives_from_the_root() -> None:
    found = _exceptions()
    assert "streams.gateway.writer.Backpressure" in found  # the walk reaches streams
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, TocsinError))
    assert outside == [], f"not under TocsinError: {outside}"


def test_the_documented_tree_names_every_exception() -> None:
    doc = schemas.errors.__doc__ or ""
    missing = sorted(name for name, cls in _exceptions().items() if cls.__name__ not in doc)
    assert missing == [], f"not drawn in schemas/errors.py's tree: {missing}"
