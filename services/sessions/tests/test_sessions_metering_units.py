"""Unit tests: sampledValue normalisation and the energy of register readings."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from csms_sessions.metering.energy import Reading, delivered_wh, session_energy
from csms_sessions.metering.normalize import samples_of

T0 = datetime(2025, 1, 1, 10, tzinfo=UTC)


def one(sampled: dict[str, Any], *, is_2x: bool) -> tuple[float | None, str | None]:
    [sample] = samples_of(
        [{"timestamp": "2025-01-01T10:00:00+01:00", "sampledValue": [sampled]}], is_2x=is_2x
    )
    assert sample.timestamp == T0 - timedelta(hours=1)
    return sample.value, sample.unit


@pytest.mark.parametrize(
    ("sampled", "expected"),
    [
        ({"value": "12.345", "unit": "kWh"}, (12345.0, "Wh")),
        ({"value": "7"}, (7.0, "Wh")),
        ({"value": "11", "unit": "kW", "measurand": "Power.Active.Import"}, (11000.0, "W")),
        ({"value": "230.1", "measurand": "Voltage"}, (230.1, "V")),
        (
            {"value": "2", "unit": "kvarh", "measurand": "Energy.Reactive.Import.Register"},
            (2000.0, "varh"),
        ),
        ({"value": "68", "unit": "Fahrenheit", "measurand": "Temperature"}, (20.0, "Celsius")),
        ({"value": "300.15", "unit": "K", "measurand": "Temperature"}, (27.0, "Celsius")),
        ({"value": "50", "measurand": "Frequency"}, (50.0, "Hz")),
        ({"value": "80", "measurand": "SoC", "unit": "Percent"}, (80.0, "Percent")),
    ],
)
def test_v16_values_in_base_units(sampled: dict[str, Any], expected: tuple[float, str]) -> None:
    assert one(sampled, is_2x=False) == expected


@pytest.mark.parametrize(
    ("sampled", "expected"),
    [
        ({"value": 1.5, "unitOfMeasure": {"unit": "kWh"}}, (1500.0, "Wh")),
        ({"value": 15, "unitOfMeasure": {"unit": "Wh", "multiplier": 2}}, (1500.0, "Wh")),
        ({"value": 15, "unitOfMeasure": {"multiplier": -1}}, (1.5, "Wh")),
        ({"value": 3.2, "measurand": "Current.Import"}, (3.2, "A")),
        (
            {
                "value": 2,
                "measurand": "Power.Active.Import",
                "unitOfMeasure": {"unit": "kW", "multiplier": 1},
            },
            (20000.0, "W"),
        ),
        ({"value": 4, "measurand": "Power.Factor"}, (4.0, None)),
        ({"value": 9, "unitOfMeasure": {"unit": "RPM"}, "measurand": "RPM"}, (9.0, "RPM")),
    ],
)
def test_v2_values_in_base_units(sampled: dict[str, Any], expected: tuple[float, str]) -> None:
    assert one(sampled, is_2x=True) == expected


def test_v2_signed_meter_value_is_kept() -> None:
    signed = {
        "signedMeterData": "ZGF0YQ==",
        "signingMethod": "ECDSA-secp256r1-SHA256",
        "encodingMethod": "OCMF",
        "publicKey": "a2V5",
    }
    [sample] = samples_of(
        [
            {
                "timestamp": "2025-01-01T10:00:00Z",
                "sampledValue": [{"value": 5, "signedMeterValue": signed}],
            }
        ],
        is_2x=True,
    )
    assert (sample.value, sample.signed) == (5.0, signed)


def readings(*values: float, shuffle: bool = False) -> list[Reading]:
    items = [Reading(T0 + timedelta(minutes=i), v) for i, v in enumerate(values)]
    return list(reversed(items)) if shuffle else items


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ((), None),
        ((500.0,), 0.0),
        ((100.0, 200.0, 450.0), 350.0),
        ((100.0, 900.0, 20.0, 120.0), 900.0),  # reset: 800 + 100
        ((100.0, -5.0, 300.0), 200.0),  # a negative reading never counts
        ((-5.0,), None),
    ],
)
def test_delivered_energy(values: tuple[float, ...], expected: float | None) -> None:
    assert delivered_wh(readings(*values)) == expected
    assert delivered_wh(readings(*values, shuffle=True)) == expected  # order of arrival is moot


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    ("readings", "start", "stop", "expected"),
    [
        # Stop minus start, samples inside agreeing: no disagreement.
        ([(10, 1200.0), (20, 1400.0)], 1000.0, 1500.0, (500.0, ())),
        # A sample above the stop reading: the stop counts, the session is flagged.
        ([(10, 1700.0)], 1000.0, 1500.0, (500.0, ("meter_readings_disagree",))),
        # Samples outside the session's own start and end never count or disagree.
        ([(-5, 10.0), (70, 9000.0)], 1000.0, 1500.0, (500.0, ())),
        # Stop below start (a meter reset): the segments add up, flagged.
        ([(10, 1300.0), (20, 50.0)], 1000.0, 100.0, (350.0, ("stop_below_start",))),
        # No start or stop reading: last minus first, a fall inside flagged.
        (
            [(10, 100.0), (20, 300.0), (30, 20.0), (40, 70.0)],
            None,
            None,
            (250.0, ("register_decreased",)),
        ),
    ],
)
def test_session_energy_within_its_start_and_end(
    readings: list[tuple[int, float]],
    start: float | None,
    stop: float | None,
    expected: tuple[float, tuple[str, ...]],
) -> None:
    energy = session_energy(
        [Reading(at(m), wh) for m, wh in readings],
        meter_start=start,
        meter_stop=stop,
        started_at=at(0),
        ended_at=at(60),
    )
    assert (energy.wh, tuple(reason for reason, _ in energy.disagreements)) == expected


def test_session_energy_of_an_active_session_flags_nothing() -> None:
    energy = session_energy(
        [Reading(at(10), 100.0), Reading(at(20), 20.0)],
        meter_start=None,
        meter_stop=None,
        started_at=None,
        ended_at=None,
    )
    assert (energy.wh, energy.disagreements) == (0.0, ())
