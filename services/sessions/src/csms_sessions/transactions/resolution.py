"""No phantom sessions: sessions a station can no longer have are resolved, not kept forever.

When a station reports an EVSE Available (1.6 StatusNotification, 2.x connector
status) while a session on it is active, the session is marked idle
(``note_connector_status``); any later message of the session clears the mark.
Once the mark is older than ``session_idle_grace_s``, ``SessionResolution``:

- 2.x: asks the station first (GetTransactionStatus, OCPP 2.0.1 E14): ongoing
  keeps the session (mark cleared); messages still queued waits for them (they
  have their say under the rule of ``transactions.lifecycle``); not ongoing with
  nothing queued ends it (``not_ongoing``, flagged ``resolved_not_ongoing``).
  No answer (offline, timeout, error) decides nothing: it asks again later.
- 1.6 has no such question: the session is ended (``evse_idle``, flagged
  ``resolved_idle``) at the time the station reported the EVSE Available.

Its effects and events are stored like a consumed event's (``ProcessedEvent``
with an outbox, id ``resolve-<session id>``), published after the commit, and
re-published by a later pass if a crash came in between.
"""

import asyncio
import logging
from datetime import datetime, timedelta

import orjson
from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.bus import Bus
from csms_core.db import transaction
from csms_core.envelope import Envelope
from csms_core.router import CommandClient, CommandOutcome, InvalidCommand, StationOffline, fixed
from csms_core.topics import BY_NAME
from csms_sessions.context import SOURCE, EventContext
from csms_sessions.db import ocpp_time, utc_now
from csms_sessions.inbox import ProcessedEvent
from csms_sessions.settings import SessionsSettings
from csms_sessions.stations.models import ConnectorState, Station
from csms_sessions.transactions import lifecycle
from csms_sessions.transactions.flags import FlagReason
from csms_sessions.transactions.models import ChargingSession, SessionState
from csms_sessions.transactions.reasons import StopReason

logger = logging.getLogger(__name__)

EVENT_PREFIX = "resolve-"
# An outbox of ours still not delivered after this long was cut short by a crash.
REDELIVER_AFTER = timedelta(seconds=30)


async def note_connector_status(
    ctx: EventContext, evse_id: int, connector_id: int, status: ConnectorState, at: datetime
) -> None:
    """A connector's status: Available marks the active sessions on it idle, any other
    status clears the mark (read through the ORM session: this batch's sessions count)."""
    if not ctx.may_have_active_sessions():
        return  # the query would find none
    query = select(ChargingSession).where(
        col(ChargingSession.station_id) == ctx.station_id,
        col(ChargingSession.evse_id) == evse_id,
        col(ChargingSession.state) == SessionState.ACTIVE,
        or_(
            col(ChargingSession.connector_id).is_(None),
            col(ChargingSession.connector_id) == connector_id,
        ),
    )
    for charging in (await ctx.session.exec(query)).all():
        if status is not ConnectorState.AVAILABLE:
            charging.idle_since = charging.idle_noticed_at = None
        elif charging.idle_since is None and charging.started_at <= at:
            charging.idle_since, charging.idle_noticed_at = at, ctx.received_at


def still_running(charging: ChargingSession, at: datetime) -> None:
    """A message of the session newer than the Available report: it is not idle."""
    if charging.idle_since is not None and at > charging.idle_since:
        charging.idle_since = charging.idle_noticed_at = None


class SessionResolution:
    """The background work that resolves idle sessions (one pass per interval)."""

    def __init__(
        self,
        settings: SessionsSettings,
        factory: async_sessionmaker[AsyncSession],
        commands: CommandClient,
        bus: Bus,
    ) -> None:
        self._settings = settings
        self._factory = factory
        self._commands = commands
        self._bus = bus

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await self.run_once()
            except Exception as exc:  # noqa: BLE001 - an outage: the next pass tries again
                logger.warning("idle sessions not resolved this time: %r", exc)
            try:
                await asyncio.wait_for(
                    stopping.wait(), self._settings.session_resolution_interval_s
                )
            except TimeoutError:
                continue

    async def run_once(self, now: datetime | None = None) -> list[str]:
        """One pass; the ids of the sessions it ended."""
        now = now or utc_now()
        await self._redeliver(now)
        ended = []
        for charging in await self._claim(now):
            if await self._resolve(charging):
                ended.append(charging.session_id)
        return ended

    async def _claim(self, now: datetime) -> list[ChargingSession]:
        """The idle sessions past the grace that no replica checked within the interval."""
        grace = timedelta(seconds=self._settings.session_idle_grace_s)
        recheck = now - timedelta(seconds=self._settings.session_resolution_interval_s)
        async with self._factory() as session:
            query = select(ChargingSession).where(
                col(ChargingSession.state) == SessionState.ACTIVE,
                col(ChargingSession.idle_noticed_at) <= now - grace,
            )
            candidates = (await session.exec(query.limit(500))).all()
        claimed = []
        for charging in candidates:
            async with transaction(self._factory) as session:
                result = await session.exec(
                    update(ChargingSession)
                    .where(
                        col(ChargingSession.session_id) == charging.session_id,
                        or_(
                            col(ChargingSession.resolution_checked_at).is_(None),
                            col(ChargingSession.resolution_checked_at) < recheck,
                        ),
                    )
                    .values(resolution_checked_at=now)
                )
            if result.rowcount == 1:
                claimed.append(charging)
        return claimed

    async def _resolve(self, charging: ChargingSession) -> bool:
        if not (charging.ocpp_version or "1.6").startswith("2"):
            detail = f"EVSE {charging.evse_id} reported Available since " + (
                ocpp_time(charging.idle_since) if charging.idle_since else "?"
            )
            return await self._end(charging, StopReason.EVSE_IDLE, FlagReason.RESOLVED_IDLE, detail)
        status = await self._ask(charging)
        if status is None or status.get("messagesInQueue"):
            return False  # no answer, or its queued messages will say what happened
        if status.get("ongoingIndicator"):
            await self._keep(charging)
            return False
        detail = "GetTransactionStatus: not ongoing, no messages queued"
        return await self._end(
            charging, StopReason.NOT_ONGOING, FlagReason.RESOLVED_NOT_ONGOING, detail
        )

    async def _ask(self, charging: ChargingSession) -> dict[str, object] | None:
        """The station's GetTransactionStatus answer, or None without one."""
        try:
            result = await self._commands.call(
                charging.station_id,
                fixed("GetTransactionStatus", {"transactionId": charging.transaction_id}),
                self._settings.command_timeout_s,
            )
        except (StationOffline, InvalidCommand):  # InvalidCommand: it reconnected as 1.6
            return None
        if result.outcome is not CommandOutcome.RESULT or result.payload is None:
            logger.info("GetTransactionStatus of %s: %s", charging.session_id, result.outcome)
            return None
        return result.payload

    async def _keep(self, charging: ChargingSession) -> None:
        async with transaction(self._factory) as session:
            await session.exec(
                update(ChargingSession)
                .where(col(ChargingSession.session_id) == charging.session_id)
                .values(idle_since=None, idle_noticed_at=None)
            )

    async def _end(
        self, charging: ChargingSession, reason: StopReason, flag: FlagReason, detail: str
    ) -> bool:
        """End the session unless a message changed it meanwhile; publish what that causes."""
        async with transaction(self._factory) as session:
            query = select(ChargingSession).where(
                col(ChargingSession.session_id) == charging.session_id
            )
            current = (await session.exec(query.with_for_update())).first()
            if (
                current is None
                or current.state is not SessionState.ACTIVE
                or current.idle_since is None
                or current.idle_since != charging.idle_since
            ):
                return False
            ctx = await self._context(session, current)
            await lifecycle.end_by_csms(ctx, current, current.idle_since, reason, flag, detail)
            record = ProcessedEvent(
                event_id=ctx.envelope.id,
                outbox=[
                    {"topic": t.name, "event": orjson.loads(e.to_bytes())} for t, e in ctx.events
                ],
            )
            session.add(record)
        await self._deliver(record)
        return True

    async def _context(self, session: AsyncSession, charging: ChargingSession) -> EventContext:
        station = await session.get(Station, charging.station_id) or Station(
            station_id=charging.station_id
        )
        envelope = Envelope(
            id=f"{EVENT_PREFIX}{charging.session_id}",
            type="sessions.resolution",
            source=SOURCE,
            station_id=charging.station_id,
            ocpp_version=charging.ocpp_version,
            time=utc_now(),  # what the handlers take for "received at" (no CALL here)
        )
        return EventContext(session, self._settings, envelope, station)

    async def _deliver(self, record: ProcessedEvent) -> None:
        for item in record.outbox or []:
            topic = BY_NAME[item["topic"]]
            await self._bus.publish(topic, topic.parse_object(item["event"]))
        async with transaction(self._factory) as session:
            await session.exec(
                update(ProcessedEvent)
                .where(col(ProcessedEvent.event_id) == record.event_id)
                .values(completed=True)
            )

    async def _redeliver(self, now: datetime) -> None:
        """Publish the outboxes of earlier passes that a crash cut short."""
        async with self._factory() as session:
            query = select(ProcessedEvent).where(
                col(ProcessedEvent.event_id).startswith(EVENT_PREFIX),
                col(ProcessedEvent.completed).is_(False),
                col(ProcessedEvent.processed_at) < now - REDELIVER_AFTER,
            )
            pending = (await session.exec(query)).all()
        for record in pending:
            await self._deliver(record)
