"""Prepaid balances held centrally: a live session of a prepaid token is stopped once its
running cost reaches what the token has left.

OCPP 2.1 lets the CSMS hand a station the limit (TransactionEventResponse
``transactionLimit.maxCost``, ``costs.running``) so that the station ends the session
itself (triggerReason ``CostLimitReached``). OCPP 1.6 and 2.0.1 have no such limit, and a
2.1 station may not hold it (an answer that went without billing's part, a station that
ignores it), so billing watches the running cost itself on every version: every
``cost_update_interval_s`` each live session that a tariff prices and whose token has a
prepaid account is priced (the figure ``GET /costs/{session_id}`` shows, including
taxes); once it reaches the account's balance the station is asked to stop the
transaction (2.x RequestStopTransaction, 1.6 RemoteStopTransaction). A station that
accepts is not asked again (``limit_stop_at``); one that refuses or is offline is asked
at the next check. The CDR then debits the account as every prepaid session's does, so
a session overshoots the balance only by what it drew between two checks and while the
station stopped. Sessions of one token at once share its balance: each is held against
what the others have not spent yet.

Replicas share the work as ``costs.updates`` does: a replica claims the sessions due
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL) by moving ``limit_due_at`` forward, and
calls the stations outside the transaction.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.payments import service as payments
from csms_billing.payments.models import PrepaidAccount
from csms_billing.periodic import every
from csms_billing.sessions import service as sessions
from csms_billing.sessions.models import BilledSession, SessionState
from csms_billing.settings import BillingSettings
from csms_core.db import session_factory, transaction, utc_now
from csms_core.router import CommandClient, CommandOutcome, StationOffline, planned
from csms_ocpp import OcppVersion

logger = logging.getLogger(__name__)

BATCH = 50
COMMAND_TIMEOUT_S = 10.0

prepaid_stops = Counter(
    "csms_billing_prepaid_stops_total",
    "Stations asked to stop a prepaid session whose running cost reached the balance",
    ["outcome"],
)


@dataclass(frozen=True)
class OverLimit:
    """A live session whose running cost reached its token's balance."""

    session_id: str
    station_id: str
    transaction_id: str
    ocpp_version: str | None
    cost: Decimal
    balance: Decimal


def stop_request(over: OverLimit) -> tuple[str, dict[str, Any]]:
    """The station's stop call: 1.6 RemoteStopTransaction (an integer transactionId), 2.x
    RequestStopTransaction."""
    if over.ocpp_version == "1.6":
        return "RemoteStopTransaction", {"transactionId": int(over.transaction_id)}
    return "RequestStopTransaction", {"transactionId": over.transaction_id}


class PrepaidLimits:
    def __init__(
        self, settings: BillingSettings, commands: CommandClient, engine: AsyncEngine
    ) -> None:
        self._settings = settings
        self._commands = commands
        self._factory = session_factory(engine)
        self._postgres = engine.dialect.name == "postgresql"

    async def run(self, stopping: asyncio.Event) -> None:
        tick = min(1.0, self._settings.cost_update_interval_s)
        await every(stopping, tick, self.stop_due, "prepaid limits not checked")

    async def stop_due(self) -> int:
        """Check the sessions due now; how many stations were asked to stop one."""
        over = await self._claim()
        for found in over:
            await self._stop(found)
        return len(over)

    async def _claim(self) -> list[OverLimit]:
        now = utc_now()
        interval = timedelta(seconds=self._settings.cost_update_interval_s)
        over: list[OverLimit] = []
        async with transaction(self._factory) as session:
            for billed, account in await self._candidates(session, now):
                billed.limit_due_at = now + interval
                session.add(billed)
                found = await _over_limit(session, billed, account, now)
                if found is not None:
                    over.append(found)
        return over

    async def _candidates(
        self, session: AsyncSession, now: datetime
    ) -> list[tuple[BilledSession, PrepaidAccount]]:
        query = (
            select(BilledSession, PrepaidAccount)
            .join(PrepaidAccount, col(PrepaidAccount.id_token) == col(BilledSession.id_token))
            .where(
                col(BilledSession.state) == SessionState.ACTIVE,
                col(BilledSession.tariff_id).is_not(None),
                col(BilledSession.limit_stop_at).is_(None),
                or_(
                    col(BilledSession.limit_due_at).is_(None),
                    col(BilledSession.limit_due_at) <= now,
                ),
            )
            .order_by(col(BilledSession.limit_due_at).asc().nulls_first())
            .limit(BATCH)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True, of=BilledSession)
        return [(billed, account) for billed, account in await session.exec(query)]

    async def _stop(self, over: OverLimit) -> None:
        action, payload = stop_request(over)
        # Planned for the session's version: Reconnected (offline) on a connection of another.
        build = planned(OcppVersion.from_number(over.ocpp_version or "2.0.1"), action, payload)
        try:
            result = await self._commands.call(over.station_id, build, COMMAND_TIMEOUT_S)
        except StationOffline:
            prepaid_stops.labels("offline").inc()
            return
        status = (result.payload or {}).get("status")
        accepted = result.outcome is CommandOutcome.RESULT and status == "Accepted"
        prepaid_stops.labels("accepted" if accepted else "refused").inc()
        logger.info(
            "prepaid session %s at %s: cost %s reached the balance %s; %s answered %s",
            over.session_id,
            over.station_id,
            over.cost,
            over.balance,
            action,
            status or result.outcome.value,
        )
        if accepted:
            async with transaction(self._factory) as session:
                billed = await session.get(BilledSession, over.session_id)
                if billed is not None:
                    billed.limit_stop_at = utc_now()
                    session.add(billed)


async def _over_limit(
    session: AsyncSession, billed: BilledSession, account: PrepaidAccount, now: datetime
) -> OverLimit | None:
    """The session, if its running cost (incl. taxes) reached the account's balance; a
    tariff in another currency than the account's is none of the account's."""
    priced = await sessions.priced(session, billed, account.currency, until=now)
    if priced.tariff is None or priced.cost.currency != account.currency:
        return None
    balance = payments.major(await payments.balance(session, account.id_token), account.currency)
    left = balance - await _spent_elsewhere(session, billed, account, now)
    cost = priced.cost.wire_total
    if cost < left:
        return None
    return OverLimit(
        billed.session_id,
        billed.station_id,
        billed.transaction_id,
        billed.ocpp_version,
        cost,
        left,
    )


async def max_cost(session: AsyncSession, billed: BilledSession, now: datetime) -> Decimal | None:
    """What the session may cost at most (incl. taxes), for a 2.1 station's
    ``transactionLimit.maxCost`` (``costs.running``): its token's balance less what the
    token's other live sessions spent; None when the token is not prepaid."""
    if billed.id_token is None:
        return None
    return await token_limit(session, billed.id_token, now, besides=billed.session_id)


async def token_limit(
    session: AsyncSession, id_token: str, now: datetime, *, besides: str | None = None
) -> Decimal | None:
    """What a session of ``id_token`` may cost at most: the balance less what the token's
    live sessions (but ``besides``) spent; None when the token is not prepaid."""
    account = await session.get(PrepaidAccount, id_token)
    if account is None:
        return None
    balance = payments.major(await payments.balance(session, account.id_token), account.currency)
    return max(Decimal(0), balance - await _spent(session, account, now, besides))


async def _spent_elsewhere(
    session: AsyncSession, billed: BilledSession, account: PrepaidAccount, now: datetime
) -> Decimal:
    """What the token's other live sessions cost so far (one balance pays for them all)."""
    return await _spent(session, account, now, besides=billed.session_id)


async def _spent(
    session: AsyncSession, account: PrepaidAccount, now: datetime, besides: str | None
) -> Decimal:
    query = select(BilledSession).where(
        col(BilledSession.id_token) == account.id_token,
        col(BilledSession.state) == SessionState.ACTIVE,
    )
    if besides is not None:
        query = query.where(col(BilledSession.session_id) != besides)
    spent = Decimal(0)
    for other in await session.exec(query):
        priced = await sessions.priced(session, other, account.currency, until=now)
        if priced.tariff is not None and priced.cost.currency == account.currency:
            spent += priced.cost.wire_total
    return spent
