"""Test kit: sessions and tariffs written the way the tests' tables read.

A session is a start and segments ("30 minutes charging 5 kWh, then 40 minutes
parked"); the kit turns it into the register readings and charging states a
station would have reported, built on the product's own ``Usage`` types.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from csms_billing.money import round_amount
from csms_billing.pricing.cost import Cost
from csms_billing.pricing.usage import ChargingState, Gauge, RegisterReading, Usage
from csms_billing.tariffs.ocpi import Tariff


@dataclass(frozen=True)
class Segment:
    """``minutes`` of the session delivering ``kwh``; charging unless it delivers nothing."""

    minutes: Decimal | int | str
    kwh: Decimal | int | str = 0
    charging: bool | None = None
    current_a: Decimal | int | str | None = None


def charged(kwh: Decimal | int | str, minutes: Decimal | int | str, **extra: Any) -> Segment:
    return Segment(minutes, kwh, True, **extra)


def parked(minutes: Decimal | int | str) -> Segment:
    return Segment(minutes, 0, False)


def session(
    start: datetime,
    *segments: Segment,
    meter_start_wh: Decimal | int = 0,
    reserved_minutes: Decimal | int | str | None = None,
) -> Usage:
    """The usage of a session of ``segments`` from ``start``, readings at every boundary."""
    at, wh = start, Decimal(meter_start_wh)
    readings, states, gauges = [RegisterReading(at, wh)], [], []
    for segment in segments:
        charging = segment.charging if segment.charging is not None else Decimal(segment.kwh) > 0
        states.append(ChargingState(at, charging))
        if segment.current_a is not None:
            gauges.append(Gauge(at, current_a=Decimal(segment.current_a)))
        at += timedelta(minutes=float(Decimal(segment.minutes)))
        wh += Decimal(segment.kwh) * 1000
        readings.append(RegisterReading(at, wh))
    reserved_at = (
        None
        if reserved_minutes is None
        else start - timedelta(minutes=float(Decimal(reserved_minutes)))
    )
    return Usage(start, at, readings, states, gauges, reserved_at=reserved_at)


def tariff(*elements: dict[str, Any], **fields: Any) -> Tariff:
    """An OCPI tariff of ``elements`` (EUR unless ``currency`` says otherwise)."""
    body: dict[str, Any] = {"id": "t", "currency": "EUR", "elements": list(elements), **fields}
    return Tariff.model_validate(body)


def component(kind: str, price: str, *, vat: str | None = None, step: int = 1) -> dict[str, Any]:
    found: dict[str, Any] = {"type": kind, "price": price, "step_size": step}
    return found | ({} if vat is None else {"vat": vat})


def element(*components: dict[str, Any], **restrictions: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"price_components": list(components)}
    return found | ({"restrictions": restrictions} if restrictions else {})


def tariff_body(
    tariff_id: str, *components: dict[str, Any], applies_to: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``PUT /api/v1/tariffs/{tariff_id}`` body: one element of ``components``, in EUR
    from 2024 on, by default for every session."""
    return {
        "tariff": {
            "id": tariff_id,
            "currency": "EUR",
            "start_date_time": "2024-01-01T00:00:00Z",
            "elements": [element(*components)],
        },
        "applies_to": applies_to or {"default": True},
    }


def totals(cost: Cost) -> tuple[Decimal, Decimal | None]:
    """(excl. VAT, incl. VAT or None where no tax applies), rounded as a driver pays them."""
    excl = round_amount(cost.total.excl, cost.currency)
    return excl, round_amount(cost.total.incl, cost.currency) if cost.taxed else None
