"""From stored rows to allocation inputs, and from its grants to the profiles worth sending.

Pure functions: the service reads the rows, calls these, and does the I/O.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from csms_smartcharging.allocation import UNLIMITED, Allocation, Demand, Node, urgency_weight
from csms_smartcharging.charging.models import ChargingSession, EvseLimit, StationLimit
from csms_smartcharging.settings import SmartChargingSettings
from csms_smartcharging.topology.limits import group_node_id, per_phase, station_node_id
from csms_smartcharging.topology.models import EvseRating, Site, StationAssignment

# A station that answered these (or was unreachable) may not apply what we send.
UNRELIABLE_OUTCOMES = frozenset(
    {"Rejected", "error", "timeout", "invalid_response", "rejected", "offline"}
)
_ROTATION_PHASE = {"R": 0, "S": 1, "T": 2}


@dataclass(frozen=True, slots=True)
class SiteRows:
    site: Site
    stations: Sequence[StationAssignment]
    evses: Sequence[EvseRating]
    sessions: Sequence[ChargingSession]
    station_limits: Sequence[StationLimit]
    evse_limits: Sequence[EvseLimit]


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """A limit to send to one EVSE for one session."""

    station_id: str
    evse_id: int
    session_id: str
    transaction_id: str | None
    ocpp_version: str | None
    limit_a: float
    phases: int
    previous_a: float | None

    @property
    def decrease(self) -> bool:
        return self.previous_a is None or self.limit_a < self.previous_a


def station_nodes(rows: SiteRows) -> list[Node]:
    """One node per station under its group: its rating and station-wide reported limits."""
    nodes = []
    for station in rows.stations:
        limits = [station.max_a if station.max_a is not None else UNLIMITED]
        limits += [
            limit.limit_a
            for limit in rows.station_limits
            if limit.station_id == station.station_id
            and limit.evse_id == 0
            and limit.limit_a is not None
        ]
        parent = group_node_id(station.group_id) if station.group_id else station.site_id
        nodes.append(
            Node(station_node_id(station.station_id), parent, per_phase(rows.site, min(limits)))
        )
    return nodes


def phases_of(site: Site, rating: EvseRating) -> tuple[int, ...]:
    """The site phases an EVSE loads (OCPP 2.0.1 PhaseRotation: first letter = its L1)."""
    if site.phases == 1:
        return (0,)
    if rating.phases == 1:
        return (_ROTATION_PHASE.get(rating.phase_rotation[:1].upper(), 0),)
    return (0, 1, 2)


def rating_of(
    rows: SiteRows, station_id: str, evse_id: int, settings: SmartChargingSettings
) -> EvseRating:
    for rating in rows.evses:
        if rating.station_id == station_id and rating.evse_id == evse_id:
            return rating
    return EvseRating(
        station_id=station_id,
        evse_id=evse_id,
        max_a=settings.default_max_a,
        min_a=settings.default_min_a,
    )


def demands(rows: SiteRows, settings: SmartChargingSettings, now: datetime) -> list[Demand]:
    assigned = {station.station_id for station in rows.stations}
    ordered = sorted(rows.sessions, key=lambda s: (s.started_at, s.session_id))
    return [
        _demand(rows, session, order, settings, now)
        for order, session in enumerate(ordered)
        if session.station_id in assigned and _current(session, settings, now)
    ]


def _current(session: ChargingSession, settings: SmartChargingSettings, now: datetime) -> bool:
    """A provisional session counts until its session comes, or for ``provisional_ttl_s``."""
    age_s = (now - session.started_at).total_seconds()
    return not session.provisional or age_s <= settings.provisional_ttl_s


def _demand(
    rows: SiteRows,
    session: ChargingSession,
    order: int,
    settings: SmartChargingSettings,
    now: datetime,
) -> Demand:
    rating = rating_of(rows, session.station_id, session.evse_id, settings)
    phases = phases_of(rows.site, rating)
    min_a = max(rating.min_a, session.ev_min_a or 0.0)
    max_a = min(rating.max_a, session.ev_max_a or UNLIMITED, _reported_evse_limit(rows, session))
    if max_a < min_a:
        min_a = max_a = 0.0  # the EV cannot be served within its limits: paused
    hours_left = (
        (session.departure_at - now).total_seconds() / 3600 if session.departure_at else None
    )
    underusing = (
        session.underuse_since is not None
        and (now - session.underuse_since).total_seconds() >= settings.underuse_after_s
        and session.current_a is not None
    )
    return Demand(
        session_id=session.session_id,
        station_id=session.station_id,
        node_id=station_node_id(session.station_id),
        phases=phases,
        min_a=min_a,
        max_a=max_a,
        weight=urgency_weight(
            session.priority * rating.priority,
            energy_needed_wh=session.energy_needed_wh,
            hours_left=hours_left,
            max_a=max_a,
            volts_per_amp=rows.site.voltage_v * len(phases),
        ),
        order=order,
        cap_a=(session.current_a or 0.0) + settings.underuse_headroom_a if underusing else None,
        fixed_a=max_a if session.provisional or _unreliable(rows, session) else None,
    )


def _reported_evse_limit(rows: SiteRows, session: ChargingSession) -> float:
    limits = [
        limit.limit_a
        for limit in rows.station_limits
        if limit.station_id == session.station_id
        and limit.evse_id == session.evse_id
        and limit.limit_a is not None
    ]
    return min(limits, default=UNLIMITED)


def _unreliable(rows: SiteRows, session: ChargingSession) -> bool:
    """The station refused (or never got) this session's last limit: count it at its max."""
    return any(
        limit.station_id == session.station_id
        and limit.evse_id == session.evse_id
        and limit.session_id == session.session_id
        and limit.outcome in UNRELIABLE_OUTCOMES
        for limit in rows.evse_limits
    )


def changes(
    rows: SiteRows,
    allocation: Allocation,
    demands_by_id: dict[str, Demand],
    threshold_a: float,
    *,
    retry_unreliable: bool = False,
) -> list[ProfileChange]:
    """The limits worth sending: new, lower, higher by ``threshold_a`` or more, or unconfirmed.

    Decreases come first, so a site never goes over its limit while capacity moves
    from one EV to another.
    """
    sent = {(limit.station_id, limit.evse_id): limit for limit in rows.evse_limits}
    found = []
    for session in rows.sessions:
        grant = allocation.grants.get(session.session_id)
        demand = demands_by_id.get(session.session_id)
        if grant is None or demand is None or (grant.fixed and not retry_unreliable):
            continue
        if session.provisional:  # no transaction of ours to address a profile to yet
            continue
        last = sent.get((session.station_id, session.evse_id))
        # A lower limit always goes (a stale higher one could hold the site above its
        # limit: 20 EVs 0.1 A over are 2 A over); a higher one once it gained threshold_a.
        same = (
            last is not None
            and last.session_id == session.session_id
            and last.accepted
            and 0 <= _tenths(grant.limit_a) - _tenths(last.limit_a) < threshold_a
            and (grant.limit_a > 0) == (last.limit_a > 0)
        )
        if same:
            continue
        found.append(
            ProfileChange(
                station_id=session.station_id,
                evse_id=session.evse_id,
                session_id=session.session_id,
                transaction_id=session.transaction_id,
                ocpp_version=session.ocpp_version,
                limit_a=grant.limit_a,
                phases=len(demand.phases),
                previous_a=last.limit_a if last is not None and last.accepted else None,
            )
        )
    return sorted(found, key=lambda c: (not c.decrease, c.station_id, c.evse_id))


def _tenths(limit_a: float) -> float:
    """A limit as the wire carries it (rounded down to 0.1 A): float noise is no change."""
    return math.floor(limit_a * 10 + 1e-6) / 10
