"""Which nodes the cluster counts: a node that most nodes no longer list is left out,
though it lists itself (a node cut off from the others answers with what it had)."""

from __future__ import annotations

import pytest

from streams import counted_nodes
from streams.counted_nodes import View, count, counted_settings
from streams.settings import KafkaSettings

ADDR = {1: "n1:9092", 2: "n2:9092", 3: "n3:9092"}


def views(monkeypatch: pytest.MonkeyPatch, lists: dict[str, set[int] | None],
          first: str = "n1:9092") -> None:  # fmt: skip
    """Each address answers with the nodes it lists (None: no answer); the bootstrap
    address is answered by the node at `first`."""

    def asked(_: KafkaSettings, address: str, timeout: float = 0) -> View | None:
        at = first if "," in address or address == "boot:9092" else address
        listed = lists[at]
        if listed is None:
            return None
        return View({n: ADDR[n] for n in listed})

    monkeypatch.setattr(counted_nodes, "asked", asked)


SETTINGS = KafkaSettings(bootstrap_servers="boot:9092")


@pytest.fixture(autouse=True)
def no_node_heard_of(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counted_nodes, "_heard_of", {})


def test_a_node_only_itself_lists_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    views(monkeypatch, {"n1:9092": {1, 2, 3}, "n2:9092": {2, 3}, "n3:9092": {2, 3}})
    found = count(SETTINGS)
    assert found is not None
    assert found.left_out == {1}
    assert found.bootstrap == "n2:9092,n3:9092"


def test_the_others_are_asked_even_when_the_left_out_node_answered_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the bootstrap reached the cut-off node: its view names everyone
    views(monkeypatch, {"n1:9092": {1, 2, 3}, "n2:9092": {2, 3}, "n3:9092": None})
    found = count(SETTINGS, timeout=0)
    assert found is not None and found.left_out == {1}, "two answers, one lists node 1"
    assert found.bootstrap == "n2:9092,n3:9092"


def test_a_cluster_that_agrees_leaves_no_one_out(monkeypatch: pytest.MonkeyPatch) -> None:
    views(monkeypatch, {a: {1, 2, 3} for a in ADDR.values()})
    found = count(SETTINGS)
    assert found is not None and found.left_out == frozenset()
    assert sorted(found.counted) == [1, 2, 3]


def test_a_dead_node_the_others_do_not_list_is_not_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    views(monkeypatch, {"n1:9092": None, "n2:9092": {2, 3}, "n3:9092": {2, 3}}, first="n2:9092")
    found = count(SETTINGS)
    assert found is not None and sorted(found.counted) == [2, 3]


def test_no_answer_is_no_count(monkeypatch: pytest.MonkeyPatch) -> None:
    views(monkeypatch, {a: None for a in ADDR.values()})
    assert count(SETTINGS) is None


def test_a_bootstrap_node_no_other_node_names_is_asked_all_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the first answer came from a node that no longer lists the cut-off one
    views(monkeypatch, {"n1:9092": {1, 2, 3}, "n2:9092": {2, 3}, "n3:9092": {2, 3}},
          first="n2:9092")  # fmt: skip
    found = count(KafkaSettings(bootstrap_servers="n1:9092,n2:9092,n3:9092"))
    assert found is not None and found.left_out == {1}


def test_a_bootstrap_address_that_hangs_does_not_hold_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # node 1 frozen: asked first, it answers nothing; the others are asked all the same
    asked_at: list[str] = []
    views(monkeypatch, {"n1:9092": None, "n2:9092": {2, 3}, "n3:9092": {2, 3}})
    inner = counted_nodes.asked
    monkeypatch.setattr(counted_nodes, "asked",
                        lambda s, a, t=0: asked_at.append(a) or inner(s, a, t))  # fmt: skip
    found = count(KafkaSettings(bootstrap_servers="n1:9092,n2:9092,n3:9092"))
    assert found is not None and sorted(found.counted) == [2, 3]
    assert all("," not in a for a in asked_at), "each address asked on its own"


def test_a_reader_is_told_only_of_the_counted_nodes_when_one_is_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    everyone = KafkaSettings(bootstrap_servers="n1:9092,n2:9092,n3:9092")
    views(monkeypatch, {"n1:9092": {1, 2, 3}, "n2:9092": {2, 3}, "n3:9092": {2, 3}})
    assert counted_settings(everyone).bootstrap_servers == "n2:9092,n3:9092"
    views(monkeypatch, {a: {1, 2, 3} for a in ADDR.values()})
    assert counted_settings(everyone) is everyone, "no node left out: as configured"
    views(monkeypatch, {a: None for a in ADDR.values()})
    assert counted_settings(everyone) is everyone, "no answer: as configured"


def test_behind_one_load_balanced_name_the_cut_off_node_an_earlier_count_heard_of_is_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # "boot:9092" leads to node 2, which no longer lists the cut-off node 1
    cut = {"n1:9092": {1, 2, 3}, "n2:9092": {2, 3}, "n3:9092": {2, 3}}
    views(monkeypatch, cut, first="n2:9092")
    unheard = count(SETTINGS)
    assert unheard is not None and unheard.left_out == frozenset(), "no count led to node 1"
    monkeypatch.setattr(counted_nodes, "_heard_of", {})
    views(monkeypatch, {a: {1, 2, 3} for a in ADDR.values()}, first="n2:9092")
    before = count(SETTINGS)  # at the worker's start, the cluster whole
    assert before is not None and sorted(before.counted) == [1, 2, 3]
    views(monkeypatch, cut, first="n2:9092")
    found = count(SETTINGS)
    assert found is not None and found.left_out == {1}
    assert found.bootstrap == "n2:9092,n3:9092"


def test_a_node_heard_of_that_no_one_lists_and_that_does_not_answer_is_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    views(monkeypatch, {a: {1, 2, 3} for a in ADDR.values()}, first="n2:9092")
    count(SETTINGS)
    asked_at: list[str] = []
    views(monkeypatch, {"n1:9092": None, "n2:9092": {2, 3}, "n3:9092": {2, 3}}, first="n2:9092")
    inner = counted_nodes.asked
    monkeypatch.setattr(counted_nodes, "asked",
                        lambda s, a, t=0: asked_at.append(a) or inner(s, a, t))  # fmt: skip
    found = count(SETTINGS)
    assert found is not None and sorted(found.counted) == [2, 3]
    assert found.left_out == frozenset(), "a dead node is no cut-off node to steer clear of"
    assert "n1:9092" in asked_at
    asked_at.clear()
    count(SETTINGS)
    assert "n1:9092" not in asked_at, "forgotten once gone"
