"""Tariffs: storing versions, finding the one in force, and the tariff a session gets.

A PUT adds a version valid from the tariff's ``start_date_time`` (now when
absent) until its ``end_date_time`` (open-ended when absent). The open-ended
version before it ends where the new one starts, unless a session already
started under it after that instant: a session is priced with the version in
force at its start, and history is not rewritten. Every other overlap is
refused. The same body PUT again changes nothing (a retried request).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.pricing.taxes import TaxRate
from csms_billing.sessions.models import BilledSession, TariffChange
from csms_billing.settings import BillingSettings
from csms_billing.tariffs.models import TariffRecord, TariffTarget, TariffVersion
from csms_billing.tariffs.ocpi import Tariff, TariffType
from csms_billing.tariffs.targets import AppliesTo, TargetKind, evse_key, payment_kind
from csms_billing.tariffs.validation import Issue, tariff_issues


class TariffPut(BaseModel):
    """The body of ``PUT /tariffs/{tariff_id}``."""

    model_config = ConfigDict(extra="forbid")

    tariff: Tariff
    applies_to: AppliesTo
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        examples=["Europe/Amsterdam"],
        description="IANA zone of the tariff's times of day and dates (OCPI: the Location's "
        "time_zone); the service's CSMS_BILLING_TIME_ZONE when absent",
    )
    taxes: list[TaxRate] = Field(
        default_factory=list,
        max_length=5,
        description="taxes on top of each component's VAT, with OCPP 2.1 stack levels",
    )


class TariffRefused(Exception):
    """A tariff that cannot be stored; ``issues`` say where and why (a 422)."""

    def __init__(self, kind: str, issues: Sequence[Issue]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, i.loc))}: {i.msg}" for i in issues))
        self.kind = kind
        self.issues = list(issues)


@dataclass(frozen=True)
class StoredTariff:
    record: TariffRecord
    versions: list[TariffVersion]  # oldest first

    def current(self, now: datetime) -> TariffVersion:
        """The version in force at ``now``, else the next to come, else the last."""
        for version in self.versions:
            if version.valid_from <= now and (version.valid_to is None or now < version.valid_to):
                return version
        upcoming = [v for v in self.versions if v.valid_from > now]
        return upcoming[0] if upcoming else self.versions[-1]


def ocpi_tariff(version: TariffVersion) -> Tariff:
    return Tariff.model_validate(version.body)


def taxes_of(record: TariffRecord) -> list[TaxRate]:
    return [TaxRate.model_validate(tax) for tax in record.taxes]


def zone_of(record: TariffRecord) -> ZoneInfo:
    return ZoneInfo(record.time_zone)


async def put_tariff(
    session: AsyncSession, settings: BillingSettings, tariff_id: str, body: TariffPut, now: datetime
) -> tuple[StoredTariff, bool]:
    """Store ``body`` as the newest version of ``tariff_id``; (the tariff, whether it changed)."""
    zone_name = body.time_zone or settings.time_zone
    _check(tariff_id, body, zone_name)
    stamped = body.tariff.model_copy(
        update={
            "country_code": body.tariff.country_code or settings.country_code,
            "party_id": body.tariff.party_id or settings.party_id,
            "last_updated": now,
        }
    )
    record = await session.get(TariffRecord, tariff_id)
    stored = await get_tariff(session, tariff_id) if record is not None else None
    if stored is not None and _same(stored, stamped, body, zone_name):
        return stored, False
    record = _record(record, tariff_id, body, zone_name, now)
    session.add(record)
    await _replace_targets(session, record, body.applies_to, body.tariff.type)
    versions = stored.versions if stored is not None else []
    session.add(await _new_version(session, tariff_id, versions, stamped, now))
    await session.flush()
    refreshed = await get_tariff(session, tariff_id)
    assert refreshed is not None  # noqa: S101 - stored just now
    return refreshed, True


def _check(tariff_id: str, body: TariffPut, zone_name: str) -> None:
    if body.tariff.id != tariff_id:
        issue = Issue(("tariff", "id"), f"the body names tariff {body.tariff.id!r}", "tariff-id")
        raise TariffRefused("invalid-tariff", [issue])
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TariffRefused(
            "invalid-tariff", [Issue(("time_zone",), f"unknown time zone {zone_name!r}", "zone")]
        ) from None
    if issues := tariff_issues(body.tariff, zone, body.taxes):
        raise TariffRefused("invalid-tariff", issues)


def _comparable(tariff: Tariff) -> dict[str, Any]:
    return tariff.model_dump(mode="json", exclude={"last_updated"})


def _same(stored: StoredTariff, tariff: Tariff, body: TariffPut, zone_name: str) -> bool:
    record, newest = stored.record, stored.versions[-1]
    return (
        record.deleted_at is None
        and _comparable(ocpi_tariff(newest)) == _comparable(tariff)
        and record.applies_to == body.applies_to.model_dump(mode="json", exclude_none=True)
        and record.time_zone == zone_name
        and record.taxes == [t.model_dump(mode="json") for t in body.taxes]
    )


def _record(
    record: TariffRecord | None, tariff_id: str, body: TariffPut, zone_name: str, now: datetime
) -> TariffRecord:
    record = record or TariffRecord(tariff_id=tariff_id, applies_to={}, time_zone=zone_name)
    record.tariff_type = body.tariff.type.value if body.tariff.type else None
    record.applies_to = body.applies_to.model_dump(mode="json", exclude_none=True)
    record.time_zone = zone_name
    record.taxes = [tax.model_dump(mode="json") for tax in body.taxes]
    record.updated_at, record.deleted_at = now, None
    return record


async def _replace_targets(
    session: AsyncSession, record: TariffRecord, applies_to: AppliesTo, kind: TariffType | None
) -> None:
    await session.exec(delete(TariffTarget).where(col(TariffTarget.tariff_id) == record.tariff_id))
    payment = payment_kind(kind)
    wanted = applies_to.keys()
    taken = await session.exec(
        select(TariffTarget).where(
            col(TariffTarget.payment) == payment,
            col(TariffTarget.key).in_([key for _, key in wanted]),
        )
    )
    clashes = [t for t in taken if (TargetKind(t.kind), t.key) in wanted]
    if clashes:
        raise TariffRefused(
            "applies-to-conflict",
            [
                Issue(
                    ("applies_to",),
                    f"{clash.kind} {clash.key or '(default)'} has tariff {clash.tariff_id} "
                    f"for {payment} payments already",
                    "conflict",
                )
                for clash in clashes
            ],
        )
    for kind_, key in wanted:
        session.add(TariffTarget(kind=kind_, key=key, payment=payment, tariff_id=record.tariff_id))


async def _new_version(
    session: AsyncSession,
    tariff_id: str,
    versions: Sequence[TariffVersion],
    tariff: Tariff,
    now: datetime,
) -> TariffVersion:
    start = tariff.start_date_time or now
    end = tariff.end_date_time
    for version in versions:
        if not _overlap(version, start, end):
            continue
        open_before = version.valid_to is None and version.valid_from < start
        if open_before and not await _priced_since(session, version, start):
            version.valid_to = start  # the price changes here
            session.add(version)
            continue
        raise TariffRefused("overlapping-versions", [_overlap_issue(version, start)])
    number = max((v.version for v in versions), default=0) + 1
    return TariffVersion(
        tariff_id=tariff_id,
        version=number,
        valid_from=start,
        valid_to=end,
        body=tariff.model_dump(mode="json", exclude_none=True),
    )


def _overlap(version: TariffVersion, start: datetime, end: datetime | None) -> bool:
    starts_before_it_ends = version.valid_to is None or start < version.valid_to
    ends_after_it_starts = end is None or version.valid_from < end
    return starts_before_it_ends and ends_after_it_starts


def _overlap_issue(version: TariffVersion, start: datetime) -> Issue:
    until = version.valid_to.isoformat() if version.valid_to else "open-ended"
    return Issue(
        ("tariff", "start_date_time"),
        f"version {version.version} is valid from {version.valid_from.isoformat()} until "
        f"{until}; a version from {start.isoformat()} would overlap it",
        "overlapping-versions",
    )


async def _priced_since(session: AsyncSession, version: TariffVersion, start: datetime) -> bool:
    """A session started under ``version`` at or after ``start``, or was changed to it then:
    it cannot end there."""
    started = select(func.count()).where(
        col(BilledSession.tariff_id) == version.tariff_id,
        col(BilledSession.tariff_version) == version.version,
        col(BilledSession.started_at) >= start,
    )
    changed = select(func.count()).where(
        col(TariffChange.tariff_id) == version.tariff_id,
        col(TariffChange.tariff_version) == version.version,
        col(TariffChange.at) >= start,
    )
    return bool((await session.exec(started)).one() or (await session.exec(changed)).one())


async def get_tariff(session: AsyncSession, tariff_id: str) -> StoredTariff | None:
    record = await session.get(TariffRecord, tariff_id)
    if record is None:
        return None
    query = (
        select(TariffVersion)
        .where(col(TariffVersion.tariff_id) == tariff_id)
        .order_by(col(TariffVersion.version))
    )
    return StoredTariff(record, list(await session.exec(query)))


async def list_tariffs(
    session: AsyncSession,
    *,
    offset: int,
    limit: int,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> tuple[list[StoredTariff], int]:
    """Tariffs not deleted, by id; ``date_from``/``date_to`` bound their last update (OCPI)."""
    conditions: list[ColumnElement[bool]] = [col(TariffRecord.deleted_at).is_(None)]
    if date_from is not None:
        conditions.append(col(TariffRecord.updated_at) >= date_from)
    if date_to is not None:
        conditions.append(col(TariffRecord.updated_at) < date_to)
    total = (
        await session.exec(select(func.count()).select_from(TariffRecord).where(*conditions))
    ).one()
    page = await session.exec(
        select(TariffRecord)
        .where(*conditions)
        .order_by(col(TariffRecord.tariff_id))
        .offset(offset)
        .limit(limit)
    )
    found = [await get_tariff(session, record.tariff_id) for record in page]
    return [stored for stored in found if stored is not None], total


async def delete_tariff(session: AsyncSession, tariff_id: str, now: datetime) -> bool:
    """No new session gets the tariff; versions stay (CDRs name them). False: unknown."""
    stored = await get_tariff(session, tariff_id)
    if stored is None or stored.record.deleted_at is not None:
        return False
    stored.record.deleted_at = stored.record.updated_at = now
    await session.exec(delete(TariffTarget).where(col(TariffTarget.tariff_id) == tariff_id))
    for version in stored.versions:
        if version.valid_to is None or version.valid_to > now:
            version.valid_to = max(now, version.valid_from)
            session.add(version)
    session.add(stored.record)
    return True


@dataclass(frozen=True)
class Whereabouts:
    """What picks a session's tariff: where it charges and who charges."""

    station_id: str
    evse_id: int | None = None
    site_id: str | None = None
    group_id: str | None = None
    ad_hoc: bool = False


async def resolve(
    session: AsyncSession, where: Whereabouts, at: datetime
) -> tuple[TariffRecord, TariffVersion] | None:
    """The most specific tariff with a version in force at ``at`` (module docstring of
    ``tariffs.targets``); None when none applies."""
    payments = ["ad_hoc", "regular"] if where.ad_hoc else ["regular"]
    for kind, key in _candidates(where):
        for payment in payments:
            found = await _in_force(session, kind, key, payment, at)
            if found is not None:
                return found
    return None


def _candidates(where: Whereabouts) -> list[tuple[TargetKind, str]]:
    found: list[tuple[TargetKind, str | None]] = [
        (TargetKind.TOKEN_GROUP, where.group_id),
        (
            TargetKind.EVSE,
            None if where.evse_id is None else evse_key(where.station_id, where.evse_id),
        ),
        (TargetKind.STATION, where.station_id),
        (TargetKind.SITE, where.site_id),
        (TargetKind.DEFAULT, ""),
    ]
    return [(kind, key) for kind, key in found if key is not None]


async def _in_force(
    session: AsyncSession, kind: TargetKind, key: str, payment: str, at: datetime
) -> tuple[TariffRecord, TariffVersion] | None:
    query = (
        select(TariffRecord, TariffVersion)
        .join(TariffTarget, col(TariffTarget.tariff_id) == col(TariffRecord.tariff_id))
        .join(TariffVersion, col(TariffVersion.tariff_id) == col(TariffRecord.tariff_id))
        .where(
            col(TariffTarget.kind) == kind,
            col(TariffTarget.key) == key,
            col(TariffTarget.payment) == payment,
            col(TariffVersion.valid_from) <= at,
            (col(TariffVersion.valid_to).is_(None)) | (col(TariffVersion.valid_to) > at),
        )
    )
    row = (await session.exec(query)).first()
    return None if row is None else (row[0], row[1])
