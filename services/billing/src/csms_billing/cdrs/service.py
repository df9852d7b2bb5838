"""Issuing CDRs, crediting and correcting them, and finding them.

A session gets its CDR once it ended with final figures, priced by the same
engine that gave its running and final cost. A CDR is never changed: when the
sessions service's final figures of the session change (``session.finalized``),
the CDR is credited and a corrected one issued if the cost it gives differs
(OCPI mod_cdrs "Credit CDRs"). Samples sent after the end never count.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import uuid4

from prometheus_client import Counter
from sqlalchemy import ColumnElement, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from csms_billing.cdrs.build import (
    CdrParty,
    SessionFacts,
    SignedReading,
    build_cdr,
    credit_of,
    energy_differs,
)
from csms_billing.cdrs.models import CdrRecord
from csms_billing.cdrs.ocpi import Cdr
from csms_billing.costs import reconcile
from csms_billing.payments import service as payments
from csms_billing.payments.settlements import link_settlements
from csms_billing.sessions import service as sessions
from csms_billing.sessions.models import BilledSession, SampleKind
from csms_billing.settings import BillingSettings

cdrs_issued = Counter("csms_billing_cdrs_total", "CDRs issued", ["kind"])
energy_mismatches = Counter(
    "csms_billing_energy_mismatches_total",
    "CDRs whose priced energy differs from the sessions service's energy of the session",
)


def party_of(settings: BillingSettings) -> CdrParty:
    return CdrParty(country_code=settings.country_code, party_id=settings.party_id)


def facts_of(billed: BilledSession) -> SessionFacts:
    assert billed.ended_at is not None  # noqa: S101 - a CDR is for an ended session
    return SessionFacts(
        session_id=billed.session_id,
        station_id=billed.station_id,
        evse_id=billed.evse_id,
        connector_id=billed.connector_id,
        site_id=billed.site_id,
        id_token=billed.id_token,
        token_type=billed.token_type,
        started_at=billed.started_at,
        ended_at=billed.ended_at,
        stop_reason=billed.stop_reason,
        station_cost_differs=billed.cost_mismatch is not None,
        recorded_energy_wh=billed.energy_wh,
    )


async def issue(
    session: AsyncSession, billed: BilledSession, settings: BillingSettings, now: datetime
) -> list[CdrRecord]:
    """The CDR of an ended session that has none yet ([] if it has one)."""
    if billed.cdr_id is not None:
        return []
    cdr = await _build(session, billed, settings, now, uuid4().hex)
    billed.cdr_id = cdr.id
    session.add(billed)
    issued = [_store(session, cdr, billed)]
    await payments.charge_cdrs(session, issued)
    await link_settlements(session, billed)
    return issued


async def correct(
    session: AsyncSession, billed: BilledSession, settings: BillingSettings, now: datetime
) -> list[CdrRecord]:
    """After new final figures: the credit CDR and the corrected one, or [] if the CDR
    stands (the samples read after it count in the correction)."""
    if billed.cdr_id is None:
        return await issue(session, billed, settings, now)
    standing = await session.get(CdrRecord, billed.cdr_id)
    assert standing is not None  # noqa: S101 - written with the session
    candidate = await _build(session, billed, settings, now, standing.cdr_id, after_cdr=True)
    if _content(candidate.model_dump(mode="json", exclude_none=True)) == _content(standing.body):
        return []
    credit = credit_of(Cdr.model_validate(standing.body), now)
    corrected = candidate.model_copy(update={"id": uuid4().hex})
    standing.credited_by = credit.id
    session.add(standing)
    billed.cdr_id = corrected.id
    session.add(billed)
    await sessions.count_after_cdr(session, billed.session_id)
    issued = [_store(session, credit, billed), _store(session, corrected, billed)]
    await payments.charge_cdrs(session, issued)
    await link_settlements(session, billed)
    return issued


def _content(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in {"id", "last_updated"}}


async def _build(
    session: AsyncSession,
    billed: BilledSession,
    settings: BillingSettings,
    now: datetime,
    cdr_id: str,
    *,
    after_cdr: bool = False,
) -> Cdr:
    priced = await sessions.priced(session, billed, settings.currency, after_cdr=after_cdr)
    if priced.tariff is not None:
        reconcile.flag(billed, priced.cost)  # a 2.1 station's own final cost, compared
    samples = await sessions.samples_of(session, billed.session_id)
    signed = [
        SignedReading(s.at, s.context, s.value, s.signed)
        for s in samples
        if s.kind == SampleKind.REGISTER
        and s.signed
        and not s.late
        and (after_cdr or not s.after_cdr)
    ]
    if energy_differs(billed.energy_wh, priced.cost.energy_wh):
        energy_mismatches.inc()
    return build_cdr(
        cdr_id, party_of(settings), facts_of(billed), priced.cost, priced.tariffs, now, signed
    )


def _store(session: AsyncSession, cdr: Cdr, billed: BilledSession) -> CdrRecord:
    record = CdrRecord(
        cdr_id=cdr.id,
        session_id=billed.session_id,
        station_id=billed.station_id,
        site_id=billed.site_id,
        id_token=billed.id_token,
        credit=bool(cdr.credit),
        credit_reference_id=cdr.credit_reference_id,
        start_date_time=cdr.start_date_time,
        end_date_time=cdr.end_date_time,
        last_updated=cdr.last_updated,
        body=cdr.model_dump(mode="json", exclude_none=True),
    )
    session.add(record)
    cdrs_issued.labels("credit" if record.credit else "cdr").inc()
    return record


def cdr_of(record: CdrRecord) -> Cdr:
    return Cdr.model_validate(record.body)


def _filters(
    *,
    station_id: str | None = None,
    id_token: str | None = None,
    site_id: str | None = None,
    session_id: str | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
    stations: SelectOfScalar[str] | None = None,
) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if stations is not None:  # a site-limited caller: its sites' stations only
        found.append(col(CdrRecord.station_id).in_(stations))
    for column, value in (
        (CdrRecord.station_id, station_id),
        (CdrRecord.id_token, id_token),
        (CdrRecord.site_id, site_id),
        (CdrRecord.session_id, session_id),
    ):
        if value is not None:
            found.append(col(column) == value)
    if date_from is not None:
        found.append(col(CdrRecord.last_updated) >= date_from)
    if date_to is not None:
        found.append(col(CdrRecord.last_updated) < date_to)
    return found


async def find_cdrs(
    session: AsyncSession, *, offset: int, limit: int, **filters: Any
) -> tuple[Sequence[CdrRecord], int]:
    """CDRs by ``last_updated`` (OCPI: the creation time) and id; the total matching."""
    conditions = _filters(**filters)
    total = (
        await session.exec(select(func.count()).select_from(CdrRecord).where(*conditions))
    ).one()
    query = (
        select(CdrRecord)
        .where(*conditions)
        .order_by(col(CdrRecord.last_updated), col(CdrRecord.cdr_id))
        .offset(offset)
        .limit(limit)
    )
    return list(await session.exec(query)), total
