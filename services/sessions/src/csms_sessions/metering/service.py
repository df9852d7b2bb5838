"""Storing samples (once, however often a station re-sends them) and reading them back."""

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import Counter
from sqlalchemy import insert, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_sessions.metering.energy import Reading, is_session_register
from csms_sessions.metering.models import MeterSample
from csms_sessions.metering.normalize import ENERGY_REGISTER, Sample, sample_key

logger = logging.getLogger(__name__)

SampleKey = tuple[object, ...]

negative_registers = Counter(
    "csms_sessions_negative_register_readings_total",
    "Energy register readings below zero: stored as sent, never counted as energy",
)
duplicate_samples = Counter(
    "csms_sessions_duplicate_meter_samples_total",
    "Sampled values a station sent again (an offline replay): not stored twice",
)


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose samples these are: a station's EVSE and, within a transaction, its session."""

    station_id: str
    evse_id: int | None
    session_id: str | None = None
    transaction_id: str | None = None


async def store(
    session: AsyncSession, owner: Owner, samples: Sequence[Sample], *, late: bool = False
) -> list[Sample]:
    """Insert the samples not stored yet, in one batch; the new ones (``late``: sent once
    their session had ended, so kept but never counted)."""
    seen = await _stored_keys(session, owner, {sample.timestamp for sample in samples})
    new = not_seen(seen, owner, samples)
    if new:
        rows = [row_of(owner, sample) | {"late": late} for sample in new]
        await session.exec(insert(MeterSample), params=rows)
    return new


def not_seen(seen: set[SampleKey], owner: Owner, samples: Sequence[Sample]) -> list[Sample]:
    """The samples whose keys are not in ``seen`` (once each; ``seen`` gets them)."""
    new: list[Sample] = []
    for sample in samples:
        if sample.key in seen:
            duplicate_samples.inc()
            continue
        seen.add(sample.key)
        new.append(sample)
        if is_session_register(sample) and sample.value is not None and sample.value < 0:
            negative_registers.inc()
            logger.warning("negative register reading %s Wh from %s", sample.value, owner)
    return new


async def _stored_keys(
    session: AsyncSession, owner: Owner, timestamps: set[datetime]
) -> set[SampleKey]:
    if not timestamps:
        return set()
    query = select(MeterSample).where(
        col(MeterSample.station_id) == owner.station_id,
        col(MeterSample.timestamp).in_(timestamps),
    )
    rows = (await session.exec(query)).all()
    return {
        stored_key(row)
        for row in rows
        if row.evse_id == owner.evse_id
        or (owner.session_id is not None and row.session_id == owner.session_id)
    }


def stored_key(row: MeterSample) -> SampleKey:
    """The key of a stored sample (as ``Sample.key`` of the one it was stored from)."""
    return sample_key(
        row.timestamp,
        row.measurand,
        row.phase,
        row.location,
        row.context,
        row.value,
        row.unit,
        row.raw_value,
        row.signed,
    )


def row_of(owner: Owner, sample: Sample) -> dict[str, object]:
    return {
        "station_id": owner.station_id,
        "evse_id": owner.evse_id,
        "session_id": owner.session_id,
        "transaction_id": owner.transaction_id,
        "timestamp": sample.timestamp,
        "measurand": sample.measurand,
        "phase": sample.phase,
        "location": sample.location,
        "context": sample.context,
        "value": sample.value,
        "unit": sample.unit,
        "signed": sample.signed,
        "raw_value": sample.raw_value,
    }


async def register_readings(session: AsyncSession, session_id: str) -> list[Reading]:
    """The session's outlet import-register readings in Wh (negative ones included; late
    ones, sent once the session had ended, not)."""
    query = select(MeterSample.timestamp, MeterSample.value).where(
        col(MeterSample.session_id) == session_id,
        col(MeterSample.late).is_(False),
        col(MeterSample.measurand) == ENERGY_REGISTER,
        col(MeterSample.phase).is_(None),
        or_(col(MeterSample.location).is_(None), col(MeterSample.location) == "Outlet"),
        col(MeterSample.unit) == "Wh",
        col(MeterSample.value).is_not(None),
    )
    rows = (await session.exec(query)).all()
    return [Reading(timestamp, value) for timestamp, value in rows if value is not None]


async def time_series(
    session: AsyncSession,
    session_id: str,
    *,
    measurand: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> Sequence[MeterSample]:
    """A session's samples in time order, optionally of one measurand and within [since, until)."""
    query = select(MeterSample).where(col(MeterSample.session_id) == session_id)
    if measurand is not None:
        query = query.where(col(MeterSample.measurand) == measurand)
    if since is not None:
        query = query.where(col(MeterSample.timestamp) >= since)
    if until is not None:
        query = query.where(col(MeterSample.timestamp) < until)
    order = (col(MeterSample.timestamp), col(MeterSample.id))
    return (await session.exec(query.order_by(*order).limit(limit))).all()


@dataclass(frozen=True, slots=True)
class Gauges:
    """The newest instantaneous readings among some samples (None: not among them)."""

    measured_at: datetime | None = None
    power_w: float | None = None
    current_a: float | None = None
    soc_percent: float | None = None


def gauges(samples: Iterable[Sample]) -> Gauges:
    """Power (phases summed), current (the highest phase) and SoC at their newest timestamp."""
    samples = [s for s in samples if s.value is not None and s.location in (None, "Outlet", "EV")]
    power = _newest(samples, "Power.Active.Import", "W", sum)
    current = _newest(samples, "Current.Import", "A", max)
    soc = _newest(samples, "SoC", "Percent", max)
    times = [reading[0] for reading in (power, current, soc) if reading is not None]
    return Gauges(
        measured_at=max(times) if times else None,
        power_w=power[1] if power else None,
        current_a=current[1] if current else None,
        soc_percent=soc[1] if soc else None,
    )


_PHASE_SETS = (("L1", "L2", "L3"), ("L1-N", "L2-N", "L3-N"))


def _newest(
    samples: list[Sample], measurand: str, unit: str, combine: Callable[[list[float]], float]
) -> tuple[datetime, float] | None:
    candidates = [s for s in samples if s.measurand == measurand and s.unit == unit]
    if not candidates:
        return None
    at = max(s.timestamp for s in candidates)
    by_phase = {s.phase: s.value for s in candidates if s.timestamp == at and s.value is not None}
    if None in by_phase:
        return at, by_phase[None]
    for phases in _PHASE_SETS:
        values = [by_phase[phase] for phase in phases if phase in by_phase]
        if values:
            return at, combine(values)
    return None
