"""A running session's tariff changed (OCPP 2.1 I11 ChangeTransactionTariff).

The operator gives a live session another tariff: from now on, that tariff's
version in force prices it (``engine.price_parts``: the usage until now stays
priced as it was). A 2.1 station is sent the tariff (translated into the 2.1
``TariffType``) for its local cost calculator first, and the change is only
recorded once it accepts: the station and the CSMS keep pricing alike. A 2.1
station that answers the message NotImplemented / NotSupported has no local
cost calculator: the CSMS prices centrally and records the change. 1.6 and
2.0.1 stations have no such message: the change is recorded, the cost is the
CSMS's (CostUpdated, the final cost, the CDR).

A session no tariff priced so far gets the tariff for all of it (there was no
price to keep). The currency never changes (2.1's ``NoCurrencyChange``). No
database transaction stays open while the station is asked.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.problems import Problem
from csms_billing.service import BillingService
from csms_billing.sessions import service as sessions
from csms_billing.sessions.models import BilledSession, SessionState, TariffChange
from csms_billing.tariffs import service as tariffs
from csms_billing.tariffs.models import TariffRecord, TariffVersion
from csms_billing.tariffs.ocpp21 import Untranslatable, to_ocpp21, wire_tariff_id
from csms_billing.tariffs.stations_api import COMMAND_TIMEOUT_S
from csms_core.router import CommandOutcome, StationOffline, planned
from csms_ocpp import OcppVersion, schemas

ACTION = "ChangeTransactionTariff"
# A CALLERROR that says the station has no such message: no local cost calculator.
_NOT_IMPLEMENTED = frozenset({"NotImplemented", "NotSupported"})


@dataclass(frozen=True)
class Changed:
    """A recorded change: from ``at`` on, ``tariff_id`` version ``tariff_version`` prices
    the session; ``station_status`` is what a 2.1 station answered (None: not asked)."""

    session_id: str
    at: datetime
    tariff_id: str
    tariff_version: int
    station_status: str | None


async def change_tariff(
    billing: BillingService,
    session: AsyncSession,
    billed: BilledSession,
    tariff_id: str,
    now: datetime,
) -> Changed:
    """Price ``billed`` with ``tariff_id`` from ``now`` on (Problem: why not)."""
    _require_live(billed)
    stored = await tariffs.get_tariff(session, tariff_id)
    if stored is None or stored.record.deleted_at is not None:
        raise Problem(404, f"no tariff {tariff_id}", kind="unknown-tariff")
    version = stored.current(now)
    current = await sessions.priced(session, billed, billing.settings.currency, until=now)
    currency = tariffs.ocpi_tariff(version).currency
    if current.tariff is not None and current.tariff.currency != currency:
        raise Problem(
            422,
            f"the session is priced in {current.tariff.currency}, {tariff_id} in {currency}: "
            "a session's currency does not change",
            kind="currency-change",
        )
    await session.commit()  # nothing written: ends the read before the station is asked
    status = await _ask_station(billing, billed, stored.record, version)
    await session.refresh(billed)  # the session may have ended meanwhile
    _require_live(billed)
    if billed.tariff_id is None:
        billed.tariff_id, billed.tariff_version = tariff_id, version.version
        session.add(billed)
    else:
        change = TariffChange(
            session_id=billed.session_id,
            at=now,
            tariff_id=tariff_id,
            tariff_version=version.version,
            station_status=status,
        )
        session.add(change)
    await session.commit()
    return Changed(billed.session_id, now, tariff_id, version.version, status)


def _require_live(billed: BilledSession) -> None:
    if billed.state == SessionState.ENDED:
        raise Problem(
            409, f"session {billed.session_id} has ended: its CDR stands", kind="session-ended"
        )


async def _ask_station(
    billing: BillingService,
    billed: BilledSession,
    record: TariffRecord,
    version: TariffVersion,
) -> str | None:
    """What the 2.1 station answered (None: not a 2.1 station, nobody asked; "NotSupported":
    it has no local cost calculator). A refusal is the caller's 409, nothing changed."""
    if billed.ocpp_version is None or (
        OcppVersion.from_number(billed.ocpp_version) is not OcppVersion.V21
    ):
        return None
    try:
        wire = to_ocpp21(
            tariffs.ocpi_tariff(version),
            wire_tariff_id(version.tariff_id, version.version),
            tariffs.taxes_of(record),
        )
    except Untranslatable as exc:
        raise Problem(422, str(exc), kind="untranslatable-tariff") from None
    payload = {"transactionId": billed.transaction_id, "tariff": wire.wire()}
    violation = schemas.validate(OcppVersion.V21, ACTION, payload)
    if violation is not None:  # our bug, not the caller's
        raise Problem(500, f"{ACTION} would break its schema: {violation.description}")
    station = billed.station_id
    try:
        build = planned(OcppVersion.V21, ACTION, payload)  # Reconnected: another version now
        result = await billing.commands.call(station, build, COMMAND_TIMEOUT_S)
    except StationOffline:
        raise _offline(station) from None
    if result.outcome is CommandOutcome.RESULT:
        status = str((result.payload or {}).get("status"))
        if status != "Accepted":
            raise Problem(409, f"{station} answered {ACTION} {status}", kind="station-refused")
        return status
    if result.outcome is CommandOutcome.ERROR and result.error_code in _NOT_IMPLEMENTED:
        return "NotSupported"
    if result.outcome is CommandOutcome.OFFLINE:
        raise _offline(station)
    if result.outcome is CommandOutcome.TIMEOUT:
        raise Problem(504, f"no answer from {station} in time", kind="timeout")
    reason = f"{result.error_code or ''} {result.error_description}".strip()
    raise Problem(502, f"{station} answered {result.outcome.value}: {reason}", kind="station-error")


def _offline(station_id: str) -> Problem:
    return Problem(
        409,
        f"no gateway holds a connection to {station_id}: its calculator would keep the old tariff",
        kind="station-offline",
    )
