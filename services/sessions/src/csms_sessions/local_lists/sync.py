"""Sending each station the local list we want it to hold, after the change is committed.

``sync`` runs inline after a REST change, and in the background for lists left
pending: by a token change, or because the station was offline or failed. A
station that (re)connects or boots is synced at once (``station.connected`` /
``station.booted`` on ``csms.station-status``). A lease on the list row keeps
two replicas from sending to one station at the same time.
"""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus import Bus, Delivery
from csms_core.bus.batching import BatchedConsumer, BatchLimits
from csms_core.db import among, transaction
from csms_core.events import StationBooted, StationConnected
from csms_core.events.topic import type_name
from csms_core.router import (
    Build,
    CommandClient,
    CommandOutcome,
    InvalidCommand,
    Router,
    StationOffline,
    planned,
)
from csms_core.topics import STATION_STATUS
from csms_ocpp import OcppVersion, schemas
from csms_sessions.db import utc_now
from csms_sessions.local_lists.messages import select_sendable, send_local_list
from csms_sessions.local_lists.models import LocalList, LocalListEntry
from csms_sessions.local_lists.service import entries_of
from csms_sessions.settings import SessionsSettings
from csms_sessions.stations.models import Station

logger = logging.getLogger(__name__)

ACCEPTED = "Accepted"
# OCPP 1.6 §6.50 / 2.0.1 D01.FR.xx: the station lost track of our version: send it all again.
RESEND_FULL = frozenset({"VersionMismatch", "Failed"})
NOT_SUPPORTED = "NotSupported"
LEASE = timedelta(minutes=2)


class LocalListSync:
    """Owns the sending of local lists for one sessions process."""

    def __init__(
        self,
        settings: SessionsSettings,
        factory: async_sessionmaker[AsyncSession],
        router: Router,
        commands: CommandClient,
    ) -> None:
        self._settings = settings
        self._factory = factory
        self._router = router
        self._commands = commands
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for pending lists now (e.g. after a token change was committed)."""
        self._wake.set()

    async def sync(self, station_id: str, *, full: bool = False) -> bool:
        """Send what the station's list lacks (all of it if ``full``); False if another
        replica is at it or there is no list."""
        if not await self._claim(station_id, full=full):
            return False
        try:
            await self._sync_claimed(station_id)
        finally:
            async with transaction(self._factory) as session:
                local_list = await session.get(LocalList, station_id)
                if local_list is not None:
                    local_list.lease_until = None
        return True

    async def _claim(self, station_id: str, *, full: bool) -> bool:
        now = utc_now()
        values: dict[str, object] = {"lease_until": now + LEASE}
        if full:
            values |= {"needs_full": True, "pending": True}
        async with transaction(self._factory) as session:
            claimed = await session.exec(
                update(LocalList)
                .where(col(LocalList.station_id) == station_id)
                .where(or_(col(LocalList.lease_until).is_(None), col(LocalList.lease_until) < now))
                .values(**values)
            )
        return bool(claimed.rowcount == 1)

    async def _sync_claimed(self, station_id: str) -> None:
        route = await self._router.lookup(station_id)
        if route is None:
            await self._finish(station_id, "offline", retry=True)
            return
        version = OcppVersion.from_number(route.ocpp_version)
        status = await self._send_changes(station_id, version)
        if status in RESEND_FULL:
            logger.info("%s answered %s: sending its full local list", station_id, status)
            async with transaction(self._factory) as session:
                local_list = await session.get(LocalList, station_id)
                if local_list is not None:
                    local_list.needs_full = True
            status = await self._send_changes(station_id, version)
        retry = status != ACCEPTED and status != NOT_SUPPORTED
        await self._finish(station_id, status, retry=retry, version=version)

    async def _send_changes(self, station_id: str, version: OcppVersion) -> str:
        """Send the owed Full update or the unsynced entries; the first non-Accepted status."""
        full, entries = await self._plan(station_id, version)
        if not full and not entries:
            return ACCEPTED
        size = self._settings.local_list_items_per_message
        chunks = [entries[i : i + size] for i in range(0, len(entries), size)] or [[]]
        for index, chunk in enumerate(chunks):
            # OCPP 2.0.1 D01.FR.11 / 1.6 SendLocalListMaxLength: a list too long for one
            # message goes as one Full update followed by Differential ones.
            update_type = "Full" if full and index == 0 else "Differential"
            list_version = await self._next_version(station_id)
            payload = send_local_list(version, list_version, update_type, chunk)
            if (violation := schemas.validate(version, "SendLocalList", payload)) is not None:
                logger.error("own SendLocalList breaks its schema: %s", violation.description)
                return "invalid"
            status = await self._call(station_id, planned(version, "SendLocalList", payload))
            if status != ACCEPTED:
                return status
            await self._confirm(station_id, list_version, chunk, full=update_type == "Full")
        return ACCEPTED

    async def _plan(
        self, station_id: str, version: OcppVersion
    ) -> tuple[bool, list[LocalListEntry]]:
        async with transaction(self._factory) as session:
            local_list = await session.get(LocalList, station_id)
            if local_list is None:
                return False, []
            entries = await entries_of(session, station_id)
            if local_list.needs_full:
                for entry in entries:
                    if entry.removed:
                        await session.delete(entry)
                    entry.synced = False
                entries = [entry for entry in entries if not entry.removed]
            else:
                entries = [entry for entry in entries if not entry.synced]
            return local_list.needs_full, select_sendable(entries, version)

    async def _next_version(self, station_id: str) -> int:
        async with transaction(self._factory) as session:
            await session.exec(
                update(LocalList)
                .where(col(LocalList.station_id) == station_id)
                .values(version=col(LocalList.version) + 1)
            )
            local_list = await session.get(LocalList, station_id, populate_existing=True)
            return local_list.version if local_list else 0

    async def _call(self, station_id: str, build: Build) -> str:
        """The station's status, or our outcome: offline (or reconnected), timeout, error."""
        try:
            result = await self._commands.call(station_id, build, self._settings.command_timeout_s)
        except StationOffline:
            return "offline"
        except InvalidCommand as exc:
            logger.exception("own %s breaks its schema", exc.action)
            return "invalid"
        if result.outcome is not CommandOutcome.RESULT:
            logger.warning("%s to %s: %s", result.action, station_id, result.outcome.value)
            return result.outcome.value
        status = (result.payload or {}).get("status")
        return status if isinstance(status, str) else "error"

    async def _confirm(
        self, station_id: str, list_version: int, sent: Sequence[LocalListEntry], *, full: bool
    ) -> None:
        """The station holds ``sent`` as of ``list_version``."""
        async with transaction(self._factory) as session:
            local_list = await session.get(LocalList, station_id)
            if local_list is None:
                return
            local_list.station_version = list_version
            local_list.needs_full = local_list.needs_full and not full
            for item in sent:
                key = (station_id, item.id_token, item.type)
                entry = await session.get(LocalListEntry, key)
                if entry is None or _content(entry) != _content(item):
                    continue  # changed while in flight: it stays unsynced
                if entry.removed:
                    await session.delete(entry)
                else:
                    entry.synced = True

    async def _finish(
        self, station_id: str, status: str, *, retry: bool, version: OcppVersion | None = None
    ) -> None:
        async with transaction(self._factory) as session:
            local_list = await session.get(LocalList, station_id)
            if local_list is None:
                return
            local_list.last_status = status
            local_list.last_synced_at = utc_now()
            owed = await self._still_owed(session, local_list, version)
            local_list.pending = owed and status != NOT_SUPPORTED
            local_list.retry_at = (
                utc_now() + timedelta(seconds=self._settings.local_list_retry_s) if retry else None
            )

    async def _still_owed(
        self, session: AsyncSession, local_list: LocalList, version: OcppVersion | None
    ) -> bool:
        if local_list.needs_full or version is None:
            return True
        unsynced = [e for e in await entries_of(session, local_list.station_id) if not e.synced]
        return bool(select_sendable(unsynced, version))

    async def run(self, bus: Bus, *, stopping: asyncio.Event) -> None:
        """Sync pending lists until ``stopping``; react to stations connecting and booting
        (on the batched consumer: a reconnect storm's thousands of events cost a
        statement per batch, not a transaction each)."""
        consumer = BatchedConsumer(
            bus,
            f"{self._settings.consumer_group}-local-lists",
            _StationsBack(self),
            self._factory,
            BatchLimits(lanes=1),
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                consumer.run((STATION_STATUS,), stopping=stopping),
                name="local lists: station events",
            )
            tasks.create_task(self.run_pending(stopping), name="local lists: pending")

    async def run_pending(self, stopping: asyncio.Event) -> None:
        """Send pending lists until ``stopping``: every ``local_list_sync_interval_s``, and
        at once after ``wake``. ``run`` does it too; a process that serves the REST API but
        runs no consumer (``csms sessions`` in two processes) runs only this, for its wakes."""
        while not stopping.is_set():
            self._wake.clear()
            for station_id in await self._due():
                try:
                    await self.sync(station_id)
                except Exception:
                    logger.exception("local list sync of %s failed", station_id)
            await _first_of(self._wake, stopping, self._settings.local_list_sync_interval_s)

    async def _due(self) -> list[str]:
        """Stations online whose list waits to be sent and is not held or backed off."""
        now = utc_now()
        query = (
            select(LocalList.station_id)
            .join(Station, col(Station.station_id) == col(LocalList.station_id))
            .where(col(LocalList.pending), col(Station.online))
            .where(or_(col(LocalList.retry_at).is_(None), col(LocalList.retry_at) <= now))
            .where(or_(col(LocalList.lease_until).is_(None), col(LocalList.lease_until) < now))
        )
        async with self._factory() as session:
            return list((await session.exec(query)).all())


@dataclass
class _Back:
    """One transaction's stations that connected or booted (Accepted)."""

    session: AsyncSession
    station_ids: set[str] = field(default_factory=set)


@dataclass
class _StationsBack:
    """A station back online has its list's back-off cleared (one UPDATE per batch), and
    the pending lists are looked for after the commit."""

    sync: LocalListSync

    async def begin(self, session: AsyncSession, deliveries: Sequence[Delivery]) -> _Back:
        return _Back(session)

    async def apply(self, batch: _Back, delivery: Delivery) -> bool:
        if _of_no_interest(delivery):
            return False
        event = STATION_STATUS.decode(delivery)
        booted = isinstance(event, StationBooted) and event.data.boot_status == ACCEPTED
        if isinstance(event, StationConnected) or booted:
            batch.station_ids.add(event.station_id)
        return False

    async def finish(self, batch: _Back) -> None:
        if batch.station_ids:
            session = batch.session
            await session.exec(
                update(LocalList)
                .where(among(session, col(LocalList.station_id), batch.station_ids))
                .values(retry_at=None)
                .execution_options(synchronize_session=False)
            )

    async def deliver(self, batch: _Back) -> None:
        if batch.station_ids:
            self.sync.wake()


# What says a station is back; most of station.status is connector statuses (one per
# StatusNotification), read no further than their type (a fraction of a full decode).
_BACK_TYPES = frozenset({type_name(StationConnected), type_name(StationBooted)})


def _of_no_interest(delivery: Delivery) -> bool:
    """A well-formed record of another of the topic's types (anything else is decoded: a
    record that is no event is dead-lettered with the reason)."""
    try:
        event_type = orjson.loads(delivery.value).get("type")
    except (orjson.JSONDecodeError, AttributeError):
        return False
    return event_type in STATION_STATUS.models and event_type not in _BACK_TYPES


def _content(entry: LocalListEntry) -> tuple[object, ...]:
    return (entry.status, entry.expiry_date, entry.group_id, entry.evse_ids, entry.removed)


async def _first_of(wake: asyncio.Event, stopping: asyncio.Event, timeout_s: float) -> None:
    """Return when either event is set or after ``timeout_s``."""
    waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stopping.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
