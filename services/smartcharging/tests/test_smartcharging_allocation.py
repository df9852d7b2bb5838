"""allocation.py: the rules, as examples and as properties over random sites."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csms_smartcharging.allocation import (
    NO_LIMIT,
    Allocation,
    AllocationError,
    Demand,
    Node,
    allocate,
    urgency_weight,
)

TOLERANCE = 1e-6


def three(limit: float) -> tuple[float, float, float]:
    return (limit, limit, limit)


def demand(session_id: str, node: str = "site", **kwargs: object) -> Demand:
    values: dict[str, object] = {
        "station_id": f"st-{session_id}",
        "phases": (0, 1, 2),
        "min_a": 6.0,
        "max_a": 32.0,
    }
    return Demand(session_id=session_id, node_id=node, **(values | kwargs))  # type: ignore[arg-type]


def limits(allocation: Allocation) -> dict[str, float]:
    return {sid: grant.limit_a for sid, grant in allocation.grants.items()}


def test_fair_share_under_a_site_limit() -> None:
    result = allocate([Node("site", None, three(60))], [demand(s) for s in "abc"])
    assert limits(result) == {"a": 20.0, "b": 20.0, "c": 20.0}


def test_a_capped_session_leaves_the_rest_to_the_others() -> None:
    demands = [demand("a", max_a=10), demand("b"), demand("c")]
    result = allocate([Node("site", None, three(60))], demands)
    assert limits(result) == {"a": 10.0, "b": 25.0, "c": 25.0}


def test_priority_weights_the_share() -> None:
    demands = [demand("fleet", weight=2.0), demand("guest")]
    result = allocate([Node("site", None, three(30))], demands)
    assert limits(result) == {"fleet": 20.0, "guest": 10.0}


def test_a_session_that_cannot_get_its_minimum_is_paused_not_underfed() -> None:
    demands = [demand("first", order=0), demand("second", order=1)]
    result = allocate([Node("site", None, three(10))], demands)
    assert limits(result) == {"first": 10.0, "second": 0.0}
    assert result.grants["second"].paused


def test_group_limit_binds_before_the_site() -> None:
    nodes = [Node("site", None, three(100)), Node("g", "site", three(16))]
    demands = [demand("a", "g"), demand("b", "g"), demand("c")]
    result = allocate(nodes, demands)
    assert limits(result) == {"a": 8.0, "b": 8.0, "c": 32.0}


def test_one_phase_evses_on_their_rotated_phases() -> None:
    nodes = [Node("site", None, three(16))]
    demands = [
        demand("l1", phases=(0,), order=0),
        demand("l2", phases=(1,), order=1),
        demand("l2b", phases=(1,), order=2),
        demand("three", phases=(0, 1, 2), order=3),
    ]
    result = allocate(nodes, demands)
    # L2 carries three sessions at 5.3 A: the last to arrive is paused, the rest share.
    assert limits(result) == {"l1": 16.0, "l2": 8.0, "l2b": 8.0, "three": 0.0}
    assert result.usage["site"].used_a == (16.0, 16.0, 0.0)


def test_non_ev_load_is_subtracted() -> None:
    nodes = [Node("site", None, three(40), base_load_a=(20.0, 10.0, 10.0))]
    result = allocate(nodes, [demand("a")])
    assert limits(result) == {"a": 20.0}


def test_fixed_sessions_count_at_their_rating() -> None:
    nodes = [Node("site", None, three(40))]
    result = allocate(nodes, [demand("refused", fixed_a=32.0), demand("b")])
    assert limits(result) == {"refused": 32.0, "b": 8.0}
    assert result.grants["refused"].fixed


def test_underuse_cap_frees_capacity_for_others() -> None:
    nodes = [Node("site", None, three(40))]
    result = allocate(nodes, [demand("slow", cap_a=8.0), demand("fast")])
    assert limits(result) == {"slow": 8.0, "fast": 32.0}


def test_urgency_raises_the_weight_up_to_double() -> None:
    assert (
        urgency_weight(1.0, energy_needed_wh=None, hours_left=2, max_a=32, volts_per_amp=690) == 1
    )
    urgent = urgency_weight(1.0, energy_needed_wh=44_000, hours_left=1, max_a=32, volts_per_amp=690)
    assert urgent == 2.0


@pytest.mark.parametrize(
    ("nodes", "demands", "message"),
    [
        ([Node("site", None, three(-1))], [], "negative"),
        ([Node("site", None, three(10), (-1.0, 0.0, 0.0))], [], "negative"),
        (
            [Node("site"), Node("a", "b"), Node("b", "a")],
            [],
            "group cycle",
        ),
        ([Node("site"), Node("g", "nowhere")], [], "unknown parent"),
        ([Node("site")], [demand("x", "elsewhere")], "unknown node"),
        (
            [Node("s1"), Node("s2")],
            [demand("x", "s1", station_id="ST"), demand("y", "s2", station_id="ST")],
            "two sites",
        ),
        ([Node("site")], [demand("x", min_a=10, max_a=6)], "min_a"),
        ([Node("site")], [demand("x", phases=(3,))], "phases"),
        ([Node("site"), Node("site")], [], "duplicate"),
    ],
)
def test_bad_input_is_a_clear_error(nodes: list[Node], demands: list[Demand], message: str) -> None:
    with pytest.raises(AllocationError, match=message):
        allocate(nodes, demands)


# --- properties -------------------------------------------------------------------------

phase_sets = st.sampled_from([(0, 1, 2), (0,), (1,), (2,)])


@st.composite
def sites(draw: st.DrawFn) -> tuple[list[Node], list[Demand]]:
    site_limit = draw(st.floats(0, 400))
    nodes = [
        Node(
            "site",
            None,
            three(site_limit),
            tuple(draw(st.floats(0, 50)) for _ in range(3)),  # type: ignore[arg-type]
        )
    ]
    for index in range(draw(st.integers(0, 4))):
        parent = draw(st.sampled_from([node.node_id for node in nodes]))
        group_limit = draw(st.one_of(st.just(math.inf), st.floats(0, 200)))
        nodes.append(Node(f"g{index}", parent, three(group_limit)))
    demands = []
    for index in range(draw(st.integers(0, 25))):
        min_a = draw(st.sampled_from([0.0, 6.0, 8.0]))
        max_a = draw(st.floats(min_a, 63))
        demands.append(
            Demand(
                session_id=f"s{index}",
                station_id=f"st{index}",
                node_id=draw(st.sampled_from([node.node_id for node in nodes])),
                phases=draw(phase_sets),
                min_a=min_a,
                max_a=max_a,
                weight=draw(st.sampled_from([1.0, 1.5, 2.0, 3.0])),
                order=index,
                cap_a=draw(st.one_of(st.none(), st.floats(0, 63))),
            )
        )
    return nodes, demands


def _load(
    nodes: list[Node], demands: list[Demand], allocation: Allocation
) -> dict[tuple[str, int], float]:
    parents = {node.node_id: node.parent_id for node in nodes}
    load: dict[tuple[str, int], float] = {}
    for d in demands:
        node: str | None = d.node_id
        while node is not None:
            for phase in d.phases:
                load[(node, phase)] = (
                    load.get((node, phase), 0.0) + allocation.grants[d.session_id].limit_a
                )
            node = parents[node]
    return load


@settings(max_examples=300, deadline=None)
@given(sites())
def test_no_limit_is_ever_exceeded_on_any_phase(site: tuple[list[Node], list[Demand]]) -> None:
    nodes, demands = site
    allocation = allocate(nodes, demands)
    for (node_id, phase), used in _load(nodes, demands, allocation).items():
        node = next(n for n in nodes if n.node_id == node_id)
        available = max(0.0, node.limit_a[phase] - node.base_load_a[phase])
        assert used <= available + TOLERANCE, (node_id, phase)


@settings(max_examples=300, deadline=None)
@given(sites())
def test_no_session_is_between_zero_and_its_minimum(site: tuple[list[Node], list[Demand]]) -> None:
    nodes, demands = site
    allocation = allocate(nodes, demands)
    for d in demands:
        limit = allocation.grants[d.session_id].limit_a
        assert limit == 0.0 or d.min_a - TOLERANCE <= limit <= d.max_a + TOLERANCE


@settings(max_examples=300, deadline=None)
@given(
    limit=st.floats(0, 300),
    maxima=st.lists(st.floats(6, 63), min_size=1, max_size=30),
)
def test_when_demand_exceeds_supply_the_capacity_is_used(limit: float, maxima: list[float]) -> None:
    """Within one minimum-current step (plus the 0.1 A rounding of each session)."""
    demands = [demand(f"s{i}", max_a=m, order=i) for i, m in enumerate(maxima)]
    allocation = allocate([Node("site", None, three(limit))], demands)
    used = sum(grant.limit_a for grant in allocation.grants.values())
    wanted = min(limit, sum(maxima))
    assert used <= limit + TOLERANCE
    assert used >= wanted - 6.0 - 0.1 * len(maxima) - TOLERANCE


def test_no_limit_at_all_gives_everyone_their_max() -> None:
    result = allocate([Node("site", None, NO_LIMIT)], [demand("a"), demand("b", max_a=16)])
    assert limits(result) == {"a": 32.0, "b": 16.0}
