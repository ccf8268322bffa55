"""The shape of the house as imports: no module of tocsin imports itself back through
another, and the four packages import in one direction (schemas <- processors,
connectors <- streams); the benchmarks share helpers with the tests through harness/,
never by importing tests.

Imports under ``if TYPE_CHECKING:`` are left out: they are erased at run time and are
how a module names the type of the module that calls it."""

from __future__ import annotations

import grimp
import pytest

PACKAGES = ("schemas", "processors", "connectors", "streams")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None, exclude_type_checking_imports=True)


def test_no_module_imports_itself_back(graph: grimp.ImportGraph) -> None:
    cycles = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycles.add(" -> ".join((module, *back)))
    assert "streams.gateway.sources" in graph.modules
    assert sorted(cycles) == []


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("schemas", "processors"),
        ("schemas", "connectors"),
        ("schemas", "streams"),
        ("processors", "connectors"),
        ("processors", "streams"),
        ("connectors", "processors"),
        ("connectors", "streams"),
    ],
)
def test_packages_import_in_one_direction(
    graph: grimp.ImportGraph, importer: str, imported: str
) -> None:
    chain = graph.find_shortest_chain(importer=importer, imported=imported, as_packages=True)
    assert chain is None, f"{importer} must not import {imported}: {' -> '.join(chain or ())}"


def test_benchmarks_and_the_harness_import_nothing_from_tests() -> None:
    graph = grimp.build_graph("benchmarks", "harness", "tests", cache_dir=None)
    assert "benchmarks.bench_processor" in graph.modules
    for importer in ("benchmarks", "harness"):
        chain = graph.find_shortest_chain(importer=importer, imported="tests", as_packages=True)
        assert chain is None, f"{importer} imports tests: {' -> '.join(chain or ())}"
