"""A CDR from a priced session: the same ``Cost`` the station and the REST API were shown.

Amounts are rounded half up to the currency's minor unit once, here; volumes keep
their resolution (Wh as kWh to 3 places, seconds as hours to 6). A credit CDR
repeats its original with the total negated (mod_cdrs "Credit CDRs": "Only the
values in the total_cost field SHALL contain the negative amounts").
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from csms_billing.cdrs.ocpi import (
    AuthMethod,
    Cdr,
    CdrDimension,
    CdrDimensionType,
    CdrLocation,
    CdrToken,
    ChargingPeriod,
    SignedData,
    SignedValue,
    TokenType,
)
from csms_billing.ocpi import Price
from csms_billing.pricing.cost import Amount, Cost, Period, Phase, category
from csms_billing.tariffs.ocpi import Tariff

_HOURS = Decimal("0.000001")
_WH = Decimal(1)
_KWH = Decimal("0.001")
# OCPP token types as OCPI TokenType (mod_tokens).
_TOKEN_TYPES = {
    "idTag": TokenType.RFID,
    "ISO14443": TokenType.RFID,
    "ISO15693": TokenType.RFID,
    "Central": TokenType.APP_USER,
    "DirectPayment": TokenType.AD_HOC_USER,
    "NoAuthorization": TokenType.AD_HOC_USER,
}
_NATURE = {"Transaction.Begin": "Start", "Transaction.End": "End"}


@dataclass(frozen=True)
class CdrParty:
    """Who issues the CDR (the CPO) and for which currency a tariff-less session is shown."""

    country_code: str
    party_id: str


@dataclass(frozen=True)
class SessionFacts:
    session_id: str
    station_id: str
    evse_id: int | None
    connector_id: int | None
    site_id: str | None
    id_token: str | None
    token_type: str | None
    started_at: datetime
    ended_at: datetime
    stop_reason: str | None = None
    remote_start: bool = False
    station_cost_differs: bool = False
    # The sessions service's energy of the session (Wh), compared with the energy priced.
    recorded_energy_wh: float | None = None


@dataclass(frozen=True)
class SignedReading:
    """A register reading the station signed, as it sent it."""

    at: datetime
    context: str | None
    value: float
    signed: dict[str, Any]


def build_cdr(
    cdr_id: str,
    party: CdrParty,
    facts: SessionFacts,
    cost: Cost,
    tariffs: Sequence[Tariff],
    now: datetime,
    signed: Sequence[SignedReading] = (),
) -> Cdr:
    """The CDR of a session priced by ``tariffs`` (more than one: changed while it ran;
    none: no tariff applied, no cost known)."""
    priced = bool(tariffs)
    starts = [p.start for p in cost.periods] or [facts.started_at]
    return Cdr(
        country_code=party.country_code,
        party_id=party.party_id,
        id=cdr_id,
        start_date_time=min(starts),
        end_date_time=facts.ended_at,
        session_id=facts.session_id,
        cdr_token=_token(party, facts),
        auth_method=AuthMethod.COMMAND if facts.remote_start else AuthMethod.WHITELIST,
        cdr_location=_location(facts),
        currency=cost.currency,
        tariffs=_distinct(tariffs) or None,
        charging_periods=[_period(p, priced) for p in cost.periods],
        signed_data=_signed(signed),
        total_energy=(cost.energy_wh / 1000).quantize(_KWH),
        total_time=_hours(cost.time_s),
        total_parking_time=_hours(cost.parking_s) if cost.parking_s > 0 else None,
        remark=_remark(facts, priced, cost.energy_wh),
        last_updated=now,
        **_totals(cost, priced),
    )


def _distinct(tariffs: Sequence[Tariff]) -> list[Tariff]:
    """Each tariff once (a session changed back to a tariff it had lists it once)."""
    found: dict[tuple[str, str], Tariff] = {}
    for tariff in tariffs:
        found.setdefault((tariff.id, tariff.model_dump_json()), tariff)
    return list(found.values())


def credit_of(original: Cdr, now: datetime) -> Cdr:
    """The credit CDR that cancels ``original`` (its id with "-C" appended)."""
    total = original.total_cost
    negated = Price(
        excl_vat=-total.excl_vat, incl_vat=None if total.incl_vat is None else -total.incl_vat
    )
    return original.model_copy(
        update={
            "id": f"{original.id}-C",
            "credit": True,
            "credit_reference_id": original.id,
            "total_cost": negated,
            "last_updated": now,
        }
    )


def _totals(cost: Cost, priced: bool) -> dict[str, Price | None]:
    if not priced:
        return {"total_cost": Price(excl_vat=Decimal(0))}
    billed = {category(p, line) for p in cost.periods for line in p.lines}
    totals: dict[str, Price | None] = {"total_cost": _price(cost.total, cost)}
    for name, amount in (
        ("fixed", cost.fixed),
        ("energy", cost.energy),
        ("time", cost.time),
        ("parking", cost.parking),
        ("reservation", cost.reservation),
    ):
        totals[f"total_{name}_cost"] = _price(amount, cost) if name in billed else None
    return totals


def _price(amount: Amount, cost: Cost) -> Price:
    excl, incl = cost.rounded(amount)
    return Price(excl_vat=excl, incl_vat=incl)


def _hours(seconds: Decimal) -> Decimal:
    return (seconds / 3600).quantize(_HOURS)


def _period(period: Period, priced: bool) -> ChargingPeriod:
    dimensions = [CdrDimension(type=kind, volume=volume) for kind, volume in _dimensions(period)]
    return ChargingPeriod(
        start_date_time=period.start,
        dimensions=dimensions,
        tariff_id=period.tariff_id if priced and period.components else None,
    )


def _dimensions(period: Period) -> list[tuple[CdrDimensionType, Decimal]]:
    hours = _hours(period.seconds)
    if period.phase is Phase.RESERVATION:
        return [(CdrDimensionType.RESERVATION_TIME, hours)]
    found = [(CdrDimensionType.ENERGY, (period.energy_wh / 1000).quantize(_KWH))]
    time_kind = (
        CdrDimensionType.TIME if period.phase is Phase.CHARGING else CdrDimensionType.PARKING_TIME
    )
    found.append((time_kind, hours))
    if period.powers_w:
        found.append((CdrDimensionType.MAX_POWER, max(period.powers_w) / 1000))
        found.append((CdrDimensionType.MIN_POWER, min(period.powers_w) / 1000))
    if period.currents_a:
        found.append((CdrDimensionType.MAX_CURRENT, max(period.currents_a)))
        found.append((CdrDimensionType.MIN_CURRENT, min(period.currents_a)))
    return found


def _token(party: CdrParty, facts: SessionFacts) -> CdrToken:
    uid = facts.id_token or "UNKNOWN"
    return CdrToken(
        country_code=party.country_code,
        party_id=party.party_id,
        uid=uid,
        type=_TOKEN_TYPES.get(facts.token_type or "", TokenType.OTHER),
        contract_id=uid,
    )


def _location(facts: SessionFacts) -> CdrLocation:
    evse = f"{facts.station_id}*{facts.evse_id if facts.evse_id is not None else 0}"
    return CdrLocation(
        id=facts.site_id or facts.station_id,
        name=facts.station_id if facts.site_id is None else None,
        evse_uid=evse,
        evse_id=evse,
        connector_id=str(facts.connector_id or 1),
    )


def _remark(facts: SessionFacts, priced: bool, energy_wh: Decimal) -> str | None:
    parts = [] if priced else ["no tariff applied: the cost is not known"]
    if facts.stop_reason:
        parts.append(f"stopped: {facts.stop_reason}")
    if facts.station_cost_differs:
        parts.append("the station showed another cost (GET /costs/{session_id} has both)")
    recorded = facts.recorded_energy_wh
    if recorded is not None and energy_differs(recorded, energy_wh):
        parts.append(
            f"priced {energy_wh.quantize(_WH)} Wh, the session recorded "
            f"{Decimal(repr(recorded)).quantize(_WH)} Wh: the meter readings disagree"
        )
    return "; ".join(parts) or None


def energy_differs(recorded_wh: float | None, priced_wh: Decimal) -> bool:
    """Whether the energy priced differs from the sessions service's (both are whole Wh up
    to rounding: a Wh apart is a real difference)."""
    return recorded_wh is not None and abs(priced_wh - Decimal(repr(recorded_wh))) >= _WH


def _signed(readings: Sequence[SignedReading]) -> SignedData | None:
    """The station's signed readings, carried through as sent (OCPP 2.x signedMeterValue,
    1.6 SignedData values)."""
    if not readings:
        return None
    first = readings[0].signed
    return SignedData(
        encoding_method=str(first.get("encodingMethod") or first.get("format") or "unknown")[:36],
        public_key=first.get("publicKey") or None,
        signed_values=[
            SignedValue(
                nature=_NATURE.get(r.context or "", "Intermediate"),
                plain_data=f"Energy.Active.Import.Register={r.value}Wh@{r.at.isoformat()}",
                signed_data=str(r.signed.get("signedMeterData") or r.signed.get("value") or ""),
            )
            for r in sorted(readings, key=lambda reading: reading.at)
        ],
    )
