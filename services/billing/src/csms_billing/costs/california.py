"""The OCA "OCPP & California Pricing Requirements" customization for OCPP 2.0.1 / 2.1.

A station that supports it says so in its device model
(``CustomizationCtrlr.CustomImplementationEnabled[org.openchargealliance.costmsg]``
= true); the CSMS asks once a day (GetVariables) and remembers, with the station's
``TariffCostCtrlr.Currency`` and ``TariffCostCtrlr.NumberOfDecimalsForCostValues``
(the decimals the station keeps of a cost or a price). A station that does not report
it may be named in ``CSMS_BILLING_CALIFORNIA_STATIONS`` (the operator's flag).

Such a station's CostUpdated carries ``customData`` with vendorId
``org.openchargealliance.costmsg``: the register reading and state the cost is for,
and the prices in force now (``chargingPrice`` per kWh, per hour and flat;
``idlePrice`` per hour), so the driver sees what the cost is made of. Prices are those
of the session's tariff version, including its taxes, as the driver pays them, to the
station's decimals. The answer to its TransactionEvent Ended carries the same
``customData`` for the end (state ``Finished``) and the itemized final cost as
``updatedPersonalMessage`` (``final_part``). A station whose ``Currency`` is not the
session's gets no cost at all: it would show it in the wrong currency.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.db import SCHEMA
from csms_billing.pricing.cost import ComponentRef, Cost, Dimension, Phase
from csms_billing.pricing.engine import active_components
from csms_billing.pricing.restrictions import Moment
from csms_billing.pricing.taxes import TaxRate, component_taxes, tax_factor
from csms_billing.settings import BillingSettings
from csms_billing.tariffs.ocpi import Tariff
from csms_core.db import UtcDateTime, transaction, utc_now
from csms_core.router import CommandClient, CommandOutcome, InvalidCommand, StationOffline, fixed

VENDOR_ID = "org.openchargealliance.costmsg"
RECHECK_AFTER = timedelta(days=1)
PROBE_TIMEOUT_S = 10.0
DEFAULT_DECIMALS = 6  # a station that names no NumberOfDecimalsForCostValues
_ENABLED = ("CustomizationCtrlr", "CustomImplementationEnabled", VENDOR_ID)
_CURRENCY = ("TariffCostCtrlr", "Currency", None)
_DECIMALS = ("TariffCostCtrlr", "NumberOfDecimalsForCostValues", None)
_PROBE = {
    "getVariableData": [
        {
            "component": {"name": component},
            "variable": {"name": name} | ({"instance": instance} if instance else {}),
        }
        for component, name, instance in (_ENABLED, _CURRENCY, _DECIMALS)
    ]
}


class StationPricing(SQLModel, table=True):
    """What billing learnt of a station's cost display."""

    __tablename__ = "station_pricing"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    california: bool = False
    # TariffCostCtrlr.Currency and .NumberOfDecimalsForCostValues, when it reports them.
    currency: str | None = Field(default=None, max_length=3)
    cost_decimals: int | None = None
    checked_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


@dataclass(frozen=True)
class Display:
    """What a station shows of costs: the costmsg customization, its currency, decimals."""

    california: bool
    currency: str | None = None
    decimals: int | None = None


def configured(settings: BillingSettings) -> frozenset[str]:
    """The stations the operator flags as taking costmsg (``CSMS_BILLING_CALIFORNIA_STATIONS``)."""
    return frozenset(s.strip() for s in settings.california_stations.split(",") if s.strip())


async def known_display(
    session: AsyncSession, settings: BillingSettings, station_id: str
) -> Display | None:
    """What billing knows of the station's display, without asking it (an answer being
    composed cannot wait for a GetVariables): the last probe's, or the operator's flag."""
    row = await session.get(StationPricing, station_id)
    flagged = station_id in configured(settings)
    if row is None:
        return Display(True) if flagged else None
    return Display(row.california or flagged, row.currency, row.cost_decimals)


async def station_display(
    factory: async_sessionmaker[AsyncSession],
    commands: CommandClient,
    station_id: str,
    flagged: frozenset[str] = frozenset(),
) -> Display:
    """What the station shows of costs (asked once a day, outside any database
    transaction: a slow station holds no lock); ``flagged``: stations the operator says
    take costmsg."""
    async with factory() as session:
        known = await session.get(StationPricing, station_id)
    if known is not None and utc_now() - known.checked_at < RECHECK_AFTER:
        display = Display(known.california, known.currency, known.cost_decimals)
    else:
        display = await _probe(commands, station_id)
        async with transaction(factory) as session:
            row = await session.get(StationPricing, station_id) or StationPricing(
                station_id=station_id
            )
            row.california, row.checked_at = display.california, utc_now()
            row.currency, row.cost_decimals = display.currency, display.decimals
            session.add(row)
    return replace(display, california=True) if station_id in flagged else display


async def _probe(commands: CommandClient, station_id: str) -> Display:
    try:
        result = await commands.call(station_id, fixed("GetVariables", _PROBE), PROBE_TIMEOUT_S)
    except (StationOffline, InvalidCommand):  # InvalidCommand: a 1.6 station has no such call
        return Display(False)
    if result.outcome is not CommandOutcome.RESULT:
        return Display(False)  # a station that does not know GetVariables knows no costmsg
    values = {
        (r.get("component", {}).get("name"), r.get("variable", {}).get("name")): str(
            r.get("attributeValue", "")
        )
        for r in (result.payload or {}).get("getVariableResult", [])
        if r.get("attributeStatus") == "Accepted"
    }
    decimals = values.get(_DECIMALS[:2], "")
    currency = values.get(_CURRENCY[:2], "").strip().upper()
    return Display(
        california=values.get(_ENABLED[:2], "").lower() == "true",
        currency=currency if len(currency) == 3 else None,
        decimals=int(decimals) if decimals.isdigit() and int(decimals) <= 9 else None,
    )


def cost_message(
    cost: Cost,
    tariff: Tariff,
    zone: ZoneInfo,
    taxes: list[TaxRate],
    register_wh: float | None,
    at: datetime,
    decimals: int | None = None,
) -> dict[str, Any]:
    """The costmsg ``customData`` of a CostUpdated for ``cost`` (priced until ``at``);
    prices to ``decimals`` (the station's NumberOfDecimalsForCostValues)."""
    data: dict[str, Any] = {"vendorId": VENDOR_ID, "timestamp": at.isoformat()}
    if register_wh is not None:
        data["meterValue"] = int(register_wh)
    last = cost.periods[-1] if cost.periods else None
    if last is not None:
        data["state"] = "Charging" if last.phase is Phase.CHARGING else "Idle"
    power = last.powers_w[-1] if last is not None and last.powers_w else None
    current = last.currents_a[-1] if last is not None and last.currents_a else None
    moment = Moment(at.astimezone(zone), cost.time_s, cost.energy_wh, power, current)
    prices = _gross(tariff, taxes, active_components(tariff, moment), decimals)
    data["chargingPrice"] = {
        key: prices[dimension]
        for key, dimension in (
            ("kWhPrice", Dimension.ENERGY),
            ("hourPrice", Dimension.TIME),
            ("flatFee", Dimension.FLAT),
        )
        if dimension in prices
    }
    if Dimension.PARKING_TIME in prices:
        data["idlePrice"] = {"hourPrice": prices[Dimension.PARKING_TIME]}
    return data


def _gross(
    tariff: Tariff,
    taxes: list[TaxRate],
    components: dict[Dimension, ComponentRef],
    decimals: int | None = None,
) -> dict[Dimension, float]:
    """Each active component's unit price, including its taxes (half up to ``decimals``)."""
    quantum = Decimal(1).scaleb(-(DEFAULT_DECIMALS if decimals is None else decimals))
    prices: dict[Dimension, float] = {}
    for dimension, ref in components.items():
        component = ref.of(tariff)
        gross = component.price * tax_factor(component_taxes(component.vat, dimension, taxes))
        prices[dimension] = float(gross.quantize(quantum, rounding=ROUND_HALF_UP))
    return prices


def final_message(cost: Cost, data: dict[str, Any]) -> dict[str, Any]:
    """The Ended answer's costmsg part: ``data`` (``cost_message`` at the end) in state
    ``Finished`` and the itemized final cost as the updated personal message."""
    return {
        "customData": data | {"state": "Finished"},
        "updatedPersonalMessage": {"format": "UTF8", "content": final_text(cost)[:512]},
    }


def final_text(cost: Cost) -> str:
    """What the driver paid, itemized (the CDR's figures): total, tax, energy, time."""
    excl, incl = cost.rounded(cost.total)
    total = f"Total {incl if incl is not None else excl} {cost.currency}"
    if incl is not None:
        total += f" incl. {incl - excl} tax"
    parts = [f"{excl} {cost.currency} excl. tax" if incl is not None else None]
    for label, amount in (
        ("start fee", cost.fixed),
        ("energy", cost.energy),
        ("charging time", cost.time),
        ("idle time", cost.parking),
        ("reservation", cost.reservation),
    ):
        net, _ = cost.rounded(amount)
        if net:
            parts.append(f"{label} {net}")
    hours, rest = divmod(int(cost.time_s), 3600)
    usage = (
        f"{(cost.energy_wh / 1000).quantize(Decimal('0.001'))} kWh in {hours}:{rest // 60:02d} h"
    )
    return f"{total}. {', '.join(p for p in parts if p)}. {usage}."
