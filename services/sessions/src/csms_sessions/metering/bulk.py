"""A batch's meter values outside any transaction (2.x MeterValues), stored in bulk.

One-by-one, each MeterValues reads the samples stored at its timestamps (to store a
re-sent one only once) and inserts its new ones: two statements a message. A batch
(``csms_sessions.batch``) reads the stored samples of all its MeterValues' stations
and timestamps in one statement, de-duplicates in memory (also against the batch's own
new samples) and writes the new ones in one statement at the end (with the batch's
other writes, ``csms_core.db.Writes``).

The samples of a transaction (TransactionEvent, 1.6 MeterValues with a transactionId)
keep the one-by-one path, which reads the table: the batch's pending samples are
written before it, and what the batch knew of that station is read again after it.
"""

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.db import Part, Writes, among, insert_part
from csms_sessions.metering.models import MeterSample
from csms_sessions.metering.normalize import Sample
from csms_sessions.metering.service import Owner, SampleKey, not_seen, row_of, stored_key

Stamp = tuple[str, datetime]  # (station, timestamp)


class PendingSamples:
    """The samples of a batch's 2.x MeterValues: keys known per (station, EVSE), new rows
    kept until ``write``."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int | None], set[SampleKey]] = defaultdict(set)
        self._read: set[Stamp] = set()  # (station, timestamp) pairs read from the table
        self._rows: list[dict[str, object]] = []

    async def read(self, session: AsyncSession, stamps: Collection[Stamp]) -> None:
        """The stored samples at these stations' timestamps, in one statement."""
        wanted = set(stamps) - self._read
        if not wanted:
            return
        stations = {station_id for station_id, _at in wanted}
        timestamps = {at for _station_id, at in wanted}
        query = select(MeterSample).where(
            among(session, col(MeterSample.station_id), stations),
            among(session, col(MeterSample.timestamp), timestamps),
        )
        for row in (await session.exec(query)).all():
            if (row.station_id, row.timestamp) in wanted:
                self._known[(row.station_id, row.evse_id)].add(stored_key(row))
        self._read |= wanted

    async def store(
        self, session: AsyncSession, owner: Owner, samples: Sequence[Sample]
    ) -> list[Sample]:
        """The samples not stored yet (nor new earlier in the batch), kept to write."""
        await self.read(session, {(owner.station_id, sample.timestamp) for sample in samples})
        new = not_seen(self._known[(owner.station_id, owner.evse_id)], owner, samples)
        self._rows.extend(row_of(owner, sample) | {"late": False} for sample in new)
        return new

    def part(self, session: AsyncSession) -> Part | None:
        """The new samples so far, to be written in one statement."""
        rows, self._rows = self._rows, []
        return insert_part(session, MeterSample, rows)

    async def write(self, session: AsyncSession) -> None:
        """The new samples so far, in one statement."""
        writes = Writes()
        writes.add(self.part(session))
        await writes.run(session)

    async def around(self, session: AsyncSession, station_id: str) -> None:
        """Before the one-by-one path stores samples of ``station_id``: the pending ones
        are written (it reads the table), and what is known of the station forgotten (it
        may store some that this batch must not store again)."""
        await self.write(session)
        for key in [key for key in self._known if key[0] == station_id]:
            del self._known[key]
        self._read = {stamp for stamp in self._read if stamp[0] != station_id}
