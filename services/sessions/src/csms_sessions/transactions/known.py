"""The sessions of a batch's transaction messages, read in one statement.

One-by-one, every TransactionEvent (and 1.6 Stop/MeterValues of a transaction) reads
its session with one query (``service.find``). A batch (``csms_sessions.batch``) reads
the sessions of all its messages' (station, transactionId) pairs at once, locked as
``find`` locks one (the resolution of idle EVSEs may be ending one meanwhile), and
keeps the sessions its events open (added to the ORM session, flushed or not). A pair
with more than one stored session is left to ``find``'s own query.
"""

from collections.abc import Collection
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.db import among
from csms_sessions.transactions.models import ChargingSession

TransactionKey = tuple[str, str]  # (station, transactionId)


class KnownSessions:
    def __init__(self, session: AsyncSession, found: dict[TransactionKey, ChargingSession | None]):
        self._found = found
        event.listen(session.sync_session, "transient_to_pending", self._added)

    @classmethod
    async def load(cls, session: AsyncSession, keys: Collection[TransactionKey]) -> "KnownSessions":
        """The sessions of these transactions (None: certainly none stored)."""
        found: dict[TransactionKey, ChargingSession | None] = {}
        if keys:
            wanted = set(keys)
            query = select(ChargingSession).where(
                among(session, col(ChargingSession.station_id), {s for s, _ in wanted}),
                among(session, col(ChargingSession.transaction_id), {t for _, t in wanted}),
            )
            rows = (await session.exec(query.with_for_update())).all()
            by_key: dict[TransactionKey, list[ChargingSession]] = {key: [] for key in wanted}
            for row in rows:
                if (key := (row.station_id, row.transaction_id)) in by_key:
                    by_key[key].append(row)
            found = {key: _only(rows) for key, rows in by_key.items() if len(rows) < 2}
        return cls(session, found)

    def knows(self, key: TransactionKey) -> bool:
        return key in self._found

    def get(self, key: TransactionKey) -> ChargingSession | None:
        return self._found[key]

    def _added(self, _session: Session, instance: Any) -> None:
        if isinstance(instance, ChargingSession) and instance.transaction_id is not None:
            key = (instance.station_id, instance.transaction_id)
            if key in self._found and self._found[key] is None:
                self._found[key] = instance
            else:
                self._found.pop(key, None)  # a second one: ``find`` queries


def _only(rows: list[ChargingSession]) -> ChargingSession | None:
    return rows[0] if rows else None
