"""The station CALLs billing decides, adds to or learns from (``ocpp.inbound``), by action.

- VatNumberValidation (2.1): billing decides the answer (``payments.vat``), registered
  with ``calls`` (``csms_core.calls``: the gateway routes it to billing while billing
  runs and announces it; with no billing alive it answers NotSupported).
- TransactionEvent (2.x) with ``eventType`` Ended: billing adds ``totalCost``, the
  session's final cost (``costs.final``), to the answer (sessions' ``idTokenInfo``, or the
  gateway's empty one). On 2.1 it also adds to Started and Updated answers: the running
  cost and a prepaid token's ``transactionLimit`` (``costs.running``), waited for at most
  ``RUNNING_WAIT_S``; 2.0.1's Started and Updated answers never wait for billing. A 2.1
  event's ``costDetails`` (any type) are the station's own cost, kept to be reconciled
  with the engine's (``costs.reconcile``).
- Authorize (2.1): billing adds the driver's ``tariff`` (``tariffs.offer``) to sessions'
  answer, waited for at most ``RUNNING_WAIT_S``.
- NotifySettlement (2.1): what a payment terminal settled for a transaction, kept
  against the session and its CDR; billing adds the receipt it made (``receiptUrl``,
  ``receiptId``) to the gateway's empty answer, registered with ``calls``: with no billing
  alive (or one too late) the station gets ``{}`` and the settlement is still recorded
  when billing reads it.

NotifyWebPaymentStarted is the CSMS's to send (OCPP 2.1: a driver is paying for an EVSE),
not a station's: ``payments`` sends it when the provider says a payment started.
"""

from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any, TypedDict

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.costs.final import final_part
from csms_billing.costs.running import RUNNING_WAIT_S, running_part
from csms_billing.payments.settlements import NotifySettlement, record_settlement
from csms_billing.payments.vat import HttpVatRegistry, validate_vat
from csms_billing.sessions.models import BilledSession
from csms_billing.settings import BillingSettings
from csms_billing.tariffs.offer import tariff_offered
from csms_core.bus import Unprocessable
from csms_core.calls import CallHandlers, equals
from csms_core.db import utc_now
from csms_core.envelope import Envelope
from csms_core.events import OcppCall
from csms_core.router import CallAnswer
from csms_ocpp.messages import (
    AUTHORIZE,
    NOTIFY_SETTLEMENT,
    TRANSACTION_EVENT,
    V21,
    VAT_NUMBER_VALIDATION,
    AuthorizeRequest,
    JsonObject,
    NotifySettlementRequest,
    NotifySettlementResponse,
    TransactionEventRequest,
    TransactionEventResponse,
    VatNumberValidationRequest,
    VatNumberValidationResponse,
)

CALL = "ocpp.call"
# A 2.1 TransactionEvent: the answers of its Started and Updated events carry billing's
# running part too (2.0.1's carry no cost: CostUpdated does, OCPP 2.0.1 I02).
TRANSACTION_EVENT_21 = replace(TRANSACTION_EVENT, versions=V21)
AUTHORIZE_21 = replace(AUTHORIZE, versions=V21)  # 2.1 AuthorizeResponse has ``tariff``


@dataclass(frozen=True)
class CallContext:
    """What a registered handler of a station CALL gets besides the request."""

    session: AsyncSession
    settings: BillingSettings
    call: OcppCall


calls = CallHandlers[CallContext]("billing")


class TariffPart(TypedDict, total=False):
    """Billing's part of a 2.1 AuthorizeResponse."""

    tariff: JsonObject


@calls.decides(VAT_NUMBER_VALIDATION)
async def on_vat_number_validation(
    ctx: CallContext, request: VatNumberValidationRequest
) -> VatNumberValidationResponse:
    """Whether the driver's VAT number is real, and whose it is (OCPP 2.1 VatNumberValidation):
    Rejected with the reason (its form, an unknown number, no registry or none answering)."""
    url = ctx.settings.vat_registry_url
    registry = HttpVatRegistry(url) if url else None
    answer: VatNumberValidationResponse = await validate_vat(  # type: ignore[assignment]
        registry, request["vatNumber"], request.get("evseId")
    )
    return answer


class _TransactionInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    transaction_id: str = Field(alias="transactionId")


class _CostedEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    timestamp: AwareDatetime
    transaction_info: _TransactionInfo = Field(alias="transactionInfo")
    cost_details: dict[str, Any] = Field(alias="costDetails")


@calls.contributes(TRANSACTION_EVENT, when=equals("eventType", "Ended"))
@calls.contributes(TRANSACTION_EVENT_21, when=equals("eventType", "Started"), wait_s=RUNNING_WAIT_S)
@calls.contributes(TRANSACTION_EVENT_21, when=equals("eventType", "Updated"), wait_s=RUNNING_WAIT_S)
async def on_transaction_event(
    ctx: CallContext, request: TransactionEventRequest
) -> TransactionEventResponse:
    """``totalCost`` for the Ended event of a session a tariff prices (2.0.1 I02: including
    taxes, 0.00 when free; absent when no tariff prices it); on 2.1 also the running cost of
    an Updated event and a prepaid token's ``transactionLimit`` (``costs.running``, waited
    for at most ``RUNNING_WAIT_S``); a 2.1 station's ``costDetails`` kept whatever the event."""
    if "costDetails" in request:
        try:
            await on_cost_details(ctx.session, ctx.settings, ctx.call, dict(request))
        except ValidationError as exc:
            raise Unprocessable(f"TransactionEvent: {exc.errors(include_url=False)[:3]}") from exc
    if "billing" not in ctx.call.data.contributors:
        return {}  # nobody waits for billing's part
    if request["eventType"] != "Ended":
        return await running_part(ctx.session, ctx.settings, ctx.call.station_id, request)
    return await final_part(ctx.session, ctx.settings, ctx.call.station_id, request)


@calls.contributes(AUTHORIZE_21, wait_s=RUNNING_WAIT_S)
async def on_authorize(ctx: CallContext, request: AuthorizeRequest) -> TariffPart:
    """The driver's tariff (2.1 AuthorizeResponse ``tariff``, ``tariffs.offer``), for a
    station's local cost calculator to show and price with; waited for at most
    ``RUNNING_WAIT_S`` (the station's default tariff stands in without it)."""
    if "billing" not in ctx.call.data.contributors:
        return {}
    at = ctx.call.data.received_at
    offered = await tariff_offered(ctx.session, ctx.call.station_id, request["idToken"], at)
    return {} if offered is None else {"tariff": offered}


def wanted(envelope: Envelope) -> bool:
    """Whether billing reads this ``ocpp.inbound`` event at all (most it skips unopened)."""
    if envelope.type != CALL or envelope.ocpp_version not in ("2.0.1", "2.1"):
        return False
    action = envelope.data.get("action")
    payload = envelope.data.get("payload")
    contributors = envelope.data.get("contributors") or ()
    if action == "TransactionEvent":
        if not isinstance(payload, dict):
            return False
        costed = envelope.ocpp_version == "2.1" and "costDetails" in payload
        return costed or (isinstance(contributors, list) and "billing" in contributors)
    return isinstance(action, str) and calls.handler(action, envelope.ocpp_version) is not None


async def handle(
    session: AsyncSession, settings: BillingSettings, call: OcppCall
) -> CallAnswer | None:
    """Apply a station CALL; the answer billing owes for it (its decision or its part)."""
    return await calls.run(CallContext(session, settings, call), call)


@calls.contributes(NOTIFY_SETTLEMENT)
async def on_notify_settlement(
    ctx: CallContext, request: NotifySettlementRequest
) -> NotifySettlementResponse:
    """The settlement recorded (whoever answers); the receipt billing made for it
    (OCPP 2.1 I-block NotifySettlement: ``receiptUrl`` the station may show as a QR code),
    none when the terminal made its own."""
    try:
        settled = NotifySettlement.model_validate(request)
    except ValidationError as exc:
        raise Unprocessable(f"NotifySettlement: {exc.errors(include_url=False)[:3]}") from exc
    receipt = await record_settlement(
        ctx.session, ctx.call.station_id, settled, ctx.settings.receipt_base_url, utc_now()
    )
    answer: NotifySettlementResponse = {}
    if "receiptUrl" in receipt:
        answer["receiptUrl"], answer["receiptId"] = receipt["receiptUrl"], receipt["receiptId"]
    return answer


async def on_cost_details(
    session: AsyncSession, settings: BillingSettings, envelope: OcppCall, payload: dict[str, Any]
) -> None:
    event = _CostedEvent.model_validate(payload)
    query = select(BilledSession).where(
        col(BilledSession.station_id) == envelope.station_id,
        col(BilledSession.transaction_id) == event.transaction_info.transaction_id,
    )
    billed = (await session.exec(query)).first()
    if billed is None:
        return  # the session is not known (yet): the next costDetails will be
    at = event.timestamp.astimezone(UTC).isoformat()
    latest = billed.station_cost
    if latest is None or latest.get("at", "") <= at:  # an older event replayed: kept out
        billed.station_cost = {"at": at, "details": event.cost_details}
        session.add(billed)
