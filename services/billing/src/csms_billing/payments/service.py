"""Payments: web / QR payments that start charging, prepaid balances, settlements.

- **Web payment** (OCPP 2.1 C-block, QR code payment): the station shows a QR code
  that leads the driver to the payment provider's page for one EVSE. When the driver
  starts paying there, the provider's signed webhook says so (``started``): the CSMS
  tells the station (NotifyWebPaymentStarted, CSMS to station, with the time the driver
  has), so it can show that a payment is under way. When the provider says the payment
  went through (``authorized``), the CSMS starts the transaction (RequestStartTransaction,
  the payment reference as a ``NoAuthorization`` token: the payment is the
  authorization). A provider that announces no start may send ``authorized`` alone. A
  payment that was made but cannot start charging (its time ran out before it was paid,
  the station is offline or refuses) is kept as ``unmatched``, for the operator to
  refund.
- **Prepaid tokens**: a balance per token, as entries (top-ups; every CDR of a
  session with that token debits its cost, a credit CDR credits it back).
- **Settlements** (OCPP 2.1 NotifySettlement): what an ad-hoc payment terminal
  settled, kept against the session and its CDR, with a receipt.
"""

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.cdrs.models import CdrRecord
from csms_billing.money import MINOR_UNITS
from csms_billing.payments.models import (
    EntryKind,
    PaymentEvent,
    PrepaidAccount,
    PrepaidEntry,
    WebPayment,
    WebPaymentStatus,
)
from csms_billing.payments.provider import PaymentState, WebhookEvent
from csms_core.db import utc_now

# RequestStartTransaction.remoteStartId is an integer; ours are drawn at random so that
# replicas never hand out the same one (31 bits: any station's integer fits it).
_REMOTE_START_BITS = 31


def minor(amount: Decimal, currency: str) -> int:
    """``amount`` in the currency's minor unit (rounded half even at the last digit)."""
    return int((amount * 10 ** MINOR_UNITS.get(currency, 2)).to_integral_value())


def major(amount_minor: int, currency: str) -> Decimal:
    return Decimal(amount_minor).scaleb(-MINOR_UNITS.get(currency, 2))


async def apply_webhook(
    session: AsyncSession, event: WebhookEvent, now: datetime, timeout_s: int
) -> WebPayment | None:
    """The payment the provider's event concerns, updated; None if the event was applied
    already (providers retry). ``timeout_s``: the driver's time to pay, unless the event
    names one."""
    if await session.get(PaymentEvent, event.event_id) is not None:
        return None
    session.add(PaymentEvent(event_id=event.event_id))
    payment = (
        await session.exec(select(WebPayment).where(col(WebPayment.payment_id) == event.payment_id))
    ).first()
    if payment is None:
        payment = WebPayment(
            station_id=event.station_id,
            evse_id=event.evse_id,
            status=WebPaymentStatus.PENDING,
            payment_id=event.payment_id,
            expires_at=now + timedelta(seconds=event.timeout_s or timeout_s),
        )
    _advance(payment, event, now)
    payment.amount_minor, payment.currency = minor(event.amount, event.currency), event.currency
    payment.updated_at = now
    session.add(payment)
    await session.flush()
    return payment


def _advance(payment: WebPayment, event: WebhookEvent, now: datetime) -> None:
    """The payment's next status after the provider's event (a final one stays)."""
    if payment.status != WebPaymentStatus.PENDING:
        return  # started, failed, unmatched: the provider says nothing new
    if event.state is PaymentState.AUTHORIZED and payment.expires_at <= now:
        payment.status = WebPaymentStatus.UNMATCHED
        payment.detail = "paid after the driver's time ran out: the station no longer waits"
    elif event.state is PaymentState.AUTHORIZED:
        payment.status = WebPaymentStatus.AUTHORIZED
        payment.remote_start_id = secrets.randbits(_REMOTE_START_BITS)
    elif event.state is not PaymentState.STARTED:
        payment.status = WebPaymentStatus.FAILED
        payment.detail = f"the provider says {event.state.value}"


def status_now(payment: WebPayment, now: datetime) -> WebPaymentStatus:
    """The payment's status as of ``now``: a pending one whose driver's time ran out is
    ``expired`` (nothing was paid; a payment that comes later is ``unmatched``)."""
    status = WebPaymentStatus(payment.status)
    if status is WebPaymentStatus.PENDING and payment.expires_at <= now:
        return WebPaymentStatus.EXPIRED
    return status


def having_status(status: WebPaymentStatus, now: datetime) -> ColumnElement[bool]:
    """The condition of payments whose ``status_now`` is ``status``."""
    pending = col(WebPayment.status) == WebPaymentStatus.PENDING
    if status is WebPaymentStatus.PENDING:
        return pending & (col(WebPayment.expires_at) > now)
    if status is WebPaymentStatus.EXPIRED:
        return pending & (col(WebPayment.expires_at) <= now)
    return col(WebPayment.status) == status


def started_notice(payment: WebPayment, now: datetime) -> dict[str, object]:
    """The 2.1 NotifyWebPaymentStarted for ``payment``: its EVSE, the seconds left to pay."""
    left = max(0, int((payment.expires_at - now).total_seconds()))
    return {"evseId": payment.evse_id, "timeout": left}


def start_request(payment: WebPayment) -> dict[str, object]:
    """The 2.1 RequestStartTransaction that charges what ``payment`` paid for."""
    assert payment.payment_id is not None and payment.remote_start_id is not None  # noqa: S101
    return {
        "evseId": payment.evse_id,
        "remoteStartId": payment.remote_start_id,
        "idToken": {"idToken": payment.payment_id[:255], "type": "NoAuthorization"},
    }


# --- prepaid --------------------------------------------------------------------------


async def balance(session: AsyncSession, id_token: str) -> int:
    """The account's balance in minor units (0 without entries)."""
    query = select(func.coalesce(func.sum(PrepaidEntry.amount_minor), 0)).where(
        col(PrepaidEntry.id_token) == id_token
    )
    return int((await session.exec(query)).one())


async def top_up(
    session: AsyncSession, account: PrepaidAccount, amount: Decimal, now: datetime
) -> PrepaidEntry:
    entry = PrepaidEntry(
        id_token=account.id_token,
        kind=EntryKind.TOP_UP,
        amount_minor=minor(amount, account.currency),
        at=now,
    )
    session.add(entry)
    return entry


async def charge_cdrs(session: AsyncSession, records: Sequence[CdrRecord]) -> None:
    """Debit (credit, for a credit CDR) each CDR's cost, incl. taxes, from its token's prepaid
    account, once per CDR; a token without an account pays otherwise."""
    for record in records:
        if record.id_token is None:
            continue
        account = await session.get(PrepaidAccount, record.id_token)
        if account is None or record.body.get("currency") != account.currency:
            continue
        total = record.body["total_cost"]
        amount = Decimal(str(total.get("incl_vat", total["excl_vat"])))
        session.add(
            PrepaidEntry(
                id_token=record.id_token,
                kind=EntryKind.SESSION,
                amount_minor=-minor(amount, account.currency),
                cdr_id=record.cdr_id,
                at=record.last_updated or utc_now(),
            )
        )
