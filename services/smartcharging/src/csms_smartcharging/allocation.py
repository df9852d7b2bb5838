"""Who gets how many amps: a pure, deterministic allocation of current to charging sessions.

Inputs are a tree of nodes (a site at the root, groups below it) with the
per-phase limits in force and the non-EV load measured on them, and the active
sessions with the node their EVSE hangs under, the site phases they load, their
minimum and maximum current and a weight. The output is a current limit per
session, or 0 (paused).

Rules:
- no node's limit is exceeded on any phase (after subtracting its non-EV load);
- a session that cannot get its minimum is paused (limit 0), never under-fed: OCPP
  AC charging below ~6 A is not possible (IEC 61851-1 PWM duty cycle);
- otherwise weighted max-min fairness (water-filling): every session's level rises
  in proportion to its weight until it reaches its cap or a limit it shares binds;
- a session that leaves capacity unused is capped at its draw plus a headroom
  (``cap_a``), so the rest flows to the others;
- a session of a station that refused its profile is counted at a fixed current
  (its rating) and never adjusted (``fixed_a``).
No I/O here: the service builds the inputs and applies the outputs.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PHASES = 3
UNLIMITED = math.inf
STEP_A = 0.1  # OCPP limits carry at most one decimal (2.0.1 ChargingSchedulePeriodType.limit)
_EPS = 1e-9

PerPhase = tuple[float, float, float]
NO_LIMIT: PerPhase = (UNLIMITED, UNLIMITED, UNLIMITED)
NO_LOAD: PerPhase = (0.0, 0.0, 0.0)


class AllocationError(ValueError):
    """The inputs do not describe a valid site (negative limit, cycle, unknown node, ...)."""


@dataclass(frozen=True, slots=True)
class Node:
    """A site (``parent_id`` None) or a group under a site or another group."""

    node_id: str
    parent_id: str | None = None
    limit_a: PerPhase = NO_LIMIT
    base_load_a: PerPhase = NO_LOAD  # measured non-EV load, subtracted from the limit


@dataclass(frozen=True, slots=True)
class Demand:
    """One active session asking for current."""

    session_id: str
    station_id: str
    node_id: str  # the group (or site) its EVSE hangs under
    phases: tuple[int, ...]  # the site phases it loads: (0, 1, 2), or one of them
    min_a: float
    max_a: float
    weight: float = 1.0
    order: int = 0  # arrival order: of equal weights, the last to arrive is paused first
    cap_a: float | None = None  # underuse: what it draws plus a headroom
    fixed_a: float | None = None  # counted at this current and never adjusted

    @property
    def ceiling_a(self) -> float:
        if self.cap_a is None:
            return self.max_a
        return min(self.max_a, max(self.min_a, self.cap_a))


@dataclass(frozen=True, slots=True)
class Grant:
    session_id: str
    limit_a: float  # 0: paused
    paused: bool
    fixed: bool = False


@dataclass(frozen=True, slots=True)
class NodeUsage:
    node_id: str
    available_a: PerPhase  # the limit minus the non-EV load
    used_a: PerPhase  # granted to sessions below this node


@dataclass(frozen=True)
class Allocation:
    grants: dict[str, Grant] = field(default_factory=dict)
    usage: dict[str, NodeUsage] = field(default_factory=dict)


Constraint = tuple[str, int]  # (node id, phase)


class _Tree:
    def __init__(self, nodes: Sequence[Node], demands: Sequence[Demand]) -> None:
        self.nodes = {node.node_id: node for node in nodes}
        if len(self.nodes) != len(nodes):
            raise AllocationError("duplicate node id")
        for node in nodes:
            _check_node(node, self.nodes)
        self.paths = {node.node_id: self._path(node.node_id) for node in nodes}
        _check_demands(demands, self.paths)

    def _path(self, node_id: str) -> tuple[str, ...]:
        """The node and its ancestors up to the site; a cycle is an error."""
        path: list[str] = []
        current: str | None = node_id
        while current is not None:
            if current in path:
                cycle = " → ".join([*path[path.index(current) :], current])
                raise AllocationError(f"group cycle: {cycle}")
            path.append(current)
            current = self.nodes[current].parent_id
        return tuple(path)

    def constraints(self, demand: Demand) -> list[Constraint]:
        return [
            (node_id, phase) for node_id in self.paths[demand.node_id] for phase in demand.phases
        ]


def _check_node(node: Node, nodes: dict[str, Node]) -> None:
    if any(value < 0 or math.isnan(value) for value in (*node.limit_a, *node.base_load_a)):
        raise AllocationError(f"node {node.node_id}: a limit or load is negative")
    if node.parent_id is not None and node.parent_id not in nodes:
        raise AllocationError(f"node {node.node_id}: unknown parent {node.parent_id}")


def _check_demands(demands: Sequence[Demand], paths: dict[str, tuple[str, ...]]) -> None:
    site_of_station: dict[str, str] = {}
    seen: set[str] = set()
    for demand in demands:
        name = f"session {demand.session_id}"
        if demand.session_id in seen:
            raise AllocationError(f"{name}: listed twice")
        seen.add(demand.session_id)
        if demand.node_id not in paths:
            raise AllocationError(f"{name}: unknown node {demand.node_id}")
        if not demand.phases or any(p not in range(PHASES) for p in demand.phases):
            raise AllocationError(f"{name}: phases must be among 0, 1, 2")
        if demand.min_a < 0 or demand.max_a < demand.min_a or demand.weight <= 0:
            raise AllocationError(f"{name}: needs 0 <= min_a <= max_a and a positive weight")
        site = paths[demand.node_id][-1]
        if site_of_station.setdefault(demand.station_id, site) != site:
            raise AllocationError(
                f"station {demand.station_id} is in two sites: "
                f"{site_of_station[demand.station_id]} and {site}"
            )


def allocate(nodes: Sequence[Node], demands: Sequence[Demand]) -> Allocation:
    """The current limit of every session; see the module docstring for the rules."""
    tree = _Tree(nodes, demands)
    capacity = {
        (node.node_id, phase): max(0.0, node.limit_a[phase] - node.base_load_a[phase])
        for node in nodes
        for phase in range(PHASES)
    }
    available = dict(capacity)
    grants: dict[str, Grant] = {}
    for demand in demands:
        if demand.fixed_a is not None:
            grants[demand.session_id] = Grant(demand.session_id, demand.fixed_a, False, True)
            for constraint in tree.constraints(demand):
                capacity[constraint] = max(0.0, capacity[constraint] - demand.fixed_a)
    active = sorted(
        (d for d in demands if d.fixed_a is None), key=lambda d: (d.order, d.session_id)
    )
    levels = _fill_pausing(tree, active, capacity)
    for demand in active:
        limit = _granted(levels.get(demand.session_id, 0.0), demand)
        grants[demand.session_id] = Grant(demand.session_id, limit, paused=limit == 0.0)
    return Allocation(grants, _usage(tree, nodes, demands, grants, available))


def _fill_pausing(
    tree: _Tree, active: list[Demand], capacity: dict[Constraint, float]
) -> dict[str, float]:
    """Water-fill; while someone is under its minimum, pause the least entitled of them."""
    while True:
        levels = _water_fill(tree, active, capacity)
        starved = [d for d in active if levels[d.session_id] < d.min_a - 1e-6]
        if not starved:
            return levels
        victim = min(starved, key=lambda d: (d.weight, -d.order, d.session_id))
        active = [d for d in active if d is not victim]


def _water_fill(
    tree: _Tree, active: Sequence[Demand], capacity: dict[Constraint, float]
) -> dict[str, float]:
    """Weighted max-min fair levels: raise everyone at the rate of its weight until capped."""
    remaining = dict(capacity)
    levels = {d.session_id: 0.0 for d in active}
    uses = {d.session_id: tree.constraints(d) for d in active}
    rising = list(active)
    while rising:
        rates: dict[Constraint, float] = {}
        for demand in rising:
            for constraint in uses[demand.session_id]:
                rates[constraint] = rates.get(constraint, 0.0) + demand.weight
        step = min(
            min((remaining[c] / rate for c, rate in rates.items()), default=UNLIMITED),
            min((d.ceiling_a - levels[d.session_id]) / d.weight for d in rising),
        )
        step = max(0.0, step)
        for demand in rising:
            levels[demand.session_id] += demand.weight * step
        for constraint, rate in rates.items():
            remaining[constraint] -= rate * step
        bound = {c for c in rates if _exhausted(remaining[c], capacity[c])}
        rising = [
            d
            for d in rising
            if levels[d.session_id] < d.ceiling_a - _EPS
            and not any(c in bound for c in uses[d.session_id])
        ]
    return levels


def _exhausted(remaining: float, capacity: float) -> bool:
    return not math.isinf(capacity) and remaining <= _EPS * max(1.0, capacity)


def _granted(level: float, demand: Demand) -> float:
    """The level rounded down to the OCPP step, but never below the minimum it reached."""
    if level < demand.min_a - 1e-6:
        return 0.0
    return max(_floor_step(level), demand.min_a)


def _floor_step(current_a: float) -> float:
    """Down to the OCPP step, so rounding never lifts a sum above a limit."""
    return round(math.floor(current_a / STEP_A + 1e-6) * STEP_A, 1)


def _usage(
    tree: _Tree,
    nodes: Iterable[Node],
    demands: Iterable[Demand],
    grants: dict[str, Grant],
    available: dict[Constraint, float],
) -> dict[str, NodeUsage]:
    used = dict.fromkeys(available, 0.0)
    for demand in demands:
        for constraint in tree.constraints(demand):
            used[constraint] += grants[demand.session_id].limit_a
    return {
        node.node_id: NodeUsage(
            node.node_id,
            _per_phase(available, node.node_id),
            _per_phase(used, node.node_id),
        )
        for node in nodes
    }


def _per_phase(values: dict[Constraint, float], node_id: str) -> PerPhase:
    return (values[(node_id, 0)], values[(node_id, 1)], values[(node_id, 2)])


def urgency_weight(
    priority: float,
    *,
    energy_needed_wh: float | None,
    hours_left: float | None,
    max_a: float,
    volts_per_amp: float,
) -> float:
    """A session's weight: its priority, raised up to 2x by how urgent its energy need is.

    2.x NotifyEVChargingNeeds gives the energy the EV wants and its departure time;
    the current needed to deliver it in time, relative to the EV's maximum, is the urgency.
    """
    if not energy_needed_wh or not hours_left or hours_left <= 0 or max_a <= 0:
        return priority
    needed_a = energy_needed_wh / (hours_left * volts_per_amp)
    return priority * (1.0 + min(1.0, needed_a / max_a))
