"""The final cost in a 2.x station's TransactionEventResponse (``totalCost`` on ``Ended``).

Billing adds it to the answer of the Ended event (docs/billing.md "Cost on the wire").
Billing hears the session's end from the sessions service (``session.ended``) only after
the station's Ended event, so the cost is priced as the CDR will be: the session billing
knows, ended at the event's timestamp with the event's ``Transaction.End`` register
reading as its stop reading (as the sessions service takes them), its other register
readings counted too, priced by the one cost engine (``sessions.priced``) with the tariff
version pinned at its start. Nothing is stored: the CDR is priced from the sessions
service's figures when they arrive, which are these.

A station with the OCA California Pricing customization (``california``) gets the
costmsg ``customData`` for the end with it (and ``qrCodeText``, the URL of the session's
receipt) and the itemized cost as the updated personal message; a station that shows
costs in another currency gets no cost.
"""

import logging
import secrets
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.costs import california
from csms_billing.sessions import service as sessions
from csms_billing.sessions.models import BilledSession, SampleKind, SessionSample
from csms_billing.settings import BillingSettings
from csms_billing.tariffs import service as tariffs
from csms_core.db import parse_ocpp_time
from csms_ocpp.messages import TransactionEventRequest, TransactionEventResponse

logger = logging.getLogger(__name__)

REGISTER = "Energy.Active.Import.Register"  # 2.x MeasurandEnumType's default
END = "Transaction.End"
_UNITS = {"Wh": Decimal(1), "kWh": Decimal(1000)}


async def final_part(
    session: AsyncSession,
    settings: BillingSettings,
    station_id: str,
    request: TransactionEventRequest,
) -> TransactionEventResponse:
    """Billing's part of the Ended answer: ``totalCost`` ({} when no tariff prices the
    session), with the California Pricing part for a station that takes it."""
    ended = await _ended(session, settings, station_id, request)
    if ended is None:
        return {}
    billed, priced, readings, at = ended
    display = await california.known_display(session, settings, station_id)
    if display is not None and display.currency not in (None, priced.cost.currency):
        logger.warning(
            "no totalCost to %s: it shows costs in %s, the session is in %s",
            station_id,
            display.currency,
            priced.cost.currency,
        )
        return {}
    part: dict[str, Any] = {"totalCost": float(priced.cost.wire_total)}
    if display is not None and display.california and priced.record is not None:
        assert priced.tariff is not None  # noqa: S101 - a record prices with its tariff
        stop = next((r.value for r in readings if r.context == END), None)
        data = california.cost_message(
            priced.cost,
            priced.tariff,
            tariffs.zone_of(priced.record),
            tariffs.taxes_of(priced.record),
            stop,
            at,
            display.decimals,
        )
        # The driver's receipt of the session, for the station to show as a QR code.
        data["qrCodeText"] = receipt_url(settings, session_receipt(billed))
        session.add(billed)
        part |= california.final_message(priced.cost, data)
    answer: TransactionEventResponse = part  # type: ignore[assignment]
    return answer


def session_receipt(billed: BilledSession) -> str:
    """The id of the session's receipt (``GET /receipts/{id}``), made once: unguessable,
    it is the driver's credential."""
    if billed.receipt_id is None:
        billed.receipt_id = secrets.token_urlsafe(24)[:32]
    return billed.receipt_id


def receipt_url(settings: BillingSettings, receipt_id: str) -> str:
    return f"{settings.receipt_base_url.rstrip('/')}/receipts/{receipt_id}"


async def _ended(
    session: AsyncSession,
    settings: BillingSettings,
    station_id: str,
    request: TransactionEventRequest,
) -> tuple[BilledSession, sessions.Priced, list[SessionSample], datetime] | None:
    """The Ended event's session (as stored), priced to its end (a copy ended at the
    event, never stored), the event's readings, its end."""
    query = select(BilledSession).where(
        col(BilledSession.station_id) == station_id,
        col(BilledSession.transaction_id) == request["transactionInfo"]["transactionId"],
    )
    billed = (await session.exec(query)).first()
    if billed is None or billed.tariff_id is None:
        return None
    readings = register_readings(billed.session_id, request.get("meterValue", []))
    ended = BilledSession.model_validate(billed.model_dump())  # detached: never stored
    ended.ended_at = billed.ended_at or parse_ocpp_time(request["timestamp"])
    stop = next((sample.value for sample in readings if sample.context == END), None)
    if billed.meter_stop_wh is None and stop is not None:
        ended.meter_stop_wh = stop
    priced = await sessions.priced(session, ended, settings.currency, extra=readings)
    if priced.record is None:
        return None
    assert ended.ended_at is not None  # noqa: S101 - set above
    return billed, priced, readings, ended.ended_at


def register_readings(
    session_id: str, meter_values: Sequence[dict[str, Any]]
) -> list[SessionSample]:
    """The outlet's energy register readings in 2.x ``meterValue`` (whole outlet: no phase,
    no grid side), as billing's samples and in Wh."""
    readings: list[SessionSample] = []
    for meter_value in meter_values:
        at = parse_ocpp_time(meter_value["timestamp"])
        for sampled in meter_value.get("sampledValue", []):
            unit = sampled.get("unitOfMeasure") or {}
            if (
                sampled.get("measurand", REGISTER) != REGISTER
                or "phase" in sampled
                or sampled.get("location", "Outlet") != "Outlet"
                or unit.get("unit", "Wh") not in _UNITS
            ):
                continue
            scale = _UNITS[unit.get("unit", "Wh")] * Decimal(10) ** int(unit.get("multiplier", 0))
            wh = Decimal(str(sampled["value"])) * scale
            reading = SessionSample(
                session_id=session_id,
                at=at,
                kind=SampleKind.REGISTER,
                phase="",
                value=float(wh),
                context=sampled.get("context"),
            )
            readings.append(reading)
    return readings
