"""Firmware and log flows, and the offline queue replayed after a reconnect."""

from datetime import timedelta

import pytest
from simulator_harness import Harness

from csms_ocpp import OcppVersion
from csms_simulator.clock import ocpp_time


def test_v201_firmware_update_reports_each_step_then_reboots() -> None:
    harness = Harness(OcppVersion.V201, arrival_mean_s=1e9)
    harness.connect()
    retrieve = ocpp_time(harness.clock.wall() + timedelta(seconds=10))
    reply = harness.call(
        "UpdateFirmware",
        {
            "requestId": 5,
            "firmware": {"location": "https://fw.example/1.1", "retrieveDateTime": retrieve},
        },
    )
    assert reply[2] == {"status": "Accepted"}
    harness.run(120)
    assert harness.of("FirmwareStatusNotification") == [
        {"status": status, "requestId": 5}
        for status in ("Downloading", "Downloaded", "Installing", "Installed")
    ]
    request = harness.station.disconnect_request
    assert request is not None and request.reason == "reboot"
    harness.disconnect()
    harness.connect()
    assert harness.of("BootNotification")[-1]["reason"] == "FirmwareUpdate"


def test_v16_firmware_and_diagnostics_status_sequences() -> None:
    harness = Harness(OcppVersion.V16, arrival_mean_s=1e9)
    harness.connect()
    now = ocpp_time(harness.clock.wall())
    assert harness.call("UpdateFirmware", {"location": "ftp://fw/x", "retrieveDate": now})[2] == {}
    assert harness.call("GetDiagnostics", {"location": "ftp://logs/"})[2]["fileName"]
    harness.run(120)
    assert [p["status"] for p in harness.of("FirmwareStatusNotification")] == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    assert harness.of("DiagnosticsStatusNotification") == [
        {"status": "Uploading"},
        {"status": "Uploaded"},
    ]


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V21])
def test_v2_transaction_events_queued_offline_are_replayed_in_order(version: OcppVersion) -> None:
    harness = Harness(version, arrival_mean_s=1.0, meter_interval_s=60.0)
    harness.connect()
    harness.run(130)  # a session starts, a couple of periodic updates
    online_events = len(harness.of("TransactionEvent"))
    assert online_events >= 2
    harness.disconnect()
    harness.run(300)  # charging goes on offline: ~5 updates wait in the queue
    assert harness.station.protocol.queued("TransactionEvent") >= 4
    harness.connect()
    actions = harness.actions()
    boot_at = len(actions) - 1 - actions[::-1].index("BootNotification")
    replayed = [s.payload for s in harness.sent[boot_at:] if s.action == "TransactionEvent"]
    assert len(replayed) >= 4
    assert all(event["offline"] is True for event in replayed)
    events = harness.of("TransactionEvent")
    assert [event["seqNo"] for event in events] == list(range(len(events)))  # in order, no gap
    stamps = [event["timestamp"] for event in events]
    assert stamps == sorted(stamps)
    assert harness.stats.replayed == len(replayed)
    assert harness.stats.invalid_outgoing == 0


def test_v16_offline_session_is_replayed_with_the_transaction_id_from_the_csms() -> None:
    harness = Harness(OcppVersion.V16, arrival_mean_s=1e9, meter_interval_s=60.0)
    harness.connect()
    harness.disconnect()
    evse = harness.station.charging.evses[1]
    harness.station.charging.plug_in(evse, "TAG9")  # offline: authorized locally
    harness.run(200)
    harness.station.charging.stop(evse, "EVDisconnected")
    harness.connect()
    tx_actions = [
        s
        for s in harness.sent
        if s.action in ("StartTransaction", "MeterValues", "StopTransaction")
    ]
    assert [s.action for s in tx_actions] == (
        ["StartTransaction"] + ["MeterValues"] * 3 + ["StopTransaction"]
    )
    assert harness.actions().index("BootNotification") < harness.actions().index("StartTransaction")
    ids = {s.payload["transactionId"] for s in tx_actions[1:]}
    assert len(ids) == 1 and ids != {0}  # the id the CSMS gave to the replayed start
    meters = [s.payload["meterStart"] for s in tx_actions[:1]] + [
        tx_actions[-1].payload["meterStop"]
    ]
    assert meters[1] > meters[0]


def test_log_upload_carries_the_request_id() -> None:
    harness = Harness(OcppVersion.V21, arrival_mean_s=1e9)
    harness.connect()
    reply = harness.call(
        "GetLog",
        {"logType": "DiagnosticsLog", "requestId": 3, "log": {"remoteLocation": "https://l/"}},
    )
    assert reply[2]["status"] == "Accepted"
    harness.run(60)
    assert harness.of("LogStatusNotification") == [
        {"status": "Uploading", "requestId": 3},
        {"status": "Uploaded", "requestId": 3},
    ]


@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201])
def test_after_an_install_the_station_boots_reporting_the_new_version(
    version: OcppVersion,
) -> None:
    harness = Harness(version, arrival_mean_s=1e9, updated_firmware_version="2.0.0")
    harness.connect()
    now = ocpp_time(harness.clock.wall())
    payload = (
        {"requestId": 7, "firmware": {"location": "http://fw/x", "retrieveDateTime": now}}
        if version.is_2x
        else {"location": "http://fw/x", "retrieveDate": now}
    )
    harness.call("UpdateFirmware", payload)
    harness.run(120)
    harness.disconnect()
    harness.connect()
    boot = harness.of("BootNotification")[-1]
    reported = (
        boot["chargingStation"]["firmwareVersion"] if version.is_2x else boot["firmwareVersion"]
    )
    assert reported == "2.0.0"


def test_a_broken_station_fails_every_install_and_keeps_its_version() -> None:
    harness = Harness(OcppVersion.V201, arrival_mean_s=1e9, install_failure_rate=1.0)
    harness.connect()
    now = ocpp_time(harness.clock.wall())
    for request_id in (1, 2):
        firmware = {"location": "http://fw/x", "retrieveDateTime": now}
        harness.call("UpdateFirmware", {"requestId": request_id, "firmware": firmware})
        harness.run(120)
    statuses = [p["status"] for p in harness.of("FirmwareStatusNotification")]
    assert statuses == ["Downloading", "Downloaded", "Installing", "InstallationFailed"] * 2
    assert harness.station.disconnect_request is None  # no reboot
    assert harness.station.firmware_version == "1.0.0"


def test_the_fleet_has_exactly_the_configured_share_of_broken_stations() -> None:
    from csms_simulator.clock import ScaledClock
    from csms_simulator.config import SimulationConfig
    from csms_simulator.fleet import build_stations
    from csms_simulator.stats import FleetStats

    config = SimulationConfig(count=1000, install_failure_rate=0.02, seed=3)
    stations = build_stations(config, ScaledClock(1.0), FleetStats())
    assert sum(station.install_broken for station in stations) == 20
    again = build_stations(config, ScaledClock(1.0), FleetStats())
    assert [s.install_broken for s in again] == [s.install_broken for s in stations]
