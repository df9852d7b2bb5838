"""Billing's session timeline: opened, fed with samples, ended; and priced from it.

The inputs are version-neutral facts (``Opened``, ``SampleIn``, ``Figures``) taken
from the sessions service's domain events; each is applied idempotently (a
replayed fact changes nothing). A session's tariff version is chosen at its
start and kept.

Billing prices from the sessions service's figures (docs/sessions.md "The rule"):
an ended session's start, end, start and stop readings are the ones its
``session.ended`` / ``session.finalized`` carry; a sample the sessions service marks
``late`` (sent after the end) is kept but never priced; and the register readings
priced are those the sessions service counts (rule 4: between the start and the
stop reading). A sample that the sessions service counted but billing reads only
after the session's CDR was issued is kept for a correction, and changes no CDR
by itself: only new final figures do (``settle``).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.pricing.cost import Cost
from csms_billing.pricing.engine import TariffPart, price, price_parts
from csms_billing.pricing.usage import ChargingState, Gauge, RegisterReading, Usage
from csms_billing.sessions.models import (
    BilledSession,
    SampleKind,
    SessionSample,
    SessionState,
    TariffChange,
)
from csms_billing.tariffs import service as tariffs
from csms_billing.tariffs.models import TariffRecord, TariffVersion
from csms_billing.tariffs.ocpi import Tariff
from csms_core.db import utc_now
from csms_core.identity import site_of

UTC_ZONE = ZoneInfo("UTC")
# Token types that stand for an ad-hoc payment (OCPP 2.1 Appendix IdTokenEnumStringType).
AD_HOC_TOKEN_TYPES = frozenset({"DirectPayment", "NoAuthorization"})


@dataclass(frozen=True)
class Opened:
    session_id: str
    station_id: str
    transaction_id: str
    started_at: datetime
    evse_id: int | None = None
    connector_id: int | None = None
    ocpp_version: str | None = None
    id_token: str | None = None
    token_type: str | None = None
    group_id: str | None = None
    site_id: str | None = None
    meter_start_wh: float | None = None
    reserved_at: datetime | None = None


@dataclass(frozen=True)
class SampleIn:
    at: datetime
    kind: SampleKind
    value: float
    phase: str = ""
    context: str | None = None
    signed: dict[str, Any] | None = None


@dataclass(frozen=True)
class Figures:
    """An ended session's figures as the sessions service gives them (``final``: its start
    is known, so they never change again)."""

    ended_at: datetime
    meter_stop_wh: float | None = None
    stop_reason: str | None = None
    started_at: datetime | None = None
    meter_start_wh: float | None = None
    energy_wh: float | None = None
    final: bool = True
    id_token: tuple[str, str] | None = None  # (id token, type)
    group_id: str | None = None  # the token's group


async def open_session(session: AsyncSession, opened: Opened) -> BilledSession:
    """The session as billing knows it; its tariff version pinned at the start."""
    billed = await session.get(BilledSession, opened.session_id)
    if billed is not None:
        return billed
    # The site from the event, else the station directory (identity.station_site, which
    # smart charging writes when it assigns a station): the site at the session's start.
    site_id = opened.site_id or await site_of(session, opened.station_id)
    billed = BilledSession(
        session_id=opened.session_id,
        station_id=opened.station_id,
        evse_id=opened.evse_id,
        connector_id=opened.connector_id,
        transaction_id=opened.transaction_id,
        ocpp_version=opened.ocpp_version,
        id_token=opened.id_token,
        token_type=opened.token_type,
        group_id=opened.group_id,
        site_id=site_id,
        started_at=opened.started_at,
        meter_start_wh=opened.meter_start_wh,
        reserved_at=opened.reserved_at,
    )
    await pin_tariff(session, billed)
    session.add(billed)
    return billed


async def pin_tariff(session: AsyncSession, billed: BilledSession) -> None:
    """The most specific tariff in force at the session's start (none: no cost known)."""
    found = await tariffs.resolve(session, _whereabouts(billed), billed.started_at)
    billed.tariff_id, billed.tariff_version = (
        (found[0].tariff_id, found[1].version) if found is not None else (None, None)
    )


async def identify(
    session: AsyncSession, billed: BilledSession, token: tuple[str, str], group_id: str | None
) -> bool:
    """A token for a session that started without one (2.x: cable plugged in first, the
    driver identified in a later Updated event; or known only at the end); whether it was
    new. The rule (docs/billing.md "Drivers' tariffs"): the session is priced as if the
    token had come with its start, so a driver's tariff of the token's group replaces
    the one the session got for all of it, the version in force at its start; unless
    the session's tariff was changed while it ran or its CDR is issued already."""
    if billed.id_token is not None:
        return False
    billed.id_token, billed.token_type = token
    billed.group_id = group_id
    if billed.cdr_id is None and not await tariff_changes(session, billed.session_id):
        await _pin_drivers_tariff(session, billed)
    session.add(billed)
    return True


async def _pin_drivers_tariff(session: AsyncSession, billed: BilledSession) -> None:
    """The token group's tariff, if one was in force at the start (it outranks every other
    target); otherwise the session keeps what it has (even if that tariff is gone now)."""
    as_driver = await tariffs.resolve(session, _whereabouts(billed), billed.started_at)
    anonymous = await tariffs.resolve(session, _whereabouts(billed, group=False), billed.started_at)
    if as_driver is not None and as_driver != anonymous:
        billed.tariff_id, billed.tariff_version = as_driver[0].tariff_id, as_driver[1].version


def _whereabouts(billed: BilledSession, *, group: bool = True) -> tariffs.Whereabouts:
    return tariffs.Whereabouts(
        station_id=billed.station_id,
        evse_id=billed.evse_id,
        site_id=billed.site_id,
        group_id=billed.group_id if group else None,
        ad_hoc=billed.token_type in AD_HOC_TOKEN_TYPES,
    )


async def record_samples(
    session: AsyncSession,
    session_id: str,
    billed: BilledSession | None,
    samples: Sequence[SampleIn],
    *,
    late: bool = False,
) -> int:
    """Store the samples not stored yet; how many were new. ``late``: the sessions service
    says they came after the session's end (never priced). Samples that arrive after the
    session's CDR are marked ``after_cdr`` (billed is None: its start is not known yet)."""
    if not samples:
        return 0
    stored = await session.exec(
        select(SessionSample).where(col(SessionSample.session_id) == session_id)
    )
    seen = {(s.at, s.kind, s.phase) for s in stored}
    after_cdr = billed is not None and billed.cdr_id is not None
    rows: list[dict[str, Any]] = []
    for sample in samples:
        key = (sample.at, sample.kind.value, sample.phase)
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            {
                "session_id": session_id,
                "at": sample.at,
                "kind": sample.kind.value,
                "phase": sample.phase,
                "value": sample.value,
                "late": late,
                "after_cdr": after_cdr and not late,
                "signed": sample.signed,
                "context": sample.context,
            }
        )
    if rows:
        await session.exec(insert(SessionSample), params=rows)
    return len(rows)


async def settle(session: AsyncSession, billed: BilledSession, figures: Figures) -> bool:
    """Take the sessions service's figures of the ended session; whether they changed the
    figures billing had (an active session ends; an ended one moves only when its start
    arrived late: ``session.finalized``)."""
    before = _figures_of(billed)
    billed.state = SessionState.ENDED
    billed.ended_at = figures.ended_at
    billed.meter_stop_wh = figures.meter_stop_wh
    billed.stop_reason = figures.stop_reason
    billed.energy_wh = figures.energy_wh
    billed.final = figures.final
    if figures.meter_start_wh is not None:
        billed.meter_start_wh = figures.meter_start_wh
    if figures.id_token is not None:
        await identify(session, billed, figures.id_token, figures.group_id)
    moved = figures.started_at is not None and figures.started_at != billed.started_at
    if moved and figures.started_at is not None:
        billed.started_at = figures.started_at
        if billed.cdr_id is None and not await tariff_changes(session, billed.session_id):
            await pin_tariff(session, billed)  # the version in force at the real start
    billed.updated_at = utc_now()
    session.add(billed)
    return _figures_of(billed) != before


def _figures_of(billed: BilledSession) -> tuple[object, ...]:
    return (
        billed.state,
        billed.started_at,
        billed.ended_at,
        billed.meter_start_wh,
        billed.meter_stop_wh,
        billed.energy_wh,
        billed.final,
    )


async def count_after_cdr(session: AsyncSession, session_id: str) -> None:
    """A correction prices the samples read after the CDR it replaces: they count now."""
    await session.exec(
        update(SessionSample)
        .where(col(SessionSample.session_id) == session_id, col(SessionSample.after_cdr))
        .values(after_cdr=False)
    )


async def samples_of(session: AsyncSession, session_id: str) -> list[SessionSample]:
    query = (
        select(SessionSample)
        .where(col(SessionSample.session_id) == session_id)
        .order_by(col(SessionSample.at))
    )
    return list(await session.exec(query))


async def last_register(session: AsyncSession, billed: BilledSession) -> float | None:
    """The newest register reading of the session, in Wh (its start reading when none)."""
    query = (
        select(SessionSample)
        .where(
            col(SessionSample.session_id) == billed.session_id,
            col(SessionSample.kind) == SampleKind.REGISTER,
            col(SessionSample.late).is_(False),
        )
        .order_by(col(SessionSample.at).desc())
        .limit(1)
    )
    newest = (await session.exec(query)).first()
    return newest.value if newest is not None else billed.meter_start_wh


def usage_of(
    billed: BilledSession,
    samples: Sequence[SessionSample],
    until: datetime,
    *,
    after_cdr: bool = False,
) -> Usage:
    """What the session used until ``until`` (its end, or now while it runs): never the
    samples sent after its end (``late``), those read after its CDR only when
    ``after_cdr`` (a correction)."""
    used = [s for s in samples if not s.late and (after_cdr or not s.after_cdr)]
    registers = sorted(
        RegisterReading(s.at, _decimal(s.value)) for s in used if s.kind == SampleKind.REGISTER
    )
    readings = _counted(billed, registers)
    if billed.meter_start_wh is not None:
        readings.append(RegisterReading(billed.started_at, _decimal(billed.meter_start_wh)))
    if billed.meter_stop_wh is not None and billed.ended_at is not None:
        readings.append(RegisterReading(billed.ended_at, _decimal(billed.meter_stop_wh)))
    states = [ChargingState(s.at, s.value > 0) for s in used if s.kind == SampleKind.CHARGING]
    return Usage(
        started_at=billed.started_at,
        ended_at=max(until, billed.started_at),
        readings=readings,
        states=states,
        gauges=_gauges(used),
        reserved_at=billed.reserved_at,
    )


def _counted(billed: BilledSession, registers: Sequence[RegisterReading]) -> list[RegisterReading]:
    """The register readings the session's energy counts (docs/sessions.md rule 4): where
    the station gave a start and a stop reading and the stop is not below the start, the
    energy is stop minus start, so a reading outside them, or below one before it, places
    nothing (the sessions service flags such a session ``meter_readings_disagree``). A stop
    below the start (a reset) keeps every reading: the segments add up."""
    start, stop = billed.meter_start_wh, billed.meter_stop_wh
    if start is None or stop is None or stop < start:
        return list(registers)
    counted: list[RegisterReading] = []
    highest = _decimal(start)
    for reading in registers:
        if highest <= reading.wh <= _decimal(stop):
            counted.append(reading)
            highest = reading.wh
    return counted


def _gauges(samples: Sequence[SessionSample]) -> list[Gauge]:
    """Power as sent; current summed over its phases per instant (a phase-less reading is
    the sum already)."""
    currents: dict[datetime, dict[str, float]] = defaultdict(dict)
    gauges = [Gauge(s.at, power_w=_decimal(s.value)) for s in samples if s.kind == SampleKind.POWER]
    for sample in samples:
        if sample.kind == SampleKind.CURRENT:
            currents[sample.at][sample.phase] = sample.value
    for at, phases in currents.items():
        total = phases[""] if "" in phases else sum(phases.values())
        gauges.append(Gauge(at, current_a=_decimal(total)))
    return gauges


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value))


@dataclass(frozen=True)
class Priced:
    """A session's cost and the tariff behind it now (None: no tariff applied); ``tariffs``
    every tariff version that priced it, in order (more than one: changed while it ran)."""

    cost: Cost
    tariff: Tariff | None
    record: TariffRecord | None
    version: TariffVersion | None
    tariffs: tuple[Tariff, ...] = ()


def _no_tariff(currency: str) -> Tariff:
    """Prices a session no tariff applies to: its periods and volumes, with no cost."""
    nothing = {"type": "FLAT", "price": 0, "step_size": 0}
    return Tariff.model_validate(
        {"id": "none", "currency": currency, "elements": [{"price_components": [nothing]}]}
    )


async def priced(
    session: AsyncSession,
    billed: BilledSession,
    currency: str,
    *,
    until: datetime | None = None,
    after_cdr: bool = False,
    extra: Sequence[SessionSample] = (),
) -> Priced:
    """The cost of ``billed`` until its end (or ``until``, or now while it runs); a session
    without a tariff is shown in ``currency``, at no known cost. ``extra``: samples not
    stored (yet) that count too (those of the station's Ended event, ``costs.final``)."""
    stored = await samples_of(session, billed.session_id)
    known = {(s.at, s.kind, s.phase) for s in stored}
    fresh = [s for s in extra if (s.at, s.kind, s.phase) not in known]
    samples = sorted([*stored, *fresh], key=lambda s: s.at) if fresh else stored
    end = billed.ended_at or until or utc_now()
    usage = usage_of(billed, samples, end, after_cdr=after_cdr)
    found = await _pinned(session, billed)
    if found is None:
        return Priced(price(_no_tariff(currency), usage, UTC_ZONE), None, None, None)
    parts = [(billed.started_at, *found)]
    for change in await tariff_changes(session, billed.session_id):
        if (
            changed := await _version(session, change.tariff_id, change.tariff_version)
        ) is not None:
            parts.append((change.at, *changed))
    priced_by = [
        TariffPart(
            since, tariffs.ocpi_tariff(version), tariffs.zone_of(record), tariffs.taxes_of(record)
        )
        for since, record, version in parts
    ]
    cost = price_parts(priced_by, usage)
    _, record, version = parts[-1]
    return Priced(cost, priced_by[-1].tariff, record, version, tuple(p.tariff for p in priced_by))


async def tariff_changes(session: AsyncSession, session_id: str) -> list[TariffChange]:
    query = select(TariffChange).where(col(TariffChange.session_id) == session_id)
    return list((await session.exec(query.order_by(col(TariffChange.at)))).all())


async def _version(
    session: AsyncSession, tariff_id: str, version: int
) -> tuple[TariffRecord, TariffVersion] | None:
    record = await session.get(TariffRecord, tariff_id)
    found = await session.get(TariffVersion, (tariff_id, version))
    return None if record is None or found is None else (record, found)


async def _pinned(
    session: AsyncSession, billed: BilledSession
) -> tuple[TariffRecord, TariffVersion] | None:
    if billed.tariff_id is None or billed.tariff_version is None:
        return None
    return await _version(session, billed.tariff_id, billed.tariff_version)
