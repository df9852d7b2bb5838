"""The allocation loop: recompute a site when something changed, and on every tick.

A change (session started/ended, a limit, a reconnect) marks its site dirty and
wakes the loop; a short debounce folds a burst of changes into one allocation.
Every ``allocation_tick_s`` all sites are recomputed (schedules cross their
boundaries, overrides expire, EVs start or stop using what they were given).
With several replicas, one leads (a PostgreSQL advisory lock) and allocates;
the others consume and serve REST.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import select

from csms_core import topics
from csms_core.bus import Bus
from csms_core.db import session_factory, transaction
from csms_ocpp import OcppVersion
from csms_smartcharging.allocation import Allocation, AllocationError, Demand, Node, allocate
from csms_smartcharging.charging import planner
from csms_smartcharging.charging.events import limit_changed
from csms_smartcharging.charging.models import EvseLimit, LoadSample
from csms_smartcharging.charging.store import SiteSnapshot, site_snapshot
from csms_smartcharging.db import utc_now
from csms_smartcharging.profiles import wire
from csms_smartcharging.profiles.sender import ProfileSender, Sent
from csms_smartcharging.settings import SmartChargingSettings
from csms_smartcharging.topology.limits import site_nodes
from csms_smartcharging.topology.models import Site, StationAssignment

logger = logging.getLogger(__name__)

_LEADER_LOCK = 0x5C0A11  # pg advisory lock key of the allocating replica


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
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._sender = sender
        self._engine = engine
        self._factory = session_factory(engine)
        self._dirty: dict[str, str] = {}
        self._failsafe_due: dict[str, str] = {}  # station id -> OCPP version number
        self._wake = asyncio.Event()
        self._leader: AsyncConnection | None = None
        self._rounds = asyncio.Lock()  # one round at a time, whoever triggers it
        self.latest: dict[str, SitePlan] = {}

    def mark_dirty(self, site_id: str, reason: str) -> None:
        """Re-allocate the site soon; the latest reason names the allocation (a tick, the least)."""
        if reason != "tick" or site_id not in self._dirty:
            self._dirty[site_id] = reason
        self._wake.set()

    def station_connected(self, station_id: str, version: str, site_id: str) -> None:
        self._failsafe_due[station_id] = version
        self.mark_dirty(site_id, "reconnected")

    async def run(self, stopping: asyncio.Event) -> None:
        try:
            while not stopping.is_set():
                await self._wait(stopping)
                if stopping.is_set() or not await self._lead():
                    continue
                await self.round()
        finally:
            if self._leader is not None:
                await self._leader.close()

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
        failsafe, self._failsafe_due = self._failsafe_due, {}
        await asyncio.gather(*(self.send_failsafe(s, v) for s, v in failsafe.items()))
        dirty, self._dirty = self._dirty, {}
        for site_id, reason in dirty.items():
            try:
                await self.allocate_site(site_id, reason)
            except AllocationError as exc:
                logger.error("site %s cannot be allocated: %s", site_id, exc)  # noqa: TRY400 - no trace

    async def _lead(self) -> bool:
        """Only one replica allocates (PostgreSQL session advisory lock); SQLite: always."""
        if self._engine.dialect.name != "postgresql":
            return True
        try:
            if self._leader is not None:
                await self._leader.execute(text("SELECT 1"))
                return True
            connection = await self._engine.connect()
            got = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _LEADER_LOCK}
            )
            if got:
                self._leader = connection
                return True
            await connection.close()
        except DBAPIError as exc:
            logger.warning("leadership check failed: %r", exc)
            self._leader = None
        return False

    async def plan(self, site_id: str, at: datetime | None = None) -> SitePlan | None:
        """The allocation the site would get now, without sending anything."""
        at = at or utc_now()
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
        return SitePlan(site, at, nodes, demands, allocate(nodes, demands), snapshot)

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
        sent = await self._sender.send_all(changes)
        await self._record(plan, sent)
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

    async def send_failsafe(self, station_id: str, version_number: str) -> str:
        """The station-wide TxDefaultProfile: what it applies if it loses us (OCPP 2.0.1 K01)."""
        async with self._factory() as session:
            assignment = await session.get(StationAssignment, station_id)
            site = await session.get(Site, assignment.site_id) if assignment else None
            if site is None:
                return "unassigned"
        plan = await self.plan(site.site_id)
        limit_a = site.failsafe_a
        if limit_a is None and plan is not None:
            # The site limit shared by all its EVSEs: safe even if every station is cut off.
            rows = plan.snapshot.rows
            evses = len(rows.evses) or len(rows.stations) or 1
            site_a = plan.nodes[0].limit_a[0] - max(plan.nodes[0].base_load_a)
            limit_a = min(self._settings.default_max_a, site_a / evses)
        if limit_a is None or limit_a == float("inf"):
            limit_a = self._settings.failsafe_a
        version = OcppVersion.from_number(version_number)
        payload = wire.set_charging_profile(
            version, evse_id=0, purpose=wire.Purpose.TX_DEFAULT, limit_a=limit_a, phases=site.phases
        )
        outcome = await self._sender.call(station_id, "SetChargingProfile", payload)
        logger.info("failsafe %.1f A to %s: %s", limit_a, station_id, outcome)
        return outcome


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
