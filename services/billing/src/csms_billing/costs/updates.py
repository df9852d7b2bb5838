"""The running cost on the wire: OCPP 2.x CostUpdated while a session runs (2.0.1 I02).

Every ``cost_update_interval_s`` each live session of a 2.0.1 / 2.1 station that a
tariff prices is sent its running cost (``totalCost`` including taxes, the engine's
figure that ``GET /costs/{session_id}`` shows), when it changed since the last one
the station took. OCPP 1.6 has no cost messages: its cost is on REST and in the CDR.

Replicas share the work: a replica claims the sessions due (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL) by moving their next update forward, then sends outside
the transaction, so a slow station holds no lock. A station with the California
Pricing customization gets the prices behind the cost as well (``california``).
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.costs import california
from csms_billing.periodic import every
from csms_billing.sessions import service as sessions
from csms_billing.sessions.models import BilledSession, SessionState
from csms_billing.settings import BillingSettings
from csms_billing.tariffs import service as tariffs
from csms_core.db import session_factory, transaction, utc_now
from csms_core.router import CommandClient, CommandOutcome, InvalidCommand, StationOffline, fixed

logger = logging.getLogger(__name__)

COST_VERSIONS = ("2.0.1", "2.1")
BATCH = 50
COMMAND_TIMEOUT_S = 10.0

cost_updates = Counter(
    "csms_billing_cost_updates_total", "CostUpdated calls sent to stations", ["outcome"]
)


@dataclass(frozen=True)
class _Due:
    session_id: str
    station_id: str
    transaction_id: str
    total: Decimal
    priced: sessions.Priced
    register_wh: float | None
    at: datetime


class CostUpdates:
    def __init__(
        self, settings: BillingSettings, commands: CommandClient, engine: AsyncEngine
    ) -> None:
        self._settings = settings
        self._commands = commands
        self._factory = session_factory(engine)
        self._postgres = engine.dialect.name == "postgresql"

    async def run(self, stopping: asyncio.Event) -> None:
        tick = min(1.0, self._settings.cost_update_interval_s)
        await every(stopping, tick, self.send_due, "running costs not sent")

    async def send_due(self) -> int:
        """Send every running cost due now; how many were sent."""
        due = await self._claim()
        for found in due:
            await self._send(found)
        return len(due)

    async def _claim(self) -> list[_Due]:
        now = utc_now()
        interval = timedelta(seconds=self._settings.cost_update_interval_s)
        claimed: list[_Due] = []
        async with transaction(self._factory) as session:
            for billed in await self._candidates(session, now):
                billed.cost_due_at = now + interval
                session.add(billed)
                priced = await sessions.priced(session, billed, self._settings.currency, until=now)
                total = priced.cost.wire_total
                if billed.cost_sent is None or Decimal(repr(billed.cost_sent)) != total:
                    register = await sessions.last_register(session, billed)
                    claimed.append(
                        _Due(
                            billed.session_id,
                            billed.station_id,
                            billed.transaction_id,
                            total,
                            priced,
                            register,
                            now,
                        )
                    )
        return claimed

    async def _candidates(self, session: AsyncSession, now: object) -> list[BilledSession]:
        query = (
            select(BilledSession)
            .where(
                col(BilledSession.state) == SessionState.ACTIVE,
                col(BilledSession.ocpp_version).in_(COST_VERSIONS),
                col(BilledSession.tariff_id).is_not(None),
                col(BilledSession.cost_due_at) <= now,
            )
            .order_by(col(BilledSession.cost_due_at))
            .limit(BATCH)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        return list(await session.exec(query))

    async def _send(self, due: _Due) -> None:
        payload: dict[str, Any] = {
            "totalCost": float(due.total),
            "transactionId": due.transaction_id,
        }
        try:
            display = await california.station_display(
                self._factory,
                self._commands,
                due.station_id,
                california.configured(self._settings),
            )
            if display.currency not in (None, due.priced.cost.currency):
                logger.warning(
                    "no CostUpdated to %s: it shows costs in %s, the session is in %s",
                    due.station_id,
                    display.currency,
                    due.priced.cost.currency,
                )
                cost_updates.labels("currency").inc()
                return
            if display.california:
                payload["customData"] = self._cost_message(due, display.decimals)
            result = await self._commands.call(
                due.station_id, fixed("CostUpdated", payload), COMMAND_TIMEOUT_S
            )
        except StationOffline:
            cost_updates.labels("offline").inc()
            return
        except InvalidCommand:  # e.g. the station reconnected speaking 1.6
            logger.warning("CostUpdated to %s not sent", due.station_id, exc_info=True)
            cost_updates.labels("invalid").inc()
            return
        cost_updates.labels(result.outcome.value).inc()
        if result.outcome is not CommandOutcome.RESULT:
            logger.info("CostUpdated to %s: %s", due.station_id, result.outcome.value)
            return
        async with transaction(self._factory) as session:
            billed = await session.get(BilledSession, due.session_id)
            if billed is not None:
                billed.cost_sent = float(due.total)
                session.add(billed)

    def _cost_message(self, due: _Due, decimals: int | None) -> dict[str, Any]:
        priced = due.priced
        assert priced.tariff is not None and priced.record is not None  # noqa: S101 - priced
        return california.cost_message(
            priced.cost,
            priced.tariff,
            tariffs.zone_of(priced.record),
            tariffs.taxes_of(priced.record),
            due.register_wh,
            due.at,
            decimals,
        )
