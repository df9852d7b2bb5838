"""The OCA "OCPP & California Pricing Requirements" customization for OCPP 2.0.1 / 2.1.

A station that supports it says so in its device model
(``CustomizationCtrlr.CustomImplementationEnabled[org.openchargealliance.costmsg]``
= true); the CSMS asks once a day (GetVariables) and remembers. Such a station's
CostUpdated carries ``customData`` with vendorId ``org.openchargealliance.costmsg``:
the register reading and state the cost is for, and the prices in force now
(``chargingPrice`` per kWh, per hour and flat; ``idlePrice`` per hour), so the
driver sees what the cost is made of. Prices are those of the session's tariff
version, including its taxes, as the driver pays them.
"""

from datetime import datetime, timedelta
from decimal import Decimal
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
from csms_billing.tariffs.ocpi import Tariff
from csms_core.db import UtcDateTime, transaction, utc_now
from csms_core.router import CommandClient, CommandOutcome, InvalidCommand, StationOffline, fixed

VENDOR_ID = "org.openchargealliance.costmsg"
RECHECK_AFTER = timedelta(days=1)
_PRICE_QUANTUM = Decimal("0.000001")
PROBE_TIMEOUT_S = 10.0
_PROBE = {
    "getVariableData": [
        {
            "component": {"name": "CustomizationCtrlr"},
            "variable": {"name": "CustomImplementationEnabled", "instance": VENDOR_ID},
        }
    ]
}


class StationPricing(SQLModel, table=True):
    """What billing learnt of a station's cost display."""

    __tablename__ = "station_pricing"
    __table_args__ = {"schema": SCHEMA}

    station_id: str = Field(primary_key=True, max_length=48)
    california: bool = False
    checked_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


async def supports_california(
    factory: async_sessionmaker[AsyncSession], commands: CommandClient, station_id: str
) -> bool:
    """Whether the station takes the costmsg customData (asked once a day, outside any
    database transaction: a slow station holds no lock)."""
    async with factory() as session:
        known = await session.get(StationPricing, station_id)
    if known is not None and utc_now() - known.checked_at < RECHECK_AFTER:
        return known.california
    california = await _probe(commands, station_id)
    async with transaction(factory) as session:
        row = await session.get(StationPricing, station_id) or StationPricing(station_id=station_id)
        row.california, row.checked_at = california, utc_now()
        session.add(row)
    return california


async def _probe(commands: CommandClient, station_id: str) -> bool:
    try:
        result = await commands.call(station_id, fixed("GetVariables", _PROBE), PROBE_TIMEOUT_S)
    except (StationOffline, InvalidCommand):  # InvalidCommand: a 1.6 station has no such call
        return False
    if result.outcome is not CommandOutcome.RESULT:
        return False  # a station that does not know GetVariables does not know costmsg
    results = (result.payload or {}).get("getVariableResult", [])
    return any(
        r.get("attributeStatus") == "Accepted" and str(r.get("attributeValue")).lower() == "true"
        for r in results
    )


def cost_message(
    cost: Cost,
    tariff: Tariff,
    zone: ZoneInfo,
    taxes: list[TaxRate],
    register_wh: float | None,
    at: datetime,
) -> dict[str, Any]:
    """The costmsg ``customData`` of a CostUpdated for ``cost`` (priced until ``at``)."""
    data: dict[str, Any] = {"vendorId": VENDOR_ID, "timestamp": at.isoformat()}
    if register_wh is not None:
        data["meterValue"] = int(register_wh)
    last = cost.periods[-1] if cost.periods else None
    if last is not None:
        data["state"] = "Charging" if last.phase is Phase.CHARGING else "Idle"
    power = last.powers_w[-1] if last is not None and last.powers_w else None
    current = last.currents_a[-1] if last is not None and last.currents_a else None
    moment = Moment(at.astimezone(zone), cost.time_s, cost.energy_wh, power, current)
    prices = _gross(tariff, taxes, active_components(tariff, moment))
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
    tariff: Tariff, taxes: list[TaxRate], components: dict[Dimension, ComponentRef]
) -> dict[Dimension, float]:
    """Each active component's unit price, including its taxes."""
    prices: dict[Dimension, float] = {}
    for dimension, ref in components.items():
        component = ref.of(tariff)
        gross = component.price * tax_factor(component_taxes(component.vat, dimension, taxes))
        prices[dimension] = float(gross.quantize(_PRICE_QUANTUM))
    return prices
