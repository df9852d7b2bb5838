"""What a batch of events writes about its stations in bulk, with Core statements.

A busy network sends far more status reports and heartbeats than anything else. A
batch (``csms_sessions.batch``) reads its stations' connector statuses in one
statement, applies the reports to them in memory, in order, and writes the newest of
each connector in one INSERT ... ON CONFLICT DO UPDATE (``ConnectorStatuses``); the
last-seen times (and an OCPP version that changed) of the stations it did not load as
ORM rows go out in one UPDATE of many parameter sets (``StationTouches``). Each
statement keeps the rule of the one-by-one path: a status older than the stored one,
and a last-seen time older than the stored one, change nothing (a replay out of order).
"""

import functools
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Select, Table, Update, bindparam, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.db import Part, Writes, among, unnest_parameters, upsert_part
from csms_sessions.stations.models import ConnectorState, ConnectorStatus, Station

ConnectorKey = tuple[str, int, int]  # (station, EVSE, connector) as stored
STATUS_REPORTS = frozenset({"StatusNotification"})  # the messages that read and write them


class ReportedStatus(NamedTuple):
    """A connector's status as a StatusNotification reports it (addressed as stored)."""

    station_id: str
    evse_id: int
    connector_id: int
    status: ConnectorState
    ocpp_status: str
    updated_at: datetime
    error_code: str | None = None

    @property
    def key(self) -> ConnectorKey:
        return (self.station_id, self.evse_id, self.connector_id)


class ConnectorStatuses:
    """The connector statuses of a batch's stations: read at once, written at once."""

    def __init__(self, loaded: Collection[str]) -> None:
        self._loaded = set(loaded)  # stations whose statuses were read
        self._current: dict[ConnectorKey, ReportedStatus] = {}
        self._changed: dict[ConnectorKey, ReportedStatus] = {}

    @classmethod
    def read_as(
        cls, station_ids: Collection[str], stored: Collection[ReportedStatus]
    ) -> "ConnectorStatuses":
        """These stations' connector statuses, read as ``stored`` (the others are read
        when asked for)."""
        statuses = cls(station_ids)
        for reported in stored:
            statuses._current.setdefault(reported.key, reported)
        return statuses

    async def get(self, session: AsyncSession, key: ConnectorKey) -> ReportedStatus | None:
        """The connector's status now (as stored, or as an event of the batch changed it)."""
        if key[0] not in self._loaded:
            await self._read(session, [key[0]])
        return self._current.get(key)

    def put(self, reported: ReportedStatus) -> None:
        """The connector's new status (only the last of a batch is written)."""
        self._current[reported.key] = self._changed[reported.key] = reported

    def part(self, session: AsyncSession) -> Part | None:
        """The changed statuses' write, one statement for all (a newer stored one stays)."""
        rows = [reported._asdict() for reported in self._changed.values()]
        self._changed.clear()
        return upsert_part(session, ConnectorStatus, rows, unless_newer="updated_at")

    async def _read(self, session: AsyncSession, station_ids: Collection[str]) -> None:
        columns = [col(getattr(ConnectorStatus, name)) for name in _STATUS_FIELDS]
        query = select(*columns).where(among(session, col(ConnectorStatus.station_id), station_ids))
        for row in await session.exec(query):
            reported = ReportedStatus(*row)
            self._current.setdefault(reported.key, reported)
        self._loaded.update(station_ids)


_STATUS_FIELDS = ReportedStatus._fields


@dataclass
class StationTouches:
    """Last-seen times and OCPP versions of stations a batch did not load as ORM rows,
    coalesced per station and written in ``write``."""

    versions: dict[str, str | None]  # as stored, then as the batch's events said
    last_seen: dict[str, datetime]
    changed_versions: dict[str, str]

    def stored(self, station_id: str) -> bool:
        return station_id in self.versions

    def seen(self, station_id: str, at: datetime) -> None:
        before = self.last_seen.get(station_id)
        if before is None or before < at:
            self.last_seen[station_id] = at

    def speaks(self, station_id: str, version: str) -> None:
        """The station sent a message in ``version`` (the newest one wins)."""
        if self.versions.get(station_id) != version:
            self.versions[station_id] = self.changed_versions[station_id] = version

    def add_to(self, writes: Writes, session: AsyncSession) -> None:
        """The last-seen times' and the new OCPP versions' writes."""
        table: Table = Station.__table__  # type: ignore[attr-defined]
        if self.last_seen:
            writes.add(_touch(session, table, self.last_seen))
        if self.changed_versions:
            speaks = (
                update(table)
                .where(table.c.station_id == bindparam("touched"))
                .values(ocpp_version=bindparam("version"))
            )
            versions = [{"touched": k, "version": v} for k, v in self.changed_versions.items()]
            writes.add(Part(speaks, versions))


def _touch(session: AsyncSession, table: Table, last_seen: dict[str, datetime]) -> Part:
    """Each station's last-seen time, unless a later one is stored (a replayed message is
    older than what the station sent since): on PostgreSQL one UPDATE ... FROM unnest(...)
    for all of them, elsewhere one UPDATE per station (executemany)."""
    seen = [{"station_id": key, "last_seen_at": at} for key, at in last_seen.items()]
    touched = unnest_parameters(session, table, seen)
    if touched is not None:
        source, parameters = touched
        return Part(_touch_from(table, source), parameters)
    touch = (
        update(table)
        .where(
            table.c.station_id == bindparam("touched"),
            or_(table.c.last_seen_at.is_(None), table.c.last_seen_at < bindparam("at")),
        )
        .values(last_seen_at=bindparam("at"))
    )
    return Part(touch, [{"touched": key, "at": at} for key, at in last_seen.items()])


@functools.cache
def _touch_from(table: Table, source: Select[Any]) -> Update:
    """The UPDATE of last-seen times from ``source`` (``unnest_parameters``': the same
    object each time, so this statement is built, and its cache key made, once)."""
    new = source.subquery()
    return (
        update(table)
        .where(
            table.c.station_id == new.c.station_id,
            or_(table.c.last_seen_at.is_(None), table.c.last_seen_at < new.c.last_seen_at),
        )
        .values(last_seen_at=new.c.last_seen_at)
    )
