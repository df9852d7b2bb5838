"""2.x monitoring (OCPP 2.0.1 block N, OCTT TC_N_*): monitoring reports in parts, setting and
clearing monitors, monitoring base and level, and the events monitors raise (NotifyEvent),
stored and served over REST and published on ``csms.station-status``."""

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from csms_core.db import transaction
from csms_core.router import StationCommand
from csms_ocpp import OcppVersion, schemas
from csms_sessions.monitoring.models import StationEvent
from csms_sessions.monitoring.service import prune_events
from tests.kits.sessions import Harness, assert_problem

STATION = "/api/v1/stations/CP-1"
API = f"{STATION}/monitoring"
NOW = "2026-11-25T10:00:00Z"
POWER = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}


async def exchange(
    sessions: Harness, reply: dict[str, Any], version: OcppVersion = OcppVersion.V201
) -> StationCommand:
    """Answer the next command as the station; both checked against the official schemas."""
    command = await sessions.command()
    assert schemas.validate(version, command.action, command.payload) is None
    assert schemas.validate(version, command.action, reply, response=True) is None
    await sessions.reply(command, reply)
    return command


async def connect(sessions: Harness, version: OcppVersion = OcppVersion.V201) -> None:
    await sessions.processed(await sessions.connect("CP-1", "conn-1", version))


def request(api: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    return asyncio.create_task(api.request(method, f"{API}{path}", **kwargs))


async def monitors(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get(API, params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    for item in items:
        item.pop("updated_at")
    return items


def monitoring_data(
    component: str, variable: str, *monitors: tuple[int, str, float, int], **evse: int
) -> dict[str, Any]:
    """A MonitoringDataType: (id, type, value, severity) per monitor."""
    data: dict[str, Any] = {
        "component": {"name": component} | ({"evse": evse} if evse else {}),
        "variable": {"name": variable},
        "variableMonitoring": [
            {"id": i, "transaction": False, "value": v, "type": t, "severity": s}
            for i, t, v, s in monitors
        ],
    }
    return data


async def notify_monitoring_report(
    sessions: Harness, request_id: int, seq_no: int, data: list[dict[str, Any]], *, tbc: bool
) -> None:
    payload = {
        "requestId": request_id,
        "seqNo": seq_no,
        "generatedAt": NOW,
        "tbc": tbc,
        "monitor": data,
    }
    assert schemas.validate(OcppVersion.V201, "NotifyMonitoringReport", payload) is None
    event = await sessions.call("CP-1", "NotifyMonitoringReport", payload, version=OcppVersion.V201)
    await sessions.processed(event)


async def ask_report(
    api: httpx.AsyncClient, sessions: Harness, body: dict[str, Any] | None, status: str
) -> tuple[StationCommand, dict[str, Any]]:
    response = request(api, "POST", "/report", json=body)
    command = await exchange(sessions, {"status": status})
    answer = await response
    assert answer.status_code == 200, answer.text
    assert answer.json()["request_id"] == command.payload["requestId"]
    return command, answer.json()


def monitor_out(
    monitor_id: int,
    component: str,
    variable: str,
    kind: str,
    value: float,
    severity: int,
    **more: Any,
) -> dict[str, Any]:
    return {
        "monitor_id": monitor_id,
        "component": component,
        "component_instance": None,
        "evse_id": None,
        "connector_id": None,
        "variable": variable,
        "variable_instance": None,
        "type": kind,
        "value": value,
        "severity": severity,
        "transaction": False,
        "event_notification_type": None,
    } | more


# Get Monitoring Report (N02) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        pytest.param(
            {"criteria": ["ThresholdMonitoring", "DeltaMonitoring"]},
            {"monitoringCriteria": ["ThresholdMonitoring", "DeltaMonitoring"]},
            id="tc_n_01_criteria",
        ),
        pytest.param(
            {"component_variables": [{"component": "EVSE", "evse_id": 1, "variable": "Power"}]},
            {"componentVariable": [POWER]},
            id="tc_n_02_component_variable",
        ),
        pytest.param(
            {
                "criteria": ["PeriodicMonitoring"],
                "component_variables": [
                    {"component": "EVSE", "evse_id": 1, "variable": "Power"},
                    {"component": "ChargingStation"},
                ],
            },
            {
                "monitoringCriteria": ["PeriodicMonitoring"],
                "componentVariable": [POWER, {"component": {"name": "ChargingStation"}}],
            },
            id="tc_n_03_tc_n_60_criteria_and_components",
        ),
    ],
)
async def test_tc_n_01_02_03_60_get_monitoring_report(
    api: httpx.AsyncClient, sessions: Harness, body: dict[str, Any], sent: dict[str, Any]
) -> None:
    await connect(sessions)

    command, answer = await ask_report(api, sessions, body, "Accepted")
    request_id = command.payload["requestId"]
    await notify_monitoring_report(
        sessions,
        request_id,
        0,
        [monitoring_data("EVSE", "Power", (7, "UpperThreshold", 22000, 4), id=1)],
        tbc=False,
    )

    assert (command.action, command.payload) == (
        "GetMonitoringReport",
        {"requestId": request_id, **sent},
    )
    assert answer["status"] == "Accepted"
    assert await monitors(api) == [
        monitor_out(7, "EVSE", "Power", "UpperThreshold", 22000, 4, evse_id=1)
    ]
    report = (await api.get(f"{API}/reports/{request_id}")).json()
    assert (report["action"], report["state"], report["seq_nos"]) == (
        "GetMonitoringReport",
        "complete",
        [0],
    )


async def test_tc_n_47_report_all_in_parts_replaces_what_was_stored(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)
    first, _ = await ask_report(api, sessions, {}, "Accepted")
    await notify_monitoring_report(
        sessions,
        first.payload["requestId"],
        0,
        [monitoring_data("EVSE", "Power", (1, "Delta", 100, 8), (2, "Periodic", 60, 9))],
        tbc=False,
    )

    command, _ = await ask_report(api, sessions, None, "Accepted")
    request_id = command.payload["requestId"]
    # Out of order and once twice; monitor 2 is gone from the station.
    part_1 = [monitoring_data("ChargingStation", "Problem", (0, "UpperThreshold", 0, 0))]
    part_0 = [monitoring_data("EVSE", "Power", (1, "Delta", 200, 7))]
    await notify_monitoring_report(sessions, request_id, 1, part_1, tbc=False)
    midway = (await api.get(f"{API}/reports/{request_id}")).json()
    await notify_monitoring_report(sessions, request_id, 0, part_0, tbc=True)
    await notify_monitoring_report(sessions, request_id, 0, part_0, tbc=True)

    assert command.payload == {"requestId": request_id}
    assert (midway["state"], midway["missing_seq_nos"]) == ("incomplete", [0])
    assert await monitors(api) == [
        monitor_out(0, "ChargingStation", "Problem", "UpperThreshold", 0, 0),
        monitor_out(1, "EVSE", "Power", "Delta", 200, 7),
    ]
    listed = (await api.get(f"{API}/reports")).json()
    assert [(r["request_id"], r["state"]) for r in listed["items"]] == [
        (request_id, "complete"),
        (first.payload["requestId"], "complete"),
    ]
    reported = [e.data for e in sessions.published("station.monitoring.reported")]
    assert reported[1:] == [
        {
            "request_id": request_id,
            "seq_no": seq_no,
            "tbc": tbc,
            "generated_at": NOW,
            "monitors": 1,
            "report_state": state,
            "missing_seq_nos": missing,
        }
        for seq_no, tbc, state, missing in (
            (1, False, "incomplete", [0]),
            (0, True, "complete", []),
            (0, True, "complete", []),
        )
    ]
    # Not among the device model's reports.
    assert (await api.get(f"{STATION}/configuration/reports")).json()["total"] == 0
    assert_problem(await api.get(f"{STATION}/configuration/reports/{request_id}"), 404)


async def test_a_report_of_all_that_is_empty_clears_the_stored_monitors(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)
    first, _ = await ask_report(api, sessions, None, "Accepted")
    data = [monitoring_data("EVSE", "Power", (1, "Delta", 100, 8))]
    await notify_monitoring_report(sessions, first.payload["requestId"], 0, data, tbc=False)

    _, filtered = await ask_report(
        api, sessions, {"criteria": ["PeriodicMonitoring"]}, "EmptyResultSet"
    )
    kept = await monitors(api)
    _, answer = await ask_report(api, sessions, None, "EmptyResultSet")

    assert filtered["status"] == answer["status"] == "EmptyResultSet"
    assert [m["monitor_id"] for m in kept] == [1]
    assert await monitors(api) == []


# Set Variable Monitoring (N04) ------------------------------------------------------------


async def test_tc_n_08_set_one_monitor(api: httpx.AsyncClient, sessions: Harness) -> None:
    await connect(sessions)
    body = {
        "monitors": [
            {
                "component": "EVSE",
                "evse_id": 1,
                "variable": "Power",
                "type": "UpperThreshold",
                "value": 22000,
                "severity": 4,
            }
        ]
    }
    result = {"id": 12, "status": "Accepted", "type": "UpperThreshold", "severity": 4} | POWER

    response = request(api, "PUT", "", json=body)
    command = await exchange(sessions, {"setMonitoringResult": [result]})
    response = await response

    assert (command.action, command.payload) == (
        "SetVariableMonitoring",
        {
            "setMonitoringData": [
                {
                    "value": 22000,
                    "type": "UpperThreshold",
                    "severity": 4,
                    "transaction": False,
                }
                | POWER
            ]
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "items": [
            {
                "component": "EVSE",
                "component_instance": None,
                "evse_id": 1,
                "connector_id": None,
                "variable": "Power",
                "variable_instance": None,
                "id": 12,
                "type": "UpperThreshold",
                "severity": 4,
                "status": "Accepted",
                "status_info": None,
            }
        ]
    }
    assert await monitors(api) == [
        monitor_out(12, "EVSE", "Power", "UpperThreshold", 22000, 4, evse_id=1)
    ]


async def test_tc_n_09_set_several_monitors_split_by_items_per_message(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)
    await _report_variable(
        sessions, "MonitoringCtrlr", "ItemsPerMessage", "2", "SetVariableMonitoring"
    )
    specs = [
        ("ChargingStation", "Problem", "UpperThreshold", 0.0, 0),
        ("EVSE", "Power", "Delta", 500.0, 6),
        ("Connector", "Temperature", "UpperThreshold", 80.0, 2),
    ]
    body = {
        "monitors": [
            {"component": c, "variable": v, "type": t, "value": value, "severity": s}
            for c, v, t, value, s in specs
        ]
    }

    def result(index: int, status: str, monitor_id: int | None = None) -> dict[str, Any]:
        c, v, t, _, s = specs[index]
        found = {"component": {"name": c}, "variable": {"name": v}, "type": t, "severity": s}
        return found | {"status": status} | ({"id": monitor_id} if monitor_id is not None else {})

    response = request(api, "PUT", "", json=body)
    # The station answers out of order: results are matched on what they name.
    first = await exchange(
        sessions, {"setMonitoringResult": [result(1, "Accepted", 21), result(0, "Accepted", 20)]}
    )
    second = await exchange(sessions, {"setMonitoringResult": [result(2, "UnknownComponent")]})
    response = await response

    assert [len(c.payload["setMonitoringData"]) for c in (first, second)] == [2, 1]
    assert [(i["variable"], i["status"], i["id"]) for i in response.json()["items"]] == [
        ("Power", "Accepted", 21),
        ("Problem", "Accepted", 20),
        ("Temperature", "UnknownComponent", None),
    ]
    assert await monitors(api) == [
        monitor_out(20, "ChargingStation", "Problem", "UpperThreshold", 0, 0),
        monitor_out(21, "EVSE", "Power", "Delta", 500, 6),
    ]


async def test_tc_n_24_set_a_periodic_monitor(api: httpx.AsyncClient, sessions: Harness) -> None:
    await connect(sessions)
    monitor = {
        "component": "EVSE",
        "variable": "Power",
        "type": "Periodic",
        "value": 60,
        "severity": 8,
    }
    found = {"component": {"name": "EVSE"}, "variable": {"name": "Power"}}

    response = request(api, "PUT", "", json={"monitors": [monitor | {"transaction": True}]})
    command = await exchange(
        sessions,
        {
            "setMonitoringResult": [
                found | {"id": 3, "status": "Accepted", "type": "Periodic", "severity": 8}
            ]
        },
    )
    response = await response

    assert command.payload["setMonitoringData"][0] == found | {
        "value": 60,
        "type": "Periodic",
        "severity": 8,
        "transaction": True,
    }
    assert response.json()["items"][0]["status"] == "Accepted"
    assert await monitors(api) == [
        monitor_out(3, "EVSE", "Power", "Periodic", 60, 8, transaction=True)
    ]


# Monitoring base and level (N03, N05) -----------------------------------------------------


async def test_tc_n_05_set_monitoring_base_removes_custom_monitors(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)
    first, _ = await ask_report(api, sessions, None, "Accepted")
    data = [monitoring_data("EVSE", "Power", (1, "Delta", 100, 8))]
    await notify_monitoring_report(sessions, first.payload["requestId"], 0, data, tbc=False)

    all_base = request(api, "PUT", "/base", json={"monitoring_base": "All"})
    command = await exchange(sessions, {"status": "Accepted"})
    all_base = await all_base
    kept = await monitors(api)
    factory = request(api, "PUT", "/base", json={"monitoring_base": "FactoryDefault"})
    await exchange(sessions, {"status": "Accepted"})
    factory = await factory

    assert (command.action, command.payload) == ("SetMonitoringBase", {"monitoringBase": "All"})
    assert all_base.json()["status"] == factory.json()["status"] == "Accepted"
    assert [m["monitor_id"] for m in kept] == [1]
    assert await monitors(api) == []
    settings = (await api.get(f"{API}/settings")).json()
    assert (settings["monitoring_base"], settings["monitoring_level"]) == ("FactoryDefault", None)


async def test_tc_n_16_set_monitoring_level(api: httpx.AsyncClient, sessions: Harness) -> None:
    await connect(sessions)

    response = request(api, "PUT", "/level", json={"severity": 4})
    command = await exchange(sessions, {"status": "Accepted"})
    response = await response

    assert (command.action, command.payload) == ("SetMonitoringLevel", {"severity": 4})
    assert response.json()["status"] == "Accepted"
    assert (await api.get(f"{API}/settings")).json()["monitoring_level"] == 4


async def test_tc_n_17_set_monitoring_level_out_of_range(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    """Out of 0..9 is refused before sending; a station's Rejected is passed on, not stored."""
    await connect(sessions)

    refused = await api.put(f"{API}/level", json={"severity": 10})
    response = request(api, "PUT", "/level", json={"severity": 9})
    await exchange(sessions, {"status": "Rejected", "statusInfo": {"reasonCode": "OutOfRange"}})
    response = await response

    assert assert_problem(refused, 422)["type"] == "urn:csms:problem:invalid-request"
    assert response.json()["status"] == "Rejected"
    assert (await api.get(f"{API}/settings")).json()["monitoring_level"] is None


# Clear Variable Monitoring (N06) ----------------------------------------------------------


async def test_tc_n_18_clear_too_many_elements_split_by_items_per_message(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)
    await _report_variable(
        sessions, "MonitoringCtrlr", "ItemsPerMessage", "2", "ClearVariableMonitoring"
    )
    first, _ = await ask_report(api, sessions, None, "Accepted")
    data = [
        monitoring_data("EVSE", "Power", (1, "Delta", 1, 8), (2, "Delta", 2, 8), (3, "Delta", 3, 8))
    ]
    await notify_monitoring_report(sessions, first.payload["requestId"], 0, data, tbc=False)

    response = request(api, "POST", "/clear", json={"ids": [1, 2, 3]})
    one = await exchange(
        sessions,
        {
            "clearMonitoringResult": [
                {"id": 1, "status": "Accepted"},
                {"id": 2, "status": "NotFound"},
            ]
        },
    )
    two = await exchange(sessions, {"clearMonitoringResult": [{"id": 3, "status": "Accepted"}]})
    response = await response

    assert [(c.action, c.payload) for c in (one, two)] == [
        ("ClearVariableMonitoring", {"id": [1, 2]}),
        ("ClearVariableMonitoring", {"id": [3]}),
    ]
    assert [(i["id"], i["status"]) for i in response.json()["items"]] == [
        (1, "Accepted"),
        (2, "NotFound"),
        (3, "Accepted"),
    ]
    assert await monitors(api) == []


async def test_tc_n_44_clear_monitoring_rejected_keeps_the_monitor(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)
    first, _ = await ask_report(api, sessions, None, "Accepted")
    data = [monitoring_data("ChargingStation", "Problem", (0, "UpperThreshold", 0, 0))]
    await notify_monitoring_report(sessions, first.payload["requestId"], 0, data, tbc=False)

    response = request(api, "POST", "/clear", json={"ids": [0]})
    reply = {
        "clearMonitoringResult": [
            {"id": 0, "status": "Rejected", "statusInfo": {"reasonCode": "HardWired"}}
        ]
    }
    await exchange(sessions, reply)
    response = await response

    assert response.json() == {
        "items": [
            {
                "id": 0,
                "status": "Rejected",
                "status_info": {"reason_code": "HardWired", "additional_info": None},
            }
        ]
    }
    assert [m["monitor_id"] for m in await monitors(api)] == [0]


# Alert events (N07, N08) ------------------------------------------------------------------


async def notify_event(sessions: Harness, *event_data: dict[str, Any]) -> None:
    payload = {"generatedAt": NOW, "seqNo": 0, "eventData": list(event_data)}
    assert schemas.validate(OcppVersion.V201, "NotifyEvent", payload) is None
    await sessions.processed(
        await sessions.call("CP-1", "NotifyEvent", payload, version=OcppVersion.V201)
    )


async def test_tc_n_21_alert_event_from_a_hard_wired_monitor(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)
    alert = {
        "eventId": 5,
        "timestamp": NOW,
        "trigger": "Alerting",
        "actualValue": "true",
        "techCode": "E42",
        "eventNotificationType": "HardWiredMonitor",
        "component": {"name": "ChargingStation"},
        "variable": {"name": "Problem"},
    }

    await notify_event(sessions, alert)
    await notify_event(sessions, alert)  # sent again (no answer came): kept once

    listed = (await api.get(f"{STATION}/events")).json()
    assert listed["total"] == 1
    event = listed["items"][0]
    assert (event["event_id"], event["trigger"], event["actual_value"], event["tech_code"]) == (
        5,
        "Alerting",
        "true",
        "E42",
    )
    published = sessions.published("station.event.reported")
    assert published[0].data == {
        "event_id": 5,
        "timestamp": "2026-11-25T10:00:00+00:00",
        "trigger": "Alerting",
        "event_notification_type": "HardWiredMonitor",
        "component": "ChargingStation",
        "component_instance": None,
        "evse_id": None,
        "connector_id": None,
        "variable": "Problem",
        "variable_instance": None,
        "actual_value": "true",
        "cleared": False,
        "severity": None,
        "variable_monitoring_id": None,
        "tech_code": "E42",
        "tech_info": None,
        "transaction_id": None,
        "cause": None,
    }


async def test_tc_n_48_tc_n_49_tc_n_50_events_of_variable_monitors_carry_their_severity(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)
    first, _ = await ask_report(api, sessions, None, "Accepted")
    data = [
        monitoring_data(
            "EVSE", "Power", (4, "UpperThreshold", 22000, 3), (6, "Periodic", 60, 8), id=1
        )
    ]
    await notify_monitoring_report(sessions, first.payload["requestId"], 0, data, tbc=False)
    power = {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"}}

    def event(event_id: int, trigger: str, monitor_id: int, **more: Any) -> dict[str, Any]:
        return (
            power
            | {
                "eventId": event_id,
                "timestamp": f"2026-11-25T10:00:0{event_id}Z",
                "trigger": trigger,
                "actualValue": "23000",
                "eventNotificationType": "CustomMonitor",
                "variableMonitoringId": monitor_id,
            }
            | more
        )

    await notify_event(sessions, event(1, "Alerting", 4), event(2, "Periodic", 6))
    await notify_event(sessions, event(3, "Alerting", 4, cleared=True, cause=1))

    listed = (await api.get(f"{STATION}/events")).json()["items"]
    assert [
        (e["event_id"], e["trigger"], e["severity"], e["cleared"], e["cause"]) for e in listed
    ] == [
        (3, "Alerting", 3, True, 1),
        (2, "Periodic", 8, False, None),
        (1, "Alerting", 3, False, None),
    ]
    assert [e.data["event_id"] for e in sessions.published("station.event.reported")] == [1, 2, 3]


# Bad input --------------------------------------------------------------------------------


async def _report_variable(
    sessions: Harness, component: str, variable: str, value: str, instance: str
) -> None:
    payload = {
        "requestId": 999,
        "generatedAt": NOW,
        "seqNo": 0,
        "reportData": [
            {
                "component": {"name": component},
                "variable": {"name": variable, "instance": instance},
                "variableAttribute": [{"value": value, "mutability": "ReadOnly"}],
            }
        ],
    }
    event = await sessions.call("CP-1", "NotifyReport", payload, version=OcppVersion.V201)
    await sessions.processed(event)


ROUTES = [
    (
        "PUT",
        "",
        {
            "monitors": [
                {"component": "A", "variable": "B", "type": "Delta", "value": 1, "severity": 1}
            ]
        },
    ),
    ("POST", "/clear", {"ids": [1]}),
    ("POST", "/report", {}),
    ("PUT", "/base", {"monitoring_base": "All"}),
    ("PUT", "/level", {"severity": 1}),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_unknown_station_404_offline_409_and_v16_422(
    api: httpx.AsyncClient, sessions: Harness, method: str, path: str, body: dict[str, Any]
) -> None:
    unknown = await api.request(method, f"{API}{path}", json=body)
    await api.put(STATION, json={})
    offline = await api.request(method, f"{API}{path}", json=body)
    await connect(sessions, OcppVersion.V16)
    v16 = await api.request(method, f"{API}{path}", json=body)

    assert assert_problem(unknown, 404)["type"] == "urn:csms:problem:unknown-station"
    assert assert_problem(offline, 409)["type"] == "urn:csms:problem:station-offline"
    assert assert_problem(v16, 422)["type"] == "urn:csms:problem:not-in-this-ocpp-version"


@pytest.mark.parametrize("path", ["", "/settings", "/reports", "/reports/1"])
async def test_reading_of_an_unknown_station_is_404(api: httpx.AsyncClient, path: str) -> None:
    assert_problem(await api.get(f"{API}{path}"), 404)
    assert_problem(await api.get(f"{STATION}/events"), 404)


MONITOR = {"component": "A", "variable": "B", "type": "Delta", "value": 1, "severity": 1}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "", {"monitors": []}),
        ("PUT", "", {"monitors": [MONITOR | {"severity": 10}]}),
        ("PUT", "", {"monitors": [MONITOR | {"severity": -1}]}),
        ("PUT", "", {"monitors": [MONITOR | {"type": "Sometimes"}]}),
        ("PUT", "", {"monitors": [MONITOR | {"type": "Periodic", "value": 0}]}),
        ("PUT", "", {"monitors": [MONITOR | {"connector_id": 1}]}),
        ("PUT", "", {"monitors": [{k: v for k, v in MONITOR.items() if k != "value"}]}),
        ("PUT", "", {"monitors": [MONITOR | {"extra": 1}]}),
        ("PUT", "", {"monitors": [MONITOR | {"transaction": "yes"}]}),
        ("POST", "/clear", {"ids": []}),
        ("POST", "/clear", {"ids": [1, 1]}),
        ("POST", "/clear", {"ids": [-1]}),
        ("POST", "/clear", {"ids": [2**31]}),
        ("PUT", "", {"monitors": [MONITOR | {"id": 2**70}]}),
        ("POST", "/report", {"criteria": ["Everything"]}),
        ("POST", "/report", {"criteria": ["DeltaMonitoring", "DeltaMonitoring"]}),
        ("POST", "/report", {"component_variables": [{"variable": "X"}]}),
        ("PUT", "/base", {"monitoring_base": "Some"}),
        ("PUT", "/base", {}),
        ("PUT", "/level", {"severity": 10}),
        ("PUT", "/level", {"severity": "high"}),
    ],
)
async def test_malformed_bodies_are_422_and_nothing_is_sent(
    api: httpx.AsyncClient, sessions: Harness, method: str, path: str, body: dict[str, Any]
) -> None:
    await connect(sessions)

    response = await api.request(method, f"{API}{path}", json=body)

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:invalid-request"


async def test_a_2_1_monitor_type_is_refused_for_a_2_0_1_station(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)

    response = await api.put(API, json={"monitors": [MONITOR | {"type": "TargetDelta"}]})

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:invalid-ocpp-payload"


async def test_events_past_their_retention_are_pruned(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)
    alert = {
        "timestamp": NOW,
        "trigger": "Alerting",
        "actualValue": "true",
        "eventNotificationType": "HardWiredMonitor",
        "component": {"name": "ChargingStation"},
        "variable": {"name": "Problem"},
    }
    await notify_event(sessions, alert | {"eventId": 1})
    async with sessions.service.factory() as session:
        (first,) = (await session.exec(select(StationEvent))).all()
    await notify_event(sessions, alert | {"eventId": 2})

    async with transaction(sessions.service.factory) as session:
        await prune_events(session, first.received_at + timedelta(microseconds=1))

    listed = (await api.get(f"{STATION}/events")).json()
    assert [e["event_id"] for e in listed["items"]] == [2]


async def test_a_monitoring_report_is_repeated_under_a_new_request_id(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)
    first, _ = await ask_report(api, sessions, {"criteria": ["DeltaMonitoring"]}, "Accepted")
    request_id = first.payload["requestId"]

    response = request(api, "POST", f"/reports/{request_id}/repeat")
    again = await exchange(sessions, {"status": "Accepted"})
    response = await response
    unknown = await api.post(f"{API}/reports/{request_id + 100}/repeat")

    assert again.payload == {
        "requestId": again.payload["requestId"],
        "monitoringCriteria": ["DeltaMonitoring"],
    }
    assert again.payload["requestId"] != request_id
    assert response.json()["request_id"] == again.payload["requestId"]
    repeated = (await api.get(f"{API}/reports/{again.payload['requestId']}")).json()
    assert repeated["repeat_of"] == request_id
    assert assert_problem(unknown, 404)["type"] == "urn:csms:problem:unknown-report"


async def test_entries_with_integers_past_32_bits_are_skipped_not_the_message(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    """The schemas bound no integer; the columns hold 32 bits (PostgreSQL would refuse)."""
    await connect(sessions)
    first, _ = await ask_report(api, sessions, None, "Accepted")
    data = [monitoring_data("EVSE", "Power", (2**40, "Delta", 1, 8), (3, "Delta", 2**40, 8))]
    await notify_monitoring_report(sessions, first.payload["requestId"], 0, data, tbc=False)
    alert = {
        "timestamp": NOW,
        "trigger": "Alerting",
        "actualValue": "true",
        "eventNotificationType": "CustomMonitor",
        "component": {"name": "EVSE"},
        "variable": {"name": "Power"},
    }

    await notify_event(
        sessions,
        alert | {"eventId": 2**40},
        alert | {"eventId": 1, "variableMonitoringId": 2**40},
        alert | {"eventId": 2, "variableMonitoringId": 3},
    )

    assert [(m["monitor_id"], m["value"]) for m in await monitors(api)] == [(3, 2**40)]
    listed = (await api.get(f"{STATION}/events")).json()["items"]
    assert [e["event_id"] for e in listed] == [2]
    assert [e.data["event_id"] for e in sessions.published("station.event.reported")] == [2]
