"""One sampledValue of any OCPP version as a sample in base units.

OCPP 1.6 sends the value as a decimal string with a unit (kWh, kW, ...);
OCPP 2.x sends a number with ``unitOfMeasure {unit, multiplier}`` where the
value is multiplied by 10^multiplier before the unit applies (2.1 Part 2
UnitOfMeasureType: the multiplier does not convert kW to W). We store Wh, W,
A, V, varh, var, VA, Percent, Celsius and Hz; any other unit is kept as sent.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from csms_core.events import MeterSample
from csms_sessions.db import parse_ocpp_time

logger = logging.getLogger(__name__)

ENERGY_REGISTER = "Energy.Active.Import.Register"
# OCPP 1.6 §7.31 / 2.0.1 SampledValueType: the measurand when none is given.
DEFAULT_MEASURAND = ENERGY_REGISTER

# unit as sent → (base unit, factor); Fahrenheit and Kelvin need an offset (see _to_base).
_UNITS: dict[str, tuple[str, int]] = {
    "Wh": ("Wh", 1),
    "kWh": ("Wh", 1000),
    "varh": ("varh", 1),
    "kvarh": ("varh", 1000),
    "VAh": ("VAh", 1),
    "kVAh": ("VAh", 1000),
    "W": ("W", 1),
    "kW": ("W", 1000),
    "VA": ("VA", 1),
    "kVA": ("VA", 1000),
    "var": ("var", 1),
    "kvar": ("var", 1000),
    "A": ("A", 1),
    "V": ("V", 1),
    "Celsius": ("Celsius", 1),
    "Percent": ("Percent", 1),
    "Hz": ("Hz", 1),
}
# The unit a measurand has when the station names none (by its first word).
_DEFAULT_UNITS = {
    "Energy.Active": "Wh",
    "Energy.Reactive": "varh",
    "Energy.Apparent": "VAh",
    "Power.Active": "W",
    "Power.Offered": "W",
    "Power.Reactive": "var",
    "Current": "A",
    "Voltage": "V",
    "SoC": "Percent",
    "Temperature": "Celsius",
    "Frequency": "Hz",
}


@dataclass(frozen=True, slots=True)
class Sample:
    """One normalised reading; ``value`` is None when the station sent no number (signed data)."""

    timestamp: datetime
    measurand: str
    value: float | None
    unit: str | None
    phase: str | None = None
    location: str | None = None
    context: str | None = None
    signed: dict[str, Any] | None = None
    raw_value: str | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        """What makes two samples the same reading (a replay sends it again): the value
        too, so two register readings of the same second are two readings."""
        return sample_key(
            self.timestamp,
            self.measurand,
            self.phase,
            self.location,
            self.context,
            self.value,
            self.unit,
            self.raw_value,
            self.signed,
        )

    def wire(self) -> MeterSample:
        """The sample as ``meter.values`` events carry it."""
        return MeterSample(
            timestamp=self.timestamp,
            measurand=self.measurand,
            value=self.value,
            unit=self.unit,
            phase=self.phase,
            location=self.location,
            context=self.context,
            signed=self.signed,
        )


def sample_key(
    timestamp: datetime,
    measurand: str,
    phase: str | None,
    location: str | None,
    context: str | None,
    value: float | None,
    unit: str | None,
    raw_value: str | None,
    signed: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """The identity of one sample, whether just parsed or read back from its row."""
    signed_text = json.dumps(signed, sort_keys=True) if signed is not None else None
    return (timestamp, measurand, phase, location, context, value, unit, raw_value, signed_text)


def samples_of(meter_values: list[dict[str, Any]], *, is_2x: bool) -> list[Sample]:
    """Every sampledValue of a MeterValue list (1.6 or 2.x), normalised."""
    return [
        _sample(parse_ocpp_time(meter_value["timestamp"]), sampled, is_2x=is_2x)
        for meter_value in meter_values
        for sampled in meter_value["sampledValue"]
    ]


def _sample(timestamp: datetime, sampled: dict[str, Any], *, is_2x: bool) -> Sample:
    measurand = sampled.get("measurand", DEFAULT_MEASURAND)
    if is_2x:
        unit_of_measure = sampled.get("unitOfMeasure", {})
        unit = unit_of_measure.get("unit") or _default_unit(measurand)
        # Decimal arithmetic: 12.345 kWh is 12345 Wh, not 12345.000000000002.
        multiplier = Decimal(10) ** unit_of_measure.get("multiplier", 0)
        number: Decimal | None = Decimal(str(sampled["value"])) * multiplier
        signed, raw_value = sampled.get("signedMeterValue"), None
    else:
        unit = sampled.get("unit") or _default_unit(measurand)
        number, signed, raw_value = _value_v16(sampled)
    value, base_unit = _to_base(number, unit)
    return Sample(
        timestamp=timestamp,
        measurand=measurand,
        value=value,
        unit=base_unit,
        phase=sampled.get("phase"),
        location=sampled.get("location"),
        context=sampled.get("context"),
        signed=signed,
        raw_value=raw_value,
    )


def _value_v16(sampled: dict[str, Any]) -> tuple[Decimal | None, dict[str, Any] | None, str | None]:
    """(number, signed data, the raw value kept when it is not a number)."""
    raw: str = sampled["value"]
    if sampled.get("format") == "SignedData":
        # OCPP 1.6 §7.45 ValueFormat: the value is a signed blob, not a number.
        return None, {"format": "SignedData", "value": raw}, None
    try:
        number = Decimal(raw.strip())
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        logger.warning("a 1.6 sampled value is not a number: %r (kept raw)", raw)
        return None, None, raw
    return number, None, None


def _default_unit(measurand: str) -> str | None:
    return next((u for prefix, u in _DEFAULT_UNITS.items() if measurand.startswith(prefix)), None)


def _to_base(value: Decimal | None, unit: str | None) -> tuple[float | None, str | None]:
    if value is None:
        return None, _UNITS.get(unit or "", (unit, 1))[0]
    if unit == "Fahrenheit":
        return float((value - 32) * 5 / 9), "Celsius"
    if unit == "K":
        return float(value - Decimal("273.15")), "Celsius"
    base, factor = _UNITS.get(unit or "", (unit, 1))
    return float(value * factor), base
