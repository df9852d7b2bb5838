"""The payloads of smart charging calls, per OCPP version (checked against the official schemas).

- 1.6 SetChargingProfile: ``connectorId`` + ``csChargingProfiles`` with one
  ``chargingSchedule`` object (§5.16, §7.8); ``limit`` is a multipleOf 0.1.
- 2.0.1 / 2.1 SetChargingProfile: ``evseId`` + ``chargingProfile`` with a list of
  1-3 ``chargingSchedule`` objects, each with an ``id`` (2.0.1 Part 2 K01);
  ``transactionId`` is a string there, an integer in 1.6.
Our profiles have fixed ids per EVSE and purpose, so a new limit replaces the old one
(1.6 §3.13.2, K01.FR.05) instead of piling up on the station.
"""

import math
from enum import StrEnum
from typing import Any

from csms_ocpp import OcppVersion
from csms_ocpp.actions import now_iso

JsonObject = dict[str, Any]

STACK_LEVEL = 1
# Profile ids: one per (purpose, EVSE), so re-sending replaces.
_ID_BASE = {"TxDefaultProfile": 1000, "TxProfile": 2000, "ChargingStationMaxProfile": 3000}


class Purpose(StrEnum):
    TX = "TxProfile"
    TX_DEFAULT = "TxDefaultProfile"
    STATION_MAX = "ChargingStationMaxProfile"  # 1.6: ChargePointMaxProfile

    def wire(self, version: OcppVersion) -> str:
        if self is Purpose.STATION_MAX and not version.is_2x:
            return "ChargePointMaxProfile"
        return self.value


def profile_id(purpose: Purpose, evse_id: int) -> int:
    return _ID_BASE[purpose.value] + evse_id


def wire_limit(limit_a: float, version: OcppVersion) -> float:
    """The limit as sent: one decimal, rounded down; 1.6 needs a float that passes multipleOf 0.1.

    (16.3 / 0.1 is 162.99999999999997 in binary floating point, which a strict
    JSON-schema validator rejects; a multiple of 0.5 always passes.)
    """
    tenths = math.floor(max(0.0, limit_a) * 10 + 1e-6)
    value = tenths / 10
    while not version.is_2x and tenths > 0 and not float(value / 0.1).is_integer():
        tenths -= 1
        value = tenths / 10
    return value


def _period(limit_a: float, phases: int, version: OcppVersion) -> JsonObject:
    return {"startPeriod": 0, "limit": wire_limit(limit_a, version), "numberPhases": phases}


def set_charging_profile(
    version: OcppVersion,
    *,
    evse_id: int,
    purpose: Purpose,
    limit_a: float,
    phases: int = 3,
    transaction_id: str | None = None,
) -> JsonObject:
    """SetChargingProfile for one EVSE (0: the whole station), a constant limit in A."""
    period = _period(limit_a, phases, version)
    identifier = profile_id(purpose, evse_id)
    # Relative: the constant limit runs from the transaction's start (K01.FR.40 wants a
    # startSchedule for Absolute; a station max profile may not be Relative, K01.FR.38).
    kind = "Absolute" if purpose is Purpose.STATION_MAX else "Relative"
    schedule: JsonObject = {"chargingRateUnit": "A", "chargingSchedulePeriod": [period]}
    if kind == "Absolute":
        schedule = {"startSchedule": now_iso(), **schedule}
    if not version.is_2x:
        profile: JsonObject = {
            "chargingProfileId": identifier,
            "stackLevel": STACK_LEVEL,
            "chargingProfilePurpose": purpose.wire(version),
            "chargingProfileKind": kind,
            "chargingSchedule": schedule,
        }
        if purpose is Purpose.TX and transaction_id is not None and transaction_id.isdigit():
            profile["transactionId"] = int(transaction_id)
        return {"connectorId": evse_id, "csChargingProfiles": profile}
    profile = {
        "id": identifier,
        "stackLevel": STACK_LEVEL,
        "chargingProfilePurpose": purpose.wire(version),
        "chargingProfileKind": kind,
        "chargingSchedule": [{"id": identifier, **schedule}],
    }
    if purpose is Purpose.TX and transaction_id is not None:
        profile["transactionId"] = transaction_id[:36]
    return {"evseId": evse_id, "chargingProfile": profile}


def clear_charging_profile(
    version: OcppVersion, *, evse_id: int | None = None, purpose: Purpose | None = None
) -> JsonObject:
    """ClearChargingProfile of our profiles on an EVSE (or everywhere), optionally one purpose."""
    if not version.is_2x:
        payload: JsonObject = {"stackLevel": STACK_LEVEL}
        if evse_id is not None:
            payload["connectorId"] = evse_id
        if purpose is not None:
            payload["chargingProfilePurpose"] = purpose.wire(version)
        return payload
    criteria: JsonObject = {"stackLevel": STACK_LEVEL}
    if evse_id is not None:
        criteria["evseId"] = evse_id
    if purpose is not None:
        criteria["chargingProfilePurpose"] = purpose.wire(version)
    return {"chargingProfileCriteria": criteria}


def get_composite_schedule(version: OcppVersion, *, evse_id: int, duration_s: int) -> JsonObject:
    """GetCompositeSchedule in A: what the station will actually apply."""
    key = "evseId" if version.is_2x else "connectorId"
    return {key: evse_id, "duration": duration_s, "chargingRateUnit": "A"}


def get_charging_profiles(
    version: OcppVersion, *, request_id: int, evse_id: int | None = None
) -> JsonObject:
    """2.x GetChargingProfiles (the station answers with ReportChargingProfiles calls)."""
    if not version.is_2x:
        raise ValueError("GetChargingProfiles does not exist in OCPP 1.6")
    # Every source: ours (CSO) and the external constraints an EMS or the grid operator set.
    payload: JsonObject = {
        "requestId": request_id,
        "chargingProfile": {"chargingLimitSource": ["EMS", "Other", "SO", "CSO"]},
    }
    if evse_id is not None:
        payload["evseId"] = evse_id
    return payload


def reported_limit_a(schedules: list[JsonObject], *, voltage_v: float, phases: int) -> float | None:
    """The limit in A at the start of a station-reported schedule (NotifyChargingLimit)."""
    for schedule in schedules:
        periods = sorted(schedule.get("chargingSchedulePeriod", []), key=lambda p: p["startPeriod"])
        if not periods or "limit" not in periods[0]:
            continue
        limit = float(periods[0]["limit"])
        period_phases = int(periods[0].get("numberPhases", phases))
        if schedule.get("chargingRateUnit") == "W":
            return limit / (voltage_v * max(1, period_phases))
        return limit
    return None
