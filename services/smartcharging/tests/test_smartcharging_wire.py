"""profiles/wire.py: every payload we build conforms to the official schema of its version."""

import pytest

from csms_ocpp import OcppVersion, schemas
from csms_smartcharging.profiles import wire

VERSIONS = list(OcppVersion)


def assert_valid(version: OcppVersion, action: str, payload: wire.JsonObject) -> None:
    violation = schemas.validate(version, action, payload)
    assert violation is None, (version, action, violation, payload)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("purpose", list(wire.Purpose))
@pytest.mark.parametrize("limit_a", [0.0, 6.0, 16.3, 31.7, 12.25])
def test_set_charging_profile_is_valid(
    version: OcppVersion, purpose: wire.Purpose, limit_a: float
) -> None:
    payload = wire.set_charging_profile(
        version,
        evse_id=0 if purpose is not wire.Purpose.TX else 2,
        purpose=purpose,
        limit_a=limit_a,
        phases=1,
        transaction_id="1234" if purpose is wire.Purpose.TX else None,
    )
    assert_valid(version, "SetChargingProfile", payload)


def test_shapes_differ_per_version() -> None:
    v16 = wire.set_charging_profile(
        OcppVersion.V16, evse_id=1, purpose=wire.Purpose.TX, limit_a=16, transaction_id="42"
    )
    assert v16 == {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 2001,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3}],
            },
            "transactionId": 42,
        },
    }
    v2 = wire.set_charging_profile(
        OcppVersion.V21, evse_id=1, purpose=wire.Purpose.TX, limit_a=16, transaction_id="tx-1"
    )
    assert v2["evseId"] == 1
    profile = v2["chargingProfile"]
    assert profile["transactionId"] == "tx-1"
    assert profile["chargingSchedule"][0]["id"] == 2001
    station_max = wire.set_charging_profile(
        OcppVersion.V16, evse_id=0, purpose=wire.Purpose.STATION_MAX, limit_a=50
    )
    assert station_max["csChargingProfiles"]["chargingProfilePurpose"] == "ChargePointMaxProfile"


def test_v16_limits_pass_multiple_of_point_one() -> None:
    for tenths in range(0, 1000):
        value = wire.wire_limit(tenths / 10, OcppVersion.V16)
        assert float(value / 0.1).is_integer()
        assert tenths / 10 - 0.5 < value <= tenths / 10


@pytest.mark.parametrize("version", VERSIONS)
def test_other_calls_are_valid(version: OcppVersion) -> None:
    assert_valid(version, "ClearChargingProfile", wire.clear_charging_profile(version, evse_id=1))
    assert_valid(
        version,
        "ClearChargingProfile",
        wire.clear_charging_profile(version, purpose=wire.Purpose.TX_DEFAULT),
    )
    assert_valid(
        version,
        "GetCompositeSchedule",
        wire.get_composite_schedule(version, evse_id=1, duration_s=600),
    )
    if version.is_2x:
        assert_valid(
            version, "GetChargingProfiles", wire.get_charging_profiles(version, request_id=7)
        )
    else:
        with pytest.raises(ValueError, match=r"1\.6"):
            wire.get_charging_profiles(version, request_id=7)


def test_reported_limit_in_watts_becomes_amps() -> None:
    schedule = {
        "id": 1,
        "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6900}],
    }
    assert wire.reported_limit_a([schedule], voltage_v=230, phases=3) == pytest.approx(10.0)
