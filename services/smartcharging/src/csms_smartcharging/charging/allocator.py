"""The allocation loop: recompute a site when something changed, and on every tick.

A change (session started/ended, a limit, a reconnect) marks its site dirty and
wakes the loop; a short debounce folds a burst of changes into one allocation.
Every ``allocation_tick_s`` all sites are recomputed (schedules cross their
boundaries, overrides expire, EVs start or stop using what they were given).
With several replicas, one leads and allocates (``Leadership``: a PostgreSQL
advisory lock); the others consume and serve REST, and pass the changes they see
on to the leader.

A station that connects gets its station-wide profiles at once, from whichever
replica consumed the connection, without waiting for an allocation: the failsafe
TxDefaultProfile (so an EV that plugs in right after its station boots is already
capped) and, for a rated station, a ChargingStationMaxProfile.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from csms_core import topics
from csms_core.bus import Bus
from csms_core.db import session_factory, transaction, utc_now
from csms_core.router import Build, Router
from csms_ocpp import OcppVersion
from csms_smartcharging.allocation import Allocation, AllocationError, Demand, Node, allocate
from csms_smartcharging.charging import planner
from csms_smartcharging.charging.events import limit_changed
from csms_smartcharging.charging.failsafe import FailsafeCache
from csms_smartcharging.charging.leadership import Leadership
from csms_smartcharging.charging.models import EvseLimit, LoadSample
from csms_smartcharging.charging.store import SiteSnapshot, site_snapshot
from csms_smartcharging.profiles import wire
from csms_smartcharging.profiles.sender import ProfileSender, Sent
from csms_smartcharging.settings import SmartChargingSettings
from csms_smartcharging.topology.limits import site_nodes
from csms_smartcharging.topology.models import Site, StationAssignment

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SitePlan:
    """One allocation of a site: what went in and what came out."""

    site: Site
    at: datetime
    nodes: list[Node]
    demands: list[Demand]
    allocation: Allocation
    snapshot: SiteSnapshot


class Allocator:
    def __init__(
        self,
        settings: SmartChargingSettings,
        bus: Bus,
        sender: ProfileSender,
        engine: AsyncEngine,
        router: Router,
        leadership: Leadership,
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._router = router
        self._sender = sender
        self._engine = engine
        self._factory = session_factory(engine)
        self._dirty: dict[str, str] = {}
        self._wake = asyncio.Event()
        self._leadership = leadership
        leadership.on_change(self._changed_elsewhere)
        self._rounds = asyncio.Lock()  # one round at a time, whoever triggers it
        self.failsafes = FailsafeCache()
        self._resending: set[str] = set()  # stations whose station-wide profiles are on the way
        self._background: set[asyncio.Task[Any]] = set()
        self.latest: dict[str, SitePlan] = {}

    @property
    def leads(self) -> bool:
        """This replica allocates (always so on SQLite, where there is only one)."""
        return self._leadership.leads

    def mark_dirty(self, site_id: str, reason: str) -> None:
        """Re-allocate the site soon; the latest reason names the allocation (a tick, the least).

        On a replica that does not lead, the leader is told (unless it is only the tick).
        """
        if reason != "tick" or site_id not in self._dirty:
            self._dirty[site_id] = reason
        self._wake.set()
        if reason != "tick":
            self._leadership.tell_leader(site_id, reason)

    def station_connected(self, station_id: str, version: str, site_id: str) -> None:
        """Its station-wide profiles go now; its sessions' TxProfiles with the next round."""
        self._spawn(self._connected(station_id, version, site_id))

    def station_changed(self, station_id: str, site_id: str | None) -> None:
        """Its assignment or rating changed (REST): station-wide profiles again if online."""
        if site_id is not None:
            self.topology_changed(site_id)
        self._spawn(self._resend_station_profiles([station_id]))

    def topology_changed(self, site_id: str) -> None:
        """Stations, ratings or limits changed: a failsafe computed before is not used again."""
        self.failsafes.topology_changed(site_id)

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for the station-wide profiles on their way (tests)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def _resend_station_profiles(self, station_ids: list[str]) -> None:
        async def one(station_id: str) -> None:
            self._resending.add(station_id)
            try:
                route = await self._router.lookup(station_id)
                if route is not None:
                    await self.send_station_profiles(station_id, route.ocpp_version)
            finally:
                self._resending.discard(station_id)

        results = await asyncio.gather(*(one(s) for s in station_ids), return_exceptions=True)
        for station_id, result in zip(station_ids, results, strict=True):
            if isinstance(result, Exception):
                logger.warning("station profiles of %s not sent: %r", station_id, result)

    async def _connected(self, station_id: str, version: str, site_id: str) -> None:
        try:
            await self.send_station_profiles(station_id, version)
        except Exception:
            logger.exception("station profiles of %s not sent", station_id)
        finally:
            self.mark_dirty(site_id, "reconnected")

    async def run(self, stopping: asyncio.Event) -> None:
        forwarding = asyncio.create_task(self._leadership.forward(stopping))
        try:
            await self._leadership.check()  # at once: a leader listens before the first change
            while not stopping.is_set():
                await self._wait(stopping)
                if stopping.is_set() or not await self._leadership.check():
                    continue
                await self.round()
        finally:
            forwarding.cancel()
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(forwarding, *self._background, return_exceptions=True)
            await self._leadership.close()

    def _changed_elsewhere(self, site_id: str, reason: str) -> None:
        """Another replica saw a change of the site (we lead): allocate it soon."""
        self.topology_changed(site_id)  # perhaps: another replica's REST change
        self.mark_dirty(site_id, reason)

    async def _wait(self, stopping: asyncio.Event) -> None:
        woken = asyncio.create_task(self._wake.wait())
        stopped = asyncio.create_task(stopping.wait())
        done, pending = await asyncio.wait(
            {woken, stopped},
            timeout=self._settings.allocation_tick_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if not done:  # the tick
            async with self._factory() as session:
                for site_id in await session.exec(select(Site.site_id)):
                    self.mark_dirty(site_id, "tick")
        self._wake.clear()
        await asyncio.sleep(self._settings.allocation_debounce_s)

    async def round(self) -> None:
        """Allocate every dirty site (after the failsafe of stations that just connected)."""
        async with self._rounds:
            await self._round()

    async def _round(self) -> None:
        dirty, self._dirty = self._dirty, {}
        for site_id, reason in dirty.items():
            try:
                await self.allocate_site(site_id, reason)
            except AllocationError as exc:
                logger.error("site %s cannot be allocated: %s", site_id, exc)  # noqa: TRY400 - no trace

    async def plan(self, site_id: str, at: datetime | None = None) -> SitePlan | None:
        """The allocation the site would get now, without sending anything."""
        at, generation = at or utc_now(), self.failsafes.generation(site_id)
        async with self._factory() as session:
            site = await session.get(Site, site_id)
            if site is None:
                return None
            snapshot = await site_snapshot(session, site)
        nodes = site_nodes(
            site, snapshot.groups, snapshot.schedules, snapshot.override, snapshot.load, at
        )
        nodes += planner.station_nodes(snapshot.rows)
        demands = planner.demands(snapshot.rows, self._settings, at)
        plan = SitePlan(site, at, nodes, demands, allocate(nodes, demands), snapshot)
        self.failsafes.store(site_id, self._shared_failsafe_a(plan), generation)
        return plan

    async def allocate_site(self, site_id: str, reason: str) -> SitePlan | None:
        plan = await self.plan(site_id)
        if plan is None:
            return None
        changes = planner.changes(
            plan.snapshot.rows,
            plan.allocation,
            {demand.session_id: demand for demand in plan.demands},
            self._settings.resend_threshold_a,
            retry_unreliable=reason == "tick",
        )
        decreases = [change for change in changes if change.decrease]
        raises = [change for change in changes if not change.decrease]
        sent = await self._sender.send_all(decreases)
        if raises:
            raises = await self._still_fitting(plan, raises)
            sent += await self._sender.send_all(raises)
        await self._record(plan, sent)
        self._refresh_failsafe(plan)
        for each in sent:
            await self._bus.publish(
                topics.CHARGING_LIMITS,
                limit_changed(
                    each,
                    site_id=site_id,
                    reason=reason,
                    voltage_v=plan.site.voltage_v,
                    valid_from=plan.at,
                ),
            )
        self.latest[site_id] = plan
        return plan

    async def _still_fitting(
        self, plan: SitePlan, raises: list[planner.ProfileChange]
    ) -> list[planner.ProfileChange]:
        """The raises that still fit once the decreases went out: a session that started
        after ``plan`` was made draws its failsafe at once, and a raise computed without it
        could take the site over its limit (4 EVSEs of 32 A behind 64 A reached 80 A). Those
        are planned again: the next round sends what fits with the new session counted."""
        again = await self.plan(plan.site.site_id)
        if again is None:
            return []
        known = {session.session_id for session in plan.snapshot.rows.sessions}
        if all(session.session_id in known for session in again.snapshot.rows.sessions):
            return raises
        fitting = []
        for change in raises:
            grant = again.allocation.grants.get(change.session_id)
            if grant is not None and change.limit_a <= grant.limit_a:
                fitting.append(change)
        if len(fitting) < len(raises):
            logger.info(
                "site %s: %d raises held back for sessions started meanwhile",
                plan.site.site_id,
                len(raises) - len(fitting),
            )
            self.mark_dirty(plan.site.site_id, "raise_rechecked")
        return fitting

    def _refresh_failsafe(self, plan: SitePlan) -> None:
        """Stations whose failsafe is out of date get it again: when it fell (more EVSEs, a
        lower limit), and when it rose by a tenth (non-EV load moves it all the time)."""
        failsafe_a = self._shared_failsafe_a(plan)
        stale = [
            limit.station_id
            for limit in plan.snapshot.rows.evse_limits
            if limit.evse_id == 0
            and limit.station_id not in self._resending
            and not (
                limit.limit_a - self._settings.resend_threshold_a
                <= failsafe_a
                <= limit.limit_a + max(self._settings.resend_threshold_a, 0.1 * limit.limit_a)
            )
        ]
        if stale:
            logger.info(
                "site %s failsafe now %.1f A: sent to %d stations",
                plan.site.site_id,
                failsafe_a,
                len(stale),
            )
            self._spawn(self._resend_station_profiles(stale))

    async def _record(self, plan: SitePlan, sent: list[Sent]) -> None:
        usage = plan.allocation.usage[plan.site.site_id]
        site_node = plan.nodes[0]
        async with transaction(self._factory) as session:
            for each in sent:
                change = each.change
                limit = await session.get(EvseLimit, (change.station_id, change.evse_id))
                limit = limit or EvseLimit(station_id=change.station_id, evse_id=change.evse_id)
                limit.session_id, limit.limit_a = change.session_id, change.limit_a
                limit.phases, limit.purpose = change.phases, wire.Purpose.TX.value
                limit.outcome, limit.accepted, limit.sent_at = each.outcome, each.accepted, plan.at
                session.add(limit)
            session.add(
                LoadSample(
                    site_id=plan.site.site_id,
                    at=plan.at,
                    limit_a=[_finite(value) for value in site_node.limit_a],
                    non_ev_a=list(site_node.base_load_a),
                    allocated_a=list(usage.used_a),
                    measured_a=measured_per_phase(plan),
                    sessions=len(plan.demands),
                    paused=sum(grant.paused for grant in plan.allocation.grants.values()),
                )
            )

    async def send_station_profiles(self, station_id: str, version_number: str) -> list[str]:
        """The station-wide profiles of a station: the failsafe TxDefaultProfile (what it applies
        if it loses us, OCPP 2.0.1 K01) and, for a rated station, its ChargingStationMaxProfile
        (1.6: ChargePointMaxProfile). A station on no site gets ours cleared. The outcomes."""
        async with self._factory() as session:
            assignment = await session.get(StationAssignment, station_id)
            site = await session.get(Site, assignment.site_id) if assignment else None
        if assignment is None or site is None:
            return [await self._sender.call(station_id, clear_profiles)]
        limit_a = await self.failsafe_a(site)
        limits = [(wire.Purpose.TX_DEFAULT, limit_a)]
        if assignment.max_a is not None:
            limits.append((wire.Purpose.STATION_MAX, assignment.max_a))
        outcomes = [
            await self._sender.call(
                station_id, station_profile(purpose=purpose, limit_a=limit, phases=site.phases)
            )
            for purpose, limit in limits
        ]
        async with transaction(self._factory) as session:
            # EVSE 0 of the limits on the wire: the station-wide failsafe.
            limit = await session.get(EvseLimit, (station_id, 0))
            limit = limit or EvseLimit(station_id=station_id, evse_id=0)
            limit.session_id, limit.purpose = None, wire.Purpose.TX_DEFAULT.value
            limit.limit_a, limit.phases = limit_a, site.phases
            limit.outcome, limit.accepted, limit.sent_at = (
                outcomes[0],
                outcomes[0] == "Accepted",
                utc_now(),
            )
            session.add(limit)
        logger.info(
            "station profiles to %s (failsafe %.1f A, max %s A): %s",
            station_id,
            limit_a,
            assignment.max_a,
            outcomes,
        )
        return outcomes

    async def failsafe_a(self, site: Site) -> float:
        """The per-EVSE failsafe of the site: its own, or its limit shared by all its EVSEs
        (safe even if every station is cut off); computed at most every ``FAILSAFE_TTL_S``."""
        if site.failsafe_a is not None:
            return site.failsafe_a
        async with self.failsafes.computing(site.site_id):
            if (fresh := self.failsafes.fresh(site.site_id)) is not None:
                return fresh
            await self.plan(site.site_id)
        known = self.failsafes.latest(site.site_id)
        return known if known is not None else self._settings.failsafe_a

    def _shared_failsafe_a(self, plan: SitePlan) -> float:
        if plan.site.failsafe_a is not None:
            return plan.site.failsafe_a
        rows = plan.snapshot.rows
        evses = len(rows.evses) or len(rows.stations) or 1
        site_a = plan.nodes[0].limit_a[0] - max(plan.nodes[0].base_load_a)
        if site_a == float("inf"):
            return self._settings.failsafe_a
        return max(0.0, min(self._settings.default_max_a, site_a / evses))


def measured_per_phase(plan: SitePlan) -> list[float]:
    """What the site's sessions draw per phase, as they last reported it."""
    measured = [0.0, 0.0, 0.0]
    sessions = {session.session_id: session for session in plan.snapshot.rows.sessions}
    for demand in plan.demands:
        current = sessions[demand.session_id].current_a or 0.0
        for phase in demand.phases:
            measured[phase] += current
    return [round(value, 2) for value in measured]


def _finite(value: float) -> float | None:
    return None if value == float("inf") else value


def clear_profiles(version: OcppVersion) -> tuple[str, wire.JsonObject]:
    return "ClearChargingProfile", wire.clear_charging_profile(version)


def station_profile(*, purpose: wire.Purpose, limit_a: float, phases: int) -> Build:
    """A station-wide (EVSE 0) SetChargingProfile in the version of the live connection."""
    return lambda version: (
        "SetChargingProfile",
        wire.set_charging_profile(
            version, evse_id=0, purpose=purpose, limit_a=limit_a, phases=phases
        ),
    )
