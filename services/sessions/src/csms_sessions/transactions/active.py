"""Which stations of a batch of events may have an active session (to skip a query that
would find none).

Read once when the batch's transaction begins (the stations with an active session
stored), and kept up to date from the ORM session: a ``ChargingSession`` added to it
(a session opened by an event of the batch) counts its station in at once, flushed or
not. A session never becomes active again once ended, and only this partition's
consumer opens sessions of its stations, so a station counted out has none.
"""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_sessions.transactions.models import ChargingSession


class ActiveSessions:
    def __init__(self, session: AsyncSession, stations: Iterable[str], read: Iterable[str]) -> None:
        """``stations``: those among ``read`` with an active session stored (read in one
        statement with the batch's other reads: ``csms_sessions.batch.BatchReads``)."""
        self._stations = set(stations)
        self._read = set(read)  # the stations whose active sessions were read
        event.listen(session.sync_session, "transient_to_pending", self._added)

    def may_have(self, station_id: str) -> bool:
        """False only if the station certainly has no active session now (a station not
        read may have one)."""
        return station_id in self._stations or station_id not in self._read

    def _added(self, _session: Session, instance: Any) -> None:
        if isinstance(instance, ChargingSession):
            self._stations.add(instance.station_id)
