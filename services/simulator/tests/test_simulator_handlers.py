"""Every CSMS-initiated CALL of every version gets a schema-valid answer."""

from importlib import resources
from typing import Any

import pytest
from simulator_harness import Harness

from csms_ocpp import OcppVersion
from csms_ocpp.actions import STATION_INITIATED
from csms_ocpp.schemas import validate
from csms_simulator.handlers.rejection import minimal_payload


def csms_initiated(version: OcppVersion) -> list[str]:
    package = f"ocpp.v{version.number.replace('.', '')}.schemas"
    names = [entry.name for entry in resources.files(package).iterdir()]
    if version.is_2x:
        actions = [
            name.removesuffix("Request.json") for name in names if name.endswith("Request.json")
        ]
    else:
        actions = [name.removesuffix(".json") for name in names if "Response" not in name]
    return [*sorted(a for a in actions if a not in STATION_INITIATED[version]), "DataTransfer"]


CASES = [(version, action) for version in OcppVersion for action in csms_initiated(version)]


@pytest.mark.parametrize(("version", "action"), CASES, ids=[f"{v.number}-{a}" for v, a in CASES])
def test_minimal_request_gets_a_valid_answer(version: OcppVersion, action: str) -> None:
    harness = Harness(version)
    harness.connect()
    request = minimal_payload(version, action, response=False)
    assert validate(version, action, request) is None, request
    reply = harness.call(action, request)
    assert reply[0] == 3, reply
    assert validate(version, action, reply[2], response=True) is None, reply
    harness.run(3600)  # whatever the call set off (reports, firmware, reboot) stays valid
    assert harness.stats.invalid_outgoing == 0
    assert harness.stats.errors.get(f"handler:{action}") is None


def test_unknown_action_is_not_implemented_and_bad_payload_is_a_violation() -> None:
    harness = Harness(OcppVersion.V201)
    harness.connect()
    assert harness.call("Frobnicate", {})[2] == "NotImplemented"
    assert harness.call("Reset", {"type": "Sideways"})[2] == "PropertyConstraintViolation"
    harness16 = Harness(OcppVersion.V16)
    harness16.connect()
    assert harness16.call("Reset", {})[2] == "OccurenceConstraintViolation"


def test_v16_configuration_round_trip_changes_heartbeat() -> None:
    harness = Harness(OcppVersion.V16)
    harness.connect()
    assert harness.call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "10"})[2] == {
        "status": "Accepted"
    }
    assert (
        harness.call("ChangeConfiguration", {"key": "NumberOfConnectors", "value": "3"})[2][
            "status"
        ]
        == "Rejected"
    )
    answer = harness.call("GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]})[2]
    assert answer == {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "10"}],
        "unknownKey": ["Nope"],
    }
    harness.run(35)
    assert harness.actions().count("Heartbeat") == 3


def test_v2_remote_start_then_stop_runs_a_transaction() -> None:
    harness = Harness(OcppVersion.V21, arrival_mean_s=1e9)
    harness.connect()
    answer = harness.call(
        "RequestStartTransaction",
        {"idToken": {"idToken": "TAG1", "type": "ISO14443"}, "remoteStartId": 42},
    )[2]
    assert answer["status"] == "Accepted"
    harness.run(125)
    events = harness.of("TransactionEvent")
    assert events[0]["eventType"] == "Started"
    assert events[0]["transactionInfo"] == {
        "transactionId": answer["transactionId"],
        "chargingState": "Charging",
        "remoteStartId": 42,
    }
    stop = harness.call("RequestStopTransaction", {"transactionId": answer["transactionId"]})
    assert stop[2] == {"status": "Accepted"}
    harness.run(1)
    ended = harness.of("TransactionEvent")[-1]
    assert ended["eventType"] == "Ended"
    assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    assert [event["seqNo"] for event in harness.of("TransactionEvent")] == list(
        range(len(harness.of("TransactionEvent")))
    )


@pytest.mark.parametrize("version", list(OcppVersion))
def test_trigger_message_sends_the_triggered_message(version: OcppVersion) -> None:
    harness = Harness(version)
    harness.connect()
    before = harness.actions().count("Heartbeat")
    assert harness.call("TriggerMessage", {"requestedMessage": "Heartbeat"})[2] == {
        "status": "Accepted"
    }
    harness.run(0)
    assert harness.actions().count("Heartbeat") == before + 1


def test_get_base_report_is_followed_by_notify_report() -> None:
    harness = Harness(OcppVersion.V201)
    harness.connect()
    reply = harness.call("GetBaseReport", {"requestId": 9, "reportBase": "FullInventory"})
    assert reply[2] == {"status": "Accepted"}
    harness.run(0)
    reports: list[dict[str, Any]] = harness.of("NotifyReport")
    assert [report["seqNo"] for report in reports] == list(range(len(reports)))
    assert reports[-1]["tbc"] is False
    names = {entry["variable"]["name"] for report in reports for entry in report["reportData"]}
    assert "HeartbeatInterval" in names


def test_a_pending_boot_retries_after_the_csms_interval_in_real_time() -> None:
    pending = {"status": "Pending", "currentTime": "2025-01-01T00:00:00.000Z", "interval": 30}

    def answer(version: OcppVersion, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        return pending if action == "BootNotification" else {}

    harness = Harness(OcppVersion.V201, speed=20.0, arrival_mean_s=1e9)
    harness.answer = answer
    harness.connect()
    assert harness.actions().count("BootNotification") == 1
    # 30 s of the CSMS's time are 600 simulated seconds at 20x: not 30.
    harness.run(599)
    assert harness.actions().count("BootNotification") == 1
    harness.run(2)
    assert harness.actions().count("BootNotification") == 2
    # Without an interval the simulator's own retry, in simulated seconds: the second
    # answer (t=600) still said 30, so the third boot comes at t=1200, the fourth 30 s on.
    pending["interval"] = 0
    harness.run(601)
    assert harness.actions().count("BootNotification") == 3
    harness.run(27)
    assert harness.actions().count("BootNotification") == 3
    harness.run(2)
    assert harness.actions().count("BootNotification") == 4


def test_monitors_are_set_reported_cleared_and_customer_data_reported() -> None:
    """Block N: what the CSMS's monitoring and customer information routes need."""
    harness = Harness(OcppVersion.V201)
    harness.connect()
    power = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}
    monitor = power | {"type": "UpperThreshold", "value": 22000, "severity": 4}

    set_reply = harness.call("SetVariableMonitoring", {"setMonitoringData": [monitor]})
    report = harness.call("GetMonitoringReport", {"requestId": 3})
    harness.run(0)
    periodic = harness.call(
        "GetMonitoringReport", {"requestId": 4, "monitoringCriteria": ["PeriodicMonitoring"]}
    )
    cleared = harness.call("ClearVariableMonitoring", {"id": [1, 2]})
    level = harness.call("SetMonitoringLevel", {"severity": 10})
    customer = harness.call(
        "CustomerInformation",
        {"requestId": 5, "report": True, "clear": False, "customerIdentifier": "c"},
    )
    harness.run(0)

    assert set_reply[2]["setMonitoringResult"] == [
        {"type": "UpperThreshold", "severity": 4, "status": "Accepted", "id": 1} | power
    ]
    assert report[2] == {"status": "Accepted"}
    (notified,) = harness.of("NotifyMonitoringReport")
    assert notified["monitor"][0]["variableMonitoring"] == [
        {"id": 1, "transaction": False, "value": 22000, "type": "UpperThreshold", "severity": 4}
    ]
    assert periodic[2] == {"status": "EmptyResultSet"}
    assert cleared[2]["clearMonitoringResult"] == [
        {"id": 1, "status": "Accepted"},
        {"id": 2, "status": "NotFound"},
    ]
    assert level[2] == {"status": "Rejected"}
    assert customer[2] == {"status": "Accepted"}
    assert [p["requestId"] for p in harness.of("NotifyCustomerInformation")] == [5]
    assert harness.stats.invalid_outgoing == 0
