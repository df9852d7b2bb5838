"""A 2.1 station's own cost (``costDetails``) against the engine's: a mismatch is flagged.

A station with a local cost calculator reports what it computed in each
TransactionEvent (``costDetails.totalCost``). The CSMS prices the same session
with the same tariff version; where the two differ by more than the currency's
minor unit (the station rounds as it likes) per figure, the session is flagged
with both figures and what differs, visible in ``GET /costs/{session_id}`` and the
CDR's remark, and counted. Nothing is hidden and neither figure is overwritten:
the CDR carries the CSMS's cost, the flag says the station showed another.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from csms_billing.money import MINOR_UNITS
from csms_billing.pricing.cost import Amount, Cost
from csms_billing.sessions.models import BilledSession

cost_mismatches = Counter(
    "csms_billing_cost_mismatches_total",
    "2.1 stations' own costs that differ from the CSMS's for the same session",
)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _Price(_Wire):
    excl_tax: Decimal | None = Field(default=None, alias="exclTax")
    incl_tax: Decimal | None = Field(default=None, alias="inclTax")


class _TotalCost(_Wire):
    currency: str
    type_of_cost: str = Field(alias="typeOfCost")
    total: _Price
    fixed: _Price | None = None
    energy: _Price | None = None
    charging_time: _Price | None = Field(default=None, alias="chargingTime")
    idle_time: _Price | None = Field(default=None, alias="idleTime")


class CostDetails(_Wire):
    """OCPP 2.1 CostDetailsType, as far as reconciling needs it."""

    total_cost: _TotalCost = Field(alias="totalCost")
    failure_to_calculate: bool = Field(default=False, alias="failureToCalculate")
    failure_reason: str | None = Field(default=None, alias="failureReason")


@dataclass(frozen=True)
class Mismatch:
    """What differs; ``wire`` is what the session keeps and REST shows."""

    differences: dict[str, dict[str, float | str | None]]

    def wire(self) -> dict[str, Any]:
        return {"reason": "station_cost_differs", "differences": self.differences}


def reconcile(ours: Cost, theirs: CostDetails) -> Mismatch | None:
    """None when the station's figures agree with ``ours`` (within a minor unit each)."""
    if theirs.failure_to_calculate:
        reason = theirs.failure_reason or "the station failed to calculate the cost"
        return Mismatch({"station": {"failure": reason}})
    total = theirs.total_cost
    if total.currency != ours.currency:
        return Mismatch({"currency": {"station": total.currency, "csms": ours.currency}})
    differences: dict[str, dict[str, float | str | None]] = {}
    for name, station_price, amount in (
        ("total", total.total, ours.total),
        ("fixed", total.fixed, ours.fixed),
        ("energy", total.energy, ours.energy),
        ("charging_time", total.charging_time, ours.time),
        ("idle_time", total.idle_time, ours.parking),
    ):
        if station_price is not None:
            differences |= _compare(name, station_price, amount, ours)
    return Mismatch(differences) if differences else None


def _compare(
    name: str, theirs: _Price, amount: Amount, ours: Cost
) -> dict[str, dict[str, float | str | None]]:
    tolerance = Decimal(1).scaleb(-MINOR_UNITS.get(ours.currency, 2))
    found: dict[str, dict[str, float | str | None]] = {}
    for kind, station, csms in (
        ("excl_tax", theirs.excl_tax, amount.excl),
        ("incl_tax", theirs.incl_tax, amount.incl if ours.taxed else amount.excl),
    ):
        if station is not None and abs(station - csms) > tolerance:
            found[f"{name}.{kind}"] = {"station": float(station), "csms": float(round(csms, 6))}
    return found


def station_mismatch(billed: BilledSession, ours: Cost) -> Mismatch | None:
    """The session's latest station-reported cost against ``ours`` (None: agrees, or the
    station reported none)."""
    if billed.station_cost is None:
        return None
    details = CostDetails.model_validate(billed.station_cost["details"])
    return reconcile(ours, details)


def flag(billed: BilledSession, ours: Cost) -> None:
    """Keep the final comparison on the session (and count a mismatch)."""
    mismatch = station_mismatch(billed, ours)
    billed.cost_mismatch = (
        None if mismatch is None else mismatch.wire() | {"at": billed.station_cost_at}
    )
    if mismatch is not None:
        cost_mismatches.inc()
