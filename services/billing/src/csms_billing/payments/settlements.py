"""OCPP 2.1 NotifySettlement: what an ad-hoc payment terminal settled, and its receipt.

The settlement is kept against the session (by the station's transactionId) and
the CDR standing for it; the station is answered with a receipt the CSMS makes
(``receiptUrl`` it can show as a QR code) unless the terminal made its own.
A CDR is not changed by a settlement: the receipt names the CDR instead. A terminal
usually settles before billing issued the session's CDR (the CDR waits for the sessions
service's final figures): the settlement is linked to the CDR when it is issued
(``link_settlements``), and to the corrected one if late data corrects it.
"""

import secrets
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.payments.models import Settlement
from csms_billing.sessions.models import BilledSession


class NotifySettlement(BaseModel):
    """The 2.1 NotifySettlementRequest (schema-checked by the gateway already)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    transaction_id: str | None = Field(default=None, alias="transactionId", max_length=36)
    psp_ref: str = Field(alias="pspRef", max_length=255)
    status: str = Field(examples=["Settled"])
    status_info: str | None = Field(default=None, alias="statusInfo")
    settlement_amount: float = Field(alias="settlementAmount")
    settlement_time: AwareDatetime = Field(alias="settlementTime")
    receipt_id: str | None = Field(default=None, alias="receiptId", max_length=50)
    receipt_url: str | None = Field(default=None, alias="receiptUrl", max_length=2000)
    vat_company: dict[str, Any] | None = Field(default=None, alias="vatCompany")
    vat_number: str | None = Field(default=None, alias="vatNumber", max_length=20)


async def record_settlement(
    session: AsyncSession,
    station_id: str,
    request: NotifySettlement,
    receipt_base_url: str,
    now: datetime,
) -> dict[str, str]:
    """Keep the settlement; the NotifySettlementResponse payload. A settlement the station
    sends again (the same payment reference for the same transaction: it missed our answer)
    is kept once and answered with the same receipt."""
    billed = await _session_of(session, station_id, request.transaction_id)
    own_receipt = request.receipt_url is not None
    known = await _known(session, station_id, request)
    receipt_id = known.receipt_id if known else request.receipt_id or secrets.token_urlsafe(24)[:32]
    receipt_url = (
        known.receipt_url
        if known
        else request.receipt_url or f"{receipt_base_url.rstrip('/')}/receipts/{receipt_id}"
    )
    if known is None and await session.get(Settlement, receipt_id) is None:
        session.add(
            Settlement(
                receipt_id=receipt_id,
                station_id=station_id,
                transaction_id=request.transaction_id,
                session_id=billed.session_id if billed else None,
                cdr_id=billed.cdr_id if billed else None,
                psp_ref=request.psp_ref,
                status=request.status,
                amount=request.settlement_amount,
                settled_at=request.settlement_time,
                receipt_url=receipt_url,
                details=request.model_dump(
                    mode="json",
                    by_alias=True,
                    exclude_none=True,
                    include={"status_info", "vat_company", "vat_number"},
                ),
                created_at=now,
            )
        )
    if billed is not None:
        billed.settlement = {"psp_ref": request.psp_ref, "status": request.status}
        session.add(billed)
    return {} if own_receipt else {"receiptUrl": receipt_url, "receiptId": receipt_id}


async def _known(
    session: AsyncSession, station_id: str, request: NotifySettlement
) -> Settlement | None:
    query = select(Settlement).where(
        col(Settlement.station_id) == station_id,
        col(Settlement.psp_ref) == request.psp_ref,
        col(Settlement.transaction_id) == request.transaction_id,
    )
    return (await session.exec(query)).first()


async def _session_of(
    session: AsyncSession, station_id: str, transaction_id: str | None
) -> BilledSession | None:
    if transaction_id is None:  # canceled before the transaction started
        return None
    query = select(BilledSession).where(
        col(BilledSession.station_id) == station_id,
        col(BilledSession.transaction_id) == transaction_id,
    )
    return (await session.exec(query)).first()


async def link_settlements(session: AsyncSession, billed: BilledSession) -> None:
    """The settlements of ``billed``'s transaction name its session and its CDR now (one
    settled before billing knew the session, or before the CDR was issued)."""
    await session.exec(
        update(Settlement)
        .where(
            col(Settlement.station_id) == billed.station_id,
            col(Settlement.transaction_id) == billed.transaction_id,
        )
        .values(session_id=billed.session_id, cdr_id=billed.cdr_id)
    )
