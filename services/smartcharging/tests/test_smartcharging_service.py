"""The service end to end on the embedded bus: events in, profiles out, events published."""

from typing import Any

import httpx
import pytest

from csms_core.router import StationCommand
from csms_ocpp import OcppVersion, schemas
from csms_ocpp.actions import now_iso
from tests.kits.smartcharging import Harness, eventually


async def make_site(
    harness: Harness, api: httpx.AsyncClient, limit_a: float, *stations: str
) -> None:
    response = await api.put("/sites/depot", json={"limit_a": limit_a})
    assert response.status_code == 201, response.text
    for station_id in stations:
        body = {"evses": [{"evse_id": 1, "max_a": 32}, {"evse_id": 2, "max_a": 32}]}
        response = await api.put(f"/sites/depot/stations/{station_id}", json=body)
        assert response.status_code == 201, response.text
    await harness.service.allocator.drain()  # assigned while offline: nothing to send yet


def limit_of(command: StationCommand) -> float:
    payload = command.payload
    if "csChargingProfiles" in payload:
        schedule = payload["csChargingProfiles"]["chargingSchedule"]
    else:
        schedule = payload["chargingProfile"]["chargingSchedule"][0]
    limit: float = schedule["chargingSchedulePeriod"][0]["limit"]
    return limit


def latest(harness: Harness, station_id: str, evse_id: int) -> float:
    return [
        limit_of(c)
        for c in harness.stations.sent(station_id)
        if "TxProfile" in str(c.payload)
        and evse_id in (c.payload.get("evseId"), c.payload.get("connectorId"))
    ][-1]


def tx_limits(harness: Harness, station_id: str) -> list[float]:
    return [limit_of(c) for c in harness.stations.sent(station_id) if "TxProfile" in str(c.payload)]


async def test_sessions_share_the_site_limit_fairly(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    await make_site(harness, api, 40, "A", "B")
    await harness.connect("A", OcppVersion.V16)
    await harness.connect("B", OcppVersion.V201)
    await harness.settle()
    await harness.start_session("A", 1, "s1", transaction_id="11")
    await harness.settle()
    assert tx_limits(harness, "A") == [32.0]

    await harness.start_session("B", 1, "s2")
    await harness.settle()
    assert tx_limits(harness, "A") == [32.0, 20.0]
    assert tx_limits(harness, "B") == [20.0]
    for command in harness.stations.sent():
        version = harness.versions[command.station_id]
        assert schemas.validate(version, command.action, command.payload) is None
    v16 = harness.stations.sent("A")[-1].payload["csChargingProfiles"]
    assert v16["transactionId"] == 11
    v2 = harness.stations.sent("B")[-1].payload["chargingProfile"]
    assert v2["transactionId"] == "tx-s2"

    await harness.end_session("B", 1, "s2")
    await harness.settle()
    assert tx_limits(harness, "A")[-1] == 32.0

    events = [e.data for e in harness.limit_events()]
    assert {e["reason"] for e in events} >= {"session_started", "session_ended"}
    assert events[-1] | {"valid_from": None} == {
        "site_id": "depot",
        "station_id": "A",
        "evse_id": 1,
        "session_id": "s1",
        "limit_a": 32.0,
        "limit_w": 22080.0,
        "phases": 3,
        "reason": "session_ended",
        "valid_from": None,
        "outcome": "Accepted",
    }


async def test_only_changed_limits_are_sent(harness: Harness, api: httpx.AsyncClient) -> None:
    await make_site(harness, api, 40, "A")
    await harness.connect("A")
    await harness.start_session("A", 1, "s1")
    await harness.settle()
    before = len(harness.stations.commands)
    for _ in range(5):
        harness.service.allocator.mark_dirty("depot", "tick")
        await harness.settle()
    assert len(harness.stations.commands) == before


async def test_a_small_decrease_is_sent_a_small_increase_is_not(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    """Below the resend threshold (0.5 A) a lower limit still goes: 20 EVs held 0.1 A too
    high hold their site 2 A over its limit."""
    await make_site(harness, api, 40, "A", "B")
    await harness.connect("A")
    await harness.connect("B")
    await harness.start_session("A", 1, "s1")
    await harness.settle()
    await harness.start_session("B", 1, "s2")
    await harness.settle()
    assert (tx_limits(harness, "A"), tx_limits(harness, "B")) == ([32.0, 20.0], [20.0])

    response = await api.post("/sites/depot/limit-override", json={"limit_a": 39.8})
    assert response.status_code == 200, response.text
    await harness.settle()
    assert tx_limits(harness, "A") == [32.0, 20.0, 19.9]
    assert tx_limits(harness, "B") == [20.0, 19.9]

    assert (await api.delete("/sites/depot/limit-override")).status_code == 204
    await harness.settle()  # 20.0 again is only 0.1 A more: not worth a profile
    assert tx_limits(harness, "A") == [32.0, 20.0, 19.9]
    assert tx_limits(harness, "B") == [20.0, 19.9]


async def test_failsafe_on_connect_and_profiles_again_on_reconnect(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    await make_site(harness, api, 40, "A", "B")
    await harness.connect("A", OcppVersion.V21)
    await harness.start_session("A", 1, "s1")
    await harness.settle()
    # The connection and the session arrive on different topics: either may be handled first.
    defaults = [
        call
        for call in harness.stations.sent("A")
        if call.payload["chargingProfile"]["chargingProfilePurpose"] == "TxDefaultProfile"
    ]
    assert len(defaults) == 1
    assert defaults[0].payload["evseId"] == 0
    assert limit_of(defaults[0]) == 10.0  # 40 A over 4 EVSEs
    assert tx_limits(harness, "A") == [32.0]

    await harness.connect("A", OcppVersion.V21)  # reconnect
    await harness.settle()
    assert tx_limits(harness, "A") == [32.0, 32.0]


async def test_a_rejected_profile_is_reported_and_counted_at_max(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    await make_site(harness, api, 40, "A", "B")
    harness.stations.behaviour["A"] = "Rejected"
    await harness.connect("A")
    await harness.connect("B")
    await harness.start_session("A", 1, "s1")
    await harness.settle()
    outcomes = [e.data["outcome"] for e in harness.limit_events()]
    assert outcomes == ["Rejected"]
    limits = (await api.get("/stations/A/charging-limits")).json()
    assert limits[0]["outcome"] == "Rejected"
    assert not limits[0]["accepted"]

    await harness.start_session("B", 1, "s2")
    await harness.settle()
    # A counts at its 32 A rating: B gets what is left, 8 A.
    assert tx_limits(harness, "B") == [8.0]
    allocation = (await api.get("/sites/depot/allocation")).json()
    fixed = {s["session_id"]: s["fixed"] for s in allocation["sessions"]}
    assert fixed == {"s1": True, "s2": False}


async def test_a_station_that_errors_or_stays_silent_is_handled(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    await make_site(harness, api, 40, "A", "B")
    harness.stations.behaviour.update({"A": "error", "B": "silent"})
    await harness.connect("A")
    await harness.connect("B")
    await harness.start_session("A", 1, "s1")
    await harness.start_session("B", 1, "s2")
    await harness.settle()
    outcomes = {e.data["station_id"]: e.data["outcome"] for e in harness.limit_events()}
    assert outcomes == {"A": "error", "B": "timeout"}


async def test_limit_drop_through_rest_is_sent_at_once(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    await make_site(harness, api, 64, "A")
    await harness.connect("A")
    await harness.start_session("A", 1, "s1")
    await harness.start_session("A", 2, "s2")
    await harness.settle()
    assert (latest(harness, "A", 1), latest(harness, "A", 2)) == (32.0, 32.0)
    response = await api.post("/sites/depot/limit-override", json={"limit_a": 20})
    assert response.status_code == 200, response.text

    async def lowered() -> bool:
        return (latest(harness, "A", 1), latest(harness, "A", 2)) == (10.0, 10.0)

    await eventually(lowered)  # the allocation loop reacts without a tick

    async def reported() -> list[str]:
        return [e.data["reason"] for e in harness.limit_events() if e.data["limit_a"] == 10.0]

    assert await eventually(reported) == ["limit_changed", "limit_changed"]
    allocation = (await api.get("/sites/depot/allocation")).json()
    assert allocation["site"]["limit_a"] == [20.0, 20.0, 20.0]
    assert allocation["site"]["allocated_a"] == [20.0, 20.0, 20.0]
    load = (await api.get("/sites/depot/load")).json()
    assert load[-1]["limit_a"] == [20.0, 20.0, 20.0]


async def test_schedule_boundary_lowers_the_limit(harness: Harness, api: httpx.AsyncClient) -> None:
    await make_site(harness, api, 64, "A")
    body = {"start": "00:00", "end": "23:59", "limit_a": 16}
    response = await api.post("/sites/depot/schedules", json=body)
    assert response.status_code == 201, response.text
    await harness.connect("A")
    await harness.start_session("A", 1, "s1")
    await harness.settle()
    assert tx_limits(harness, "A") == [16.0]


async def test_underuse_is_redistributed_and_can_ramp_back(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    harness.service.settings.underuse_after_s = 0.0
    await make_site(harness, api, 40, "A")
    await harness.connect("A")
    await harness.start_session("A", 1, "slow")
    await harness.start_session("A", 2, "fast")
    await harness.settle()
    assert (latest(harness, "A", 1), latest(harness, "A", 2)) == (20.0, 20.0)
    await harness.update_session("A", 1, "slow", current_a=5.0, energy_wh=10)
    await harness.settle()  # noticed: underuse starts now
    harness.service.allocator.mark_dirty("depot", "tick")
    await harness.settle()  # reallocated: slow capped at 5 + 2 A headroom
    assert (latest(harness, "A", 1), latest(harness, "A", 2)) == (7.0, 32.0)

    # It ramps back up to what it was given: it gets its fair share again.
    await harness.update_session("A", 1, "slow", current_a=6.9, energy_wh=10)
    await harness.settle()
    assert (latest(harness, "A", 1), latest(harness, "A", 2)) == (20.0, 20.0)
    assert harness.limit_events()[-1].data["reason"] == "ramp_up"


async def test_ev_charging_needs_are_answered_and_used(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    await make_site(harness, api, 40, "A")
    await harness.connect("A", OcppVersion.V201)
    await harness.start_session("A", 1, "s1")
    await harness.settle()
    needs = {
        "evseId": 1,
        "chargingNeeds": {
            "requestedEnergyTransfer": "AC_three_phase",
            "acChargingParameters": {
                "energyAmount": 20000,
                "evMinCurrent": 8,
                "evMaxCurrent": 16,
                "evMaxVoltage": 400,
            },
        },
    }
    event = await harness.call("A", "NotifyEVChargingNeeds", needs)
    await harness.settle()
    answer = await eventually(lambda: _answer_to(harness, event.data.message_id))
    assert answer == {"status": "Accepted"}
    assert tx_limits(harness, "A")[-1] == 16.0  # the EV's own maximum

    unknown = await harness.call("A", "NotifyEVChargingNeeds", needs | {"evseId": 2})
    assert await eventually(lambda: _answer_to(harness, unknown.data.message_id)) == {
        "status": "Rejected"
    }


async def _answer_to(harness: Harness, message_id: str) -> dict[str, Any] | None:
    for answer in harness.stations.answers:
        if answer.message_id == message_id:
            return answer.payload
    return None


async def test_station_reported_limit_caps_it_until_cleared(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    await make_site(harness, api, 64, "A")
    await harness.connect("A", OcppVersion.V201)
    await harness.start_session("A", 1, "s1")
    await harness.settle()
    await harness.call(
        "A",
        "NotifyChargingLimit",
        {
            "evseId": 1,
            "chargingLimit": {"chargingLimitSource": "EMS"},
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 12}],
                }
            ],
        },
    )
    await harness.settle()
    assert tx_limits(harness, "A") == [32.0, 12.0]
    await harness.call("A", "ClearedChargingLimit", {"chargingLimitSource": "EMS", "evseId": 1})
    await harness.settle()
    assert tx_limits(harness, "A") == [32.0, 12.0, 32.0]


async def test_reported_profiles_are_recorded(harness: Harness, api: httpx.AsyncClient) -> None:
    profile = {
        "id": 2001,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": [
            {
                "id": 1,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}],
            }
        ],
    }
    await harness.call(
        "A",
        "ReportChargingProfiles",
        {"requestId": 1, "chargingLimitSource": "CSO", "evseId": 1, "chargingProfile": [profile]},
    )
    await harness.settle()
    reports = (await api.get("/stations/A/charging-profiles")).json()
    assert reports[0]["profiles"] == [profile]


async def test_external_constraints_in_a_profile_report_cap_the_evse(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    """A ChargingStationExternalConstraints profile (set by an EMS, never by the CSMS,
    K01.FR.22) that a station reports caps its EVSE until the station clears the limit."""
    await make_site(harness, api, 64, "A")
    await harness.connect("A", OcppVersion.V201)
    await harness.start_session("A", 1, "s1")
    await harness.settle()
    external = {
        "id": 77,
        "stackLevel": 0,
        "chargingProfilePurpose": "ChargingStationExternalConstraints",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": 1,
                "startSchedule": "2026-01-01T00:00:00Z",
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11040, "numberPhases": 3}],
            }
        ],
    }
    report = {"requestId": 5, "chargingLimitSource": "EMS", "evseId": 1}
    assert (
        schemas.validate(
            OcppVersion.V201, "ReportChargingProfiles", report | {"chargingProfile": [external]}
        )
        is None
    )
    await harness.call("A", "ReportChargingProfiles", report | {"chargingProfile": [external]})
    await harness.settle()
    assert tx_limits(harness, "A") == [32.0, 16.0]  # 11,040 W over 3 x 230 V
    await harness.call("A", "ClearedChargingLimit", {"chargingLimitSource": "EMS", "evseId": 1})
    await harness.settle()
    assert tx_limits(harness, "A") == [32.0, 16.0, 32.0]


@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201])
async def test_a_transaction_seen_starting_counts_at_its_maximum_until_its_session_comes(
    harness: Harness, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    """The station's own start (ocpp.inbound) comes before the sessions service's
    session.started: the EV may already draw its EVSE's maximum, so the others make room."""
    await make_site(harness, api, 40, "A", "B")
    await harness.connect("A", OcppVersion.V201)
    await harness.connect("B", version)
    await harness.start_session("A", 1, "s1")
    await harness.settle()
    assert tx_limits(harness, "A") == [32.0]

    if version is OcppVersion.V16:
        start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": now_iso()}
        await harness.call("B", "StartTransaction", start)
    else:
        started = {
            "eventType": "Started",
            "timestamp": now_iso(),
            "triggerReason": "CablePluggedIn",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "tx-s2"},
            "evse": {"id": 1, "connectorId": 1},
        }
        assert schemas.validate(version, "TransactionEvent", started) is None
        await harness.call("B", "TransactionEvent", started)
    await harness.settle()
    assert tx_limits(harness, "A") == [32.0, 8.0]  # 40 A less B's 32 A
    assert tx_limits(harness, "B") == []  # no transaction of ours to address yet

    await harness.start_session("B", 1, "s2", transaction_id="12")
    await harness.settle()
    assert tx_limits(harness, "A") == [32.0, 8.0, 20.0]
    assert tx_limits(harness, "B") == [20.0]
    sessions = (await api.get("/sites/depot/allocation")).json()["sessions"]
    assert sorted(s["session_id"] for s in sessions) == ["s1", "s2"]  # the stand-in is gone


async def test_a_replayed_event_changes_nothing(harness: Harness, api: httpx.AsyncClient) -> None:
    await make_site(harness, api, 40, "A")
    await harness.connect("A")
    started = await harness.start_session("A", 1, "s1")
    await harness.settle()
    await harness.end_session("A", 1, "s1")
    await harness.settle()
    from csms_core.topics import SESSIONS

    await harness.bus.publish(SESSIONS, started)  # the same event again
    await harness.settle()
    allocation = (await api.get("/sites/depot/allocation")).json()
    assert allocation["sessions"] == []


async def test_composite_schedule_is_asked_in_the_station_version(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    await harness.connect("A", OcppVersion.V16)
    response = await api.get("/stations/A/composite-schedule", params={"evse_id": 1})
    assert response.status_code == 200, response.text
    assert response.json()["payload"] == {"status": "Accepted"}
    command = harness.stations.sent("A", "GetCompositeSchedule")[-1]
    assert command.payload == {"connectorId": 1, "duration": 3600, "chargingRateUnit": "A"}
    await harness.connect("B", OcppVersion.V21)
    response = await api.post("/stations/B/charging-profiles/report")
    assert response.status_code == 200, response.text
    request = harness.stations.sent("B", "GetChargingProfiles")[-1]
    assert schemas.validate(OcppVersion.V21, "GetChargingProfiles", request.payload) is None


async def test_a_raise_is_checked_again_against_a_session_started_meanwhile(
    harness: Harness, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session that starts between the plan and the raise draws its failsafe at once: the
    raise computed without it would take the site over its limit, so it is held back and
    the site planned again with the new session counted."""
    await make_site(harness, api, 40, "A", "B")
    await harness.connect("A")
    await harness.connect("B")
    await harness.start_session("A", 1, "s1")
    await harness.settle()
    await harness.start_session("B", 1, "s2")
    await harness.settle()
    assert (tx_limits(harness, "A"), tx_limits(harness, "B")) == ([32.0, 20.0], [20.0])

    allocator = harness.service.allocator
    plan_once = allocator.plan
    planned = 0

    async def a_session_starts_after_the_first_plan(site_id: str, at: Any = None) -> Any:
        nonlocal planned
        plan = await plan_once(site_id, at)
        planned += 1
        if planned == 1:  # s2 ended, s1 may have 32 A: then s3 starts on B's other EVSE
            await harness.start_session("B", 2, "s3")
            await eventually(harness.caught_up)
        return plan

    monkeypatch.setattr(allocator, "plan", a_session_starts_after_the_first_plan)
    await harness.end_session("B", 1, "s2")
    await eventually(harness.caught_up)
    await allocator.round()
    assert tx_limits(harness, "A") == [32.0, 20.0]  # the raise to 32 A never went out

    monkeypatch.undo()
    await harness.settle()
    assert latest(harness, "B", 2) == 20.0
    assert tx_limits(harness, "A") == [32.0, 20.0]  # 20 A each: the site's 40 A


async def test_a_batch_replayed_at_once_changes_nothing_and_answers_again(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    from sqlmodel import func, select

    from csms_core.topics import OCPP_INBOUND, SESSIONS
    from csms_smartcharging.charging.models import ProcessedEvent

    await make_site(harness, api, 40, "A", "B")
    await harness.connect("A", OcppVersion.V201)
    await harness.connect("B", OcppVersion.V201)
    await harness.settle()
    # Published before the consumer looks: one poll, applied in one transaction.
    started = [
        await harness.start_session("A", 1, "s1"),
        await harness.start_session("B", 1, "s2"),
    ]
    needs = await harness.call("A", "NotifyEVChargingNeeds", _NEEDS)
    await harness.settle()
    answer = await eventually(lambda: _answer_to(harness, needs.data.message_id))
    sent = len(harness.stations.sent())

    async def allocated() -> dict[str, Any]:
        body: dict[str, Any] = (await api.get("/sites/depot/allocation")).json()
        return {key: value for key, value in body.items() if key != "at"}  # when it was asked

    allocation = await allocated()
    assert len(allocation["sessions"]) == 2

    async def processed() -> int:
        async with harness.service.factory() as session:
            return (await session.exec(select(func.count()).select_from(ProcessedEvent))).one()

    stored = await processed()
    for event in started:  # the batch again (a replay after a crash), all at once
        await harness.bus.publish(SESSIONS, event)
    await harness.bus.publish(OCPP_INBOUND, needs)
    await harness.settle()

    answers = await eventually(lambda: _answers_to(harness, needs.data.message_id, 2))
    assert answers == [answer, answer]  # the decision is sent again: the same one
    assert await processed() == stored
    assert await allocated() == allocation
    assert len(harness.stations.sent()) == sent  # no profile sent again


_NEEDS = {
    "evseId": 1,
    "chargingNeeds": {
        "requestedEnergyTransfer": "AC_three_phase",
        "acChargingParameters": {
            "energyAmount": 20000,
            "evMinCurrent": 8,
            "evMaxCurrent": 16,
            "evMaxVoltage": 400,
        },
    },
}


async def _answers_to(harness: Harness, message_id: str, count: int) -> list[Any] | None:
    found = [a.payload for a in harness.stations.answers if a.message_id == message_id]
    return found if len(found) >= count else None
