"""Billing's part of a 2.1 station's TransactionEventResponse while the session runs.

OCPP 2.1 lets the CSMS answer a TransactionEvent ``Updated`` with the running cost
(``totalCost``: "when eventType is Updated, the running cost") and any 2.x-2.1 event of a
transaction with a limit the station enforces itself (``transactionLimit.maxCost``, E16:
it then ends the transaction with triggerReason ``CostLimitReached``). 2.0.1 has neither:
its running cost goes in CostUpdated (``costs.updates``), its final cost on ``Ended``
only (``costs.final``).

- The running cost is priced as ``GET /costs/{session_id}`` prices it, by the one engine
  with the tariff version pinned at the start, until the event's timestamp and with the
  event's own register readings (the sessions service's ``csms.meter-values`` for them come
  after the CALL). Absent when billing does not know the session yet or no tariff prices it.
- ``maxCost`` is what the driver's prepaid account has left for this session
  (``payments.limits``): sent on ``Started`` (the token is the event's ``idToken``: billing
  hears of the session only after it) and whenever the limit the station reports
  (``transactionInfo.transactionLimit.maxCost``) is not ours. A station that took the limit
  reports it (triggerReason ``LimitSet``), so the limit is not sent again and again.

The gateway waits for these parts at most ``RUNNING_WAIT_S`` (docs/billing.md "Cost on
the wire"): a lagging billing delays a running answer by that much at most, and the
answer goes without the figures, which the next event's answer and CostUpdated carry.
"""

from decimal import ROUND_HALF_UP, Decimal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.costs.final import register_readings
from csms_billing.payments import limits
from csms_billing.sessions import service as sessions
from csms_billing.sessions.models import BilledSession
from csms_billing.settings import BillingSettings
from csms_core.db import parse_ocpp_time
from csms_ocpp.messages import JsonObject, TransactionEventRequest, TransactionEventResponse

RUNNING_WAIT_S = 2.0  # how long a 2.1 Started/Updated answer waits for billing's part


async def running_part(
    session: AsyncSession,
    settings: BillingSettings,
    station_id: str,
    request: TransactionEventRequest,
) -> TransactionEventResponse:
    """``totalCost`` (Updated) and ``transactionLimit`` (a prepaid token's) of a 2.1 event."""
    billed = await _billed(session, station_id, request)
    part: TransactionEventResponse = {}
    if request["eventType"] == "Updated" and billed is not None:
        running = await running_cost(session, settings, billed, request)
        if running is not None:
            part["totalCost"] = float(running)
    limit = await _limit_owed(session, billed, request)
    if limit is not None:
        part["transactionLimit"] = {"maxCost": float(limit)}
    return part


async def running_cost(
    session: AsyncSession,
    settings: BillingSettings,
    billed: BilledSession,
    request: TransactionEventRequest,
) -> Decimal | None:
    """The session's cost incl. taxes until the event; None when no tariff prices it."""
    if billed.tariff_id is None:
        return None
    readings = register_readings(billed.session_id, request.get("meterValue", []))
    at = parse_ocpp_time(request["timestamp"])
    priced = await sessions.priced(session, billed, settings.currency, until=at, extra=readings)
    return None if priced.record is None else priced.cost.wire_total


async def _limit_owed(
    session: AsyncSession, billed: BilledSession | None, request: TransactionEventRequest
) -> Decimal | None:
    """The session's ``maxCost`` if the station does not hold it yet; None when the token is
    not prepaid or the station reports this very limit."""
    at = parse_ocpp_time(request["timestamp"])
    if billed is not None and billed.id_token is not None:
        left = await limits.max_cost(session, billed, at)
    else:  # billing has not heard of the session yet, or it started before its token
        token = (request.get("idToken") or {}).get("idToken")
        besides = None if billed is None else billed.session_id
        left = (
            None
            if not isinstance(token, str)
            else await limits.token_limit(session, token, at, besides=besides)
        )
    if left is None:
        return None
    held = _held_limit(request["transactionInfo"])
    if held is None and request["triggerReason"] == "LimitSet":
        return None  # it just set a limit without saying which: sent again, it would loop
    return None if held is not None and _same_amount(held, left) else left


def _same_amount(held: Decimal, ours: Decimal) -> bool:
    """``held`` (a JSON number) is ``ours`` to ``ours``' minor unit."""
    return held.quantize(ours, rounding=ROUND_HALF_UP) == ours


def _held_limit(transaction_info: JsonObject) -> Decimal | None:
    """The ``maxCost`` the station says it enforces (2.1 ``TransactionType.transactionLimit``)."""
    limit = transaction_info.get("transactionLimit")
    held = limit.get("maxCost") if isinstance(limit, dict) else None
    return None if not isinstance(held, int | float) else Decimal(str(held))


async def _billed(
    session: AsyncSession, station_id: str, request: TransactionEventRequest
) -> BilledSession | None:
    query = select(BilledSession).where(
        col(BilledSession.station_id) == station_id,
        col(BilledSession.transaction_id) == request["transactionInfo"]["transactionId"],
    )
    return (await session.exec(query)).first()
