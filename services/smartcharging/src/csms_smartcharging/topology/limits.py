"""The limits in force on a site and its groups at a moment (pure: rows in, numbers out).

Every limit that applies counts, and the lowest wins: the static limit, any
schedule active now, an operator override not yet expired, and (on stations)
limits the station reported. A kW limit becomes A per phase at the site's voltage.
"""

import math
from collections.abc import Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

from csms_smartcharging.allocation import UNLIMITED, Node, PerPhase
from csms_smartcharging.topology.models import (
    ChargingGroup,
    LimitOverride,
    LimitSchedule,
    Site,
    SiteLoad,
)


def to_amps(limit_a: float | None, limit_kw: float | None, site: Site) -> float:
    """A limit as A per phase (UNLIMITED when neither is given)."""
    candidates = [UNLIMITED]
    if limit_a is not None:
        candidates.append(limit_a)
    if limit_kw is not None:
        candidates.append(limit_kw * 1000.0 / (site.voltage_v * site.phases))
    return min(candidates)


def schedule_active(schedule: LimitSchedule, at: datetime) -> bool:
    """Is ``at`` inside the schedule's window? A window ending before it starts spans midnight."""
    local = at.astimezone(ZoneInfo(schedule.timezone))
    start, end = time.fromisoformat(schedule.start), time.fromisoformat(schedule.end)
    now, day = local.time(), local.weekday()
    if start <= end:
        return day in schedule.days and start <= now < end
    previous_day = (day - 1) % 7
    return (day in schedule.days and now >= start) or (previous_day in schedule.days and now < end)


def site_limit_a(
    site: Site,
    schedules: Sequence[LimitSchedule],
    override: LimitOverride | None,
    at: datetime,
) -> float:
    limits = [to_amps(site.limit_a, site.limit_kw, site)]
    limits += [
        to_amps(s.limit_a, s.limit_kw, site)
        for s in schedules
        if s.group_id is None and schedule_active(s, at)
    ]
    if override is not None and (override.until is None or override.until > at):
        limits.append(to_amps(override.limit_a, override.limit_kw, site))
    return min(limits)


def group_limit_a(
    group: ChargingGroup, site: Site, schedules: Sequence[LimitSchedule], at: datetime
) -> float:
    limits = [to_amps(group.limit_a, group.limit_kw, site)]
    limits += [
        to_amps(s.limit_a, s.limit_kw, site)
        for s in schedules
        if s.group_id == group.group_id and schedule_active(s, at)
    ]
    return min(limits)


def per_phase(site: Site, limit_a: float) -> PerPhase:
    """A 1-phase site carries everything on L1; L2 and L3 carry nothing."""
    if site.phases == 1:
        return (limit_a, 0.0, 0.0)
    return (limit_a, limit_a, limit_a)


def load_per_phase(load: SiteLoad | None) -> PerPhase:
    if load is None:
        return (0.0, 0.0, 0.0)
    values = [*load.load_a, 0.0, 0.0, 0.0][:3]
    return (values[0], values[1], values[2])


def site_nodes(
    site: Site,
    groups: Sequence[ChargingGroup],
    schedules: Sequence[LimitSchedule],
    override: LimitOverride | None,
    load: SiteLoad | None,
    at: datetime,
) -> list[Node]:
    """The site and its groups as allocation nodes with the limits in force at ``at``."""
    nodes = [
        Node(
            site.site_id,
            None,
            per_phase(site, site_limit_a(site, schedules, override, at)),
            load_per_phase(load),
        )
    ]
    for group in groups:
        nodes.append(
            Node(
                group_node_id(group.group_id),
                group_node_id(group.parent_group_id) if group.parent_group_id else site.site_id,
                per_phase(site, group_limit_a(group, site, schedules, at)),
            )
        )
    return nodes


def group_node_id(group_id: str) -> str:
    return f"group:{group_id}"


def station_node_id(station_id: str) -> str:
    return f"station:{station_id}"


def finite(value: float) -> float | None:
    return None if math.isinf(value) else value
