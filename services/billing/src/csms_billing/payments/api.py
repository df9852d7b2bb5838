"""Payments over REST: the provider's webhook, web payments, prepaid accounts, receipts."""

import logging
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func
from sqlmodel import col, select

from csms_api.auth import (
    AdminDep,
    ViewerDep,
    require_network_wide,
    visible_stations,
    without_bearer,
)
from csms_api.problems import Problem, ProblemRoute, problem_responses
from csms_billing.api.deps import Limit, Offset, Page, ServiceDep, SessionDep
from csms_billing.cdrs.models import CdrRecord
from csms_billing.money import is_currency
from csms_billing.ocpi import DateTime, Number
from csms_billing.payments import service
from csms_billing.payments.models import (
    PrepaidAccount,
    PrepaidEntry,
    Settlement,
    WebPayment,
    WebPaymentStatus,
)
from csms_billing.payments.provider import InvalidSignature, PaymentState
from csms_billing.sessions.models import BilledSession
from csms_core.db import transaction, utc_now
from csms_core.router import Build, CommandOutcome, InvalidCommand, StationOffline, fixed

logger = logging.getLogger(__name__)

router = APIRouter(tags=["billing: payments"], route_class=ProblemRoute)
# Called by the payment provider and opened by drivers: neither has a bearer token.
public_router = without_bearer(
    APIRouter(tags=["billing: payments (provider and drivers)"], route_class=ProblemRoute),
    "the provider's webhook is authenticated by its signature over the body, a receipt by "
    "its unguessable id",
)
TokenPath = Annotated[str, Path(min_length=1, max_length=255, examples=["04A2B3C4D5E6F7"])]
START_TIMEOUT_S = 30.0
NOTICE_TIMEOUT_S = 10.0


class WebPaymentOut(BaseModel):
    web_payment_id: int
    station_id: str
    evse_id: int
    status: WebPaymentStatus
    payment_id: str | None
    amount: Number | None
    currency: str | None
    remote_start_id: int | None
    detail: str | None
    expires_at: DateTime
    updated_at: DateTime

    @classmethod
    def of(cls, payment: WebPayment) -> "WebPaymentOut":
        amount = (
            service.major(payment.amount_minor, payment.currency)
            if payment.amount_minor is not None and payment.currency
            else None
        )
        assert payment.web_payment_id is not None  # noqa: S101 - stored
        return cls(
            web_payment_id=payment.web_payment_id,
            station_id=payment.station_id,
            evse_id=payment.evse_id,
            status=service.status_now(payment, utc_now()),
            payment_id=payment.payment_id,
            amount=amount,
            currency=payment.currency,
            remote_start_id=payment.remote_start_id,
            detail=payment.detail,
            expires_at=payment.expires_at,
            updated_at=payment.updated_at,
        )


@public_router.post(
    "/payments/webhook",
    response_model=WebPaymentOut | None,
    responses=problem_responses(401, 503),
)
async def payment_webhook(request: Request, billing: ServiceDep) -> WebPaymentOut | None:
    """The payment provider says how a payment went (signed by the provider, no bearer token)."""
    provider = billing.payment_provider
    if provider is None:
        raise Problem(503, "no payment provider is configured", kind="payments-not-configured")
    body = await request.body()
    try:
        event = provider.verify(request.headers, body)
    except InvalidSignature as exc:
        logger.warning("payment webhook refused: %s", exc)
        raise Problem(401, str(exc), kind="invalid-signature") from None
    if event.state is PaymentState.AUTHORIZED and await provider.state_of(event.payment_id) not in (
        None,
        PaymentState.AUTHORIZED,
    ):
        raise Problem(401, "the provider's API does not confirm the payment", kind="unconfirmed")
    timeout_s = billing.settings.web_payment_timeout_s
    async with transaction(billing.factory) as session:
        payment = await service.apply_webhook(session, event, utc_now(), timeout_s)
    if payment is None:
        return None  # applied before: the provider retried
    if payment.status == WebPaymentStatus.PENDING and event.state is PaymentState.STARTED:
        await _tell_the_station(billing, payment)
    elif payment.status == WebPaymentStatus.AUTHORIZED:
        await _start(billing, payment)
    return WebPaymentOut.of(payment)


async def _tell_the_station(billing: ServiceDep, payment: WebPayment) -> None:
    """NotifyWebPaymentStarted (OCPP 2.1, CSMS to station): a driver is paying for the
    EVSE and has ``timeout`` seconds; a station that cannot be told is noted (its start,
    once paid, would fail the same way and the payment is then refunded)."""
    notice = fixed("NotifyWebPaymentStarted", service.started_notice(payment, utc_now()))
    detail = await _outcome(billing, payment.station_id, notice, NOTICE_TIMEOUT_S, None)
    if detail is not None:
        await _save(billing, payment, WebPaymentStatus.PENDING, f"not told: {detail}")


async def _start(billing: ServiceDep, payment: WebPayment) -> None:
    """RequestStartTransaction for what the driver paid (the payment as its token); paid
    but not started: ``unmatched``, to be refunded."""
    start = fixed("RequestStartTransaction", service.start_request(payment))
    detail = await _outcome(billing, payment.station_id, start, START_TIMEOUT_S, "Accepted")
    status = WebPaymentStatus.STARTED if detail is None else WebPaymentStatus.UNMATCHED
    await _save(billing, payment, status, detail)


async def _outcome(
    billing: ServiceDep, station_id: str, command: Build, timeout_s: float, wanted: str | None
) -> str | None:
    """Why the station did not take ``command`` (None: it did; ``wanted``: the status its
    answer must have)."""
    try:
        result = await billing.commands.call(station_id, command, timeout_s)
    except StationOffline:
        return "the station is offline"
    except InvalidCommand as exc:
        return f"not sent: {exc}"
    answer = (result.payload or {}).get("status")
    if result.outcome is not CommandOutcome.RESULT or (wanted is not None and answer != wanted):
        return f"the station answered {answer or result.outcome.value}"
    return None


async def _save(
    billing: ServiceDep, payment: WebPayment, status: WebPaymentStatus, detail: str | None
) -> None:
    payment.status, payment.detail, payment.updated_at = status, detail, utc_now()
    async with transaction(billing.factory) as session:
        await session.merge(payment)


@router.get("/payments/web", response_model=Page[WebPaymentOut])
async def list_web_payments(
    caller: ViewerDep,
    session: SessionDep,
    station_id: Annotated[str | None, Query(max_length=48)] = None,
    status_: Annotated[WebPaymentStatus | None, Query(alias="status")] = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> Page[WebPaymentOut]:
    """Web payments, newest first (``status=unmatched``: paid, to be refunded)."""
    conditions: list[ColumnElement[bool]] = []
    if (visible := visible_stations(caller)) is not None:
        conditions.append(col(WebPayment.station_id).in_(visible))
    if station_id is not None:
        conditions.append(col(WebPayment.station_id) == station_id)
    if status_ is not None:
        conditions.append(service.having_status(status_, utc_now()))
    total = (
        await session.exec(select(func.count()).select_from(WebPayment).where(*conditions))
    ).one()
    page = await session.exec(
        select(WebPayment)
        .where(*conditions)
        .order_by(col(WebPayment.created_at).desc(), col(WebPayment.web_payment_id).desc())
        .offset(offset)
        .limit(limit)
    )
    return Page(items=[WebPaymentOut.of(p) for p in page], total=total, limit=limit, offset=offset)


# --- prepaid --------------------------------------------------------------------------


class AccountIn(BaseModel):
    currency: str = Field(min_length=3, max_length=3, examples=["EUR"])


class TopUp(BaseModel):
    amount: Decimal = Field(gt=0, le=Decimal(100_000), decimal_places=4, allow_inf_nan=False)


class EntryOut(BaseModel):
    kind: str
    amount: Number
    cdr_id: str | None
    at: DateTime


class AccountOut(BaseModel):
    id_token: str
    currency: str
    balance: Number = Field(description="what the token may still spend (negative: owed)")
    entries: list[EntryOut] = Field(description="the newest 50")


async def _account_out(session: SessionDep, account: PrepaidAccount) -> AccountOut:
    entries = await session.exec(
        select(PrepaidEntry)
        .where(col(PrepaidEntry.id_token) == account.id_token)
        .order_by(col(PrepaidEntry.at).desc(), col(PrepaidEntry.entry_id).desc())
        .limit(50)
    )
    return AccountOut(
        id_token=account.id_token,
        currency=account.currency,
        balance=service.major(await service.balance(session, account.id_token), account.currency),
        entries=[
            EntryOut(
                kind=e.kind,
                amount=service.major(e.amount_minor, account.currency),
                cdr_id=e.cdr_id,
                at=e.at,
            )
            for e in entries
        ],
    )


@router.put(
    "/prepaid-accounts/{id_token}", response_model=AccountOut, responses=problem_responses(409, 422)
)
async def put_prepaid_account(
    caller: AdminDep, id_token: TokenPath, body: AccountIn, session: SessionDep
) -> AccountOut:
    """Make a token prepaid: its CDRs are paid from its balance."""
    require_network_wide(caller, "prepaid accounts")
    if not is_currency(body.currency):
        raise Problem(422, f"{body.currency!r} is no ISO 4217 currency", kind="invalid-currency")
    account = await session.get(PrepaidAccount, id_token)
    if account is not None and account.currency != body.currency:
        raise Problem(409, f"the account is in {account.currency}", kind="currency-change")
    account = account or PrepaidAccount(id_token=id_token, currency=body.currency)
    session.add(account)
    await session.commit()
    return await _account_out(session, account)


@router.post(
    "/prepaid-accounts/{id_token}/top-ups",
    response_model=AccountOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 422),
)
async def top_up(
    caller: AdminDep, id_token: TokenPath, body: TopUp, session: SessionDep
) -> AccountOut:
    """Add to a prepaid token's balance."""
    require_network_wide(caller, "prepaid accounts")
    account = await _account(session, id_token)
    await service.top_up(session, account, body.amount, utc_now())
    await session.commit()
    return await _account_out(session, account)


@router.get(
    "/prepaid-accounts/{id_token}", response_model=AccountOut, responses=problem_responses(404)
)
async def get_prepaid_account(
    caller: ViewerDep, id_token: TokenPath, session: SessionDep
) -> AccountOut:
    """A prepaid token's balance and its newest entries."""
    return await _account_out(session, await _account(session, id_token))


async def _account(session: SessionDep, id_token: str) -> PrepaidAccount:
    account = await session.get(PrepaidAccount, id_token)
    if account is None:
        raise Problem(404, f"{id_token} has no prepaid account", kind="unknown-account")
    return account


# --- receipts -------------------------------------------------------------------------


class ReceiptCharge(BaseModel):
    """What the receipt's CDR charged (OCPI 2.2.1 CDR figures)."""

    currency: str
    total_cost: dict[str, Number] = Field(examples=[{"excl_vat": 2.45, "incl_vat": 2.94}])
    total_energy: Number = Field(description="kWh")
    total_time: Number = Field(description="hours")
    start_date_time: DateTime
    end_date_time: DateTime


class Receipt(BaseModel):
    """A driver's receipt (the URL a station shows as a QR code): what a payment terminal
    settled (``settlement``), or a session's cost (``session``: California Pricing)."""

    receipt_id: str
    kind: Literal["settlement", "session"] = "settlement"
    station_id: str
    psp_ref: str | None = Field(description="the terminal's payment reference (settlements)")
    status: str = Field(examples=["Settled"], description="the settlement's; a session's: ended")
    amount: Number | None = Field(
        description="what was settled; a session's: its CDR's total (incl. VAT), once issued"
    )
    settled_at: datetime | None
    session_id: str | None
    cdr_id: str | None
    charge: ReceiptCharge | None = Field(
        default=None, description="the session's CDR, once issued (null before)"
    )


@public_router.get(
    "/receipts/{receipt_id}", response_model=Receipt, responses=problem_responses(404)
)
async def get_receipt(
    receipt_id: Annotated[str, Path(min_length=8, max_length=50)], session: SessionDep
) -> Receipt:
    """A receipt (its unguessable id is the credential: drivers have no token)."""
    settlement = await session.get(Settlement, receipt_id)
    if settlement is not None:
        return Receipt(
            receipt_id=settlement.receipt_id,
            station_id=settlement.station_id,
            psp_ref=settlement.psp_ref,
            status=settlement.status,
            amount=Decimal(repr(settlement.amount)),
            settled_at=settlement.settled_at,
            session_id=settlement.session_id,
            cdr_id=settlement.cdr_id,
            charge=await _charge(session, settlement.cdr_id),
        )
    query = select(BilledSession).where(col(BilledSession.receipt_id) == receipt_id)
    billed = (await session.exec(query)).first()
    if billed is None:
        raise Problem(404, "no such receipt", kind="unknown-receipt")
    charge = await _charge(session, billed.cdr_id)
    total = None if charge is None else charge.total_cost
    return Receipt(
        receipt_id=receipt_id,
        kind="session",
        station_id=billed.station_id,
        psp_ref=None,
        status=billed.state,
        amount=None if total is None else total.get("incl_vat", total["excl_vat"]),
        settled_at=None,
        session_id=billed.session_id,
        cdr_id=billed.cdr_id,
        charge=charge,
    )


async def _charge(session: SessionDep, cdr_id: str | None) -> ReceiptCharge | None:
    record = await session.get(CdrRecord, cdr_id) if cdr_id else None
    return ReceiptCharge.model_validate(record.body) if record is not None else None
