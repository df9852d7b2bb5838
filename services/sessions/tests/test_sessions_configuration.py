"""Configuration: 1.6 keys (Get/ChangeConfiguration), the 2.x device model (Get/SetVariables,
GetBaseReport/GetReport and the NotifyReport parts that follow), stored and served over REST."""

import asyncio
from typing import Any

import httpx
import pytest

from csms_core.router import StationCommand
from csms_ocpp import OcppVersion, schemas
from csms_sessions.configuration.models import ReportRequest
from tests.kits.sessions import Harness, assert_problem

API = "/api/v1/stations/CP-1/configuration"
HEARTBEAT = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}


async def exchange(
    sessions: Harness, version: OcppVersion, reply: dict[str, Any]
) -> StationCommand:
    """Answer the next command as the station; both checked against the official schemas."""
    command = await sessions.command()
    assert schemas.validate(version, command.action, command.payload) is None
    assert schemas.validate(version, command.action, reply, response=True) is None
    await sessions.reply(command, reply)
    return command


async def connect(sessions: Harness, version: OcppVersion) -> None:
    """Connect CP-1 and wait until sessions recorded it (the station row and its version)."""
    await sessions.processed(await sessions.connect("CP-1", "conn-1", version))


def request(api: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    return asyncio.create_task(api.request(method, f"{API}{path}", **kwargs))


async def stored(api: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await api.get(API, params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    for item in items:
        item.pop("updated_at")
    return items


# OCPP 1.6 ---------------------------------------------------------------------------------


async def test_tc_019_1_retrieve_all_configuration_keys_v16(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions, OcppVersion.V16)
    reply = {
        "configurationKey": [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
            {"key": "AuthorizationKey", "readonly": False},
        ]
    }

    response = request(api, "POST", "/refresh")
    command = await exchange(sessions, OcppVersion.V16, reply)
    response = await response

    assert (command.action, command.payload) == ("GetConfiguration", {})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "command_id": command.command_id,
        "action": "GetConfiguration",
        "outcome": "result",
        "status": None,
        "response": reply,
        "request_id": None,
    }
    assert await stored(api) == [
        {"key": "AuthorizationKey", "readonly": False},
        {"key": "HeartbeatInterval", "value": "300", "readonly": False},
        {"key": "NumberOfConnectors", "value": "2", "readonly": True},
    ]


async def test_tc_019_2_retrieve_specific_keys_v16(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions, OcppVersion.V16)
    reply = {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
        "unknownKey": ["NoSuchKey"],
    }

    response = request(
        api, "POST", "/query", json={"items": [{"key": "HeartbeatInterval"}, {"key": "NoSuchKey"}]}
    )
    command = await exchange(sessions, OcppVersion.V16, reply)
    response = await response

    assert command.payload == {"key": ["HeartbeatInterval", "NoSuchKey"]}
    assert response.json() == {
        "items": [
            {"key": "HeartbeatInterval", "status": "Accepted", "value": "300", "readonly": False},
            {"key": "NoSuchKey", "status": "UnknownVariable"},
        ]
    }
    assert await stored(api) == [{"key": "HeartbeatInterval", "value": "300", "readonly": False}]


async def test_tc_021_tc_040_change_configuration_v16(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions, OcppVersion.V16)
    items = [
        {"key": "HeartbeatInterval", "value": "60"},
        {"key": "MeterValueSampleInterval", "value": "30"},
        {"key": "NumberOfConnectors", "value": "5"},
        {"key": "VendorThing", "value": "x"},
    ]
    answers = ["Accepted", "RebootRequired", "Rejected", "NotSupported"]

    response = request(api, "PUT", "", json={"items": items})
    commands = [await exchange(sessions, OcppVersion.V16, {"status": status}) for status in answers]
    response = await response

    assert [(c.action, c.payload) for c in commands] == [
        ("ChangeConfiguration", item) for item in items
    ]
    assert response.status_code == 200, response.text
    assert response.json() == {
        "items": [
            {"key": item["key"], "value": item["value"], "status": status}
            for item, status in zip(items, answers, strict=True)
        ]
    }
    assert await stored(api) == [
        {"key": "HeartbeatInterval", "value": "60", "readonly": False},
        {"key": "MeterValueSampleInterval", "value": "30", "readonly": False},
    ]


async def test_change_configuration_too_long_value_v16_is_422_and_nothing_sent(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions, OcppVersion.V16)

    response = await api.put(
        API,
        json={"items": [{"key": "A", "value": "1"}, {"key": "B", "value": "x" * 501}]},
    )

    body = assert_problem(response, 422)
    assert body["type"] == "urn:csms:problem:invalid-ocpp-payload"
    assert await stored(api) == []


@pytest.mark.parametrize(
    ("version", "item"),
    [
        (OcppVersion.V16, {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"}),
        (OcppVersion.V201, {"key": "HeartbeatInterval"}),
    ],
)
async def test_item_named_the_other_versions_way_is_422(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion, item: dict[str, Any]
) -> None:
    await connect(sessions, version)

    query = await api.post(f"{API}/query", json={"items": [item]})
    change = await api.put(API, json={"items": [item | {"value": "1"}]})

    for response in (query, change):
        assert assert_problem(response, 422)["type"] == (
            "urn:csms:problem:not-in-this-ocpp-version"
        )


# OCPP 2.x ---------------------------------------------------------------------------------


async def test_tc_b_06_tc_b_07_get_variables_v201(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions, OcppVersion.V201)
    items = [
        {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"},
        {
            "component": "EVSE",
            "evse_id": 1,
            "variable": "AvailabilityState",
            "attribute_type": "Actual",
        },
        {"component": "Nope", "variable": "Nothing"},
    ]
    reply = {
        "getVariableResult": [
            {"attributeStatus": "Accepted", "attributeValue": "300", **HEARTBEAT},
            {
                "attributeStatus": "Accepted",
                "attributeType": "Actual",
                "attributeValue": "Available",
                "component": {"name": "EVSE", "evse": {"id": 1}},
                "variable": {"name": "AvailabilityState"},
            },
            {
                "attributeStatus": "UnknownComponent",
                "component": {"name": "Nope"},
                "variable": {"name": "Nothing"},
            },
        ]
    }

    response = request(api, "POST", "/query", json={"items": items})
    command = await exchange(sessions, OcppVersion.V201, reply)
    response = await response

    assert (command.action, command.payload) == (
        "GetVariables",
        {
            "getVariableData": [
                {**HEARTBEAT, "attributeType": "Actual"},
                {
                    "component": {"name": "EVSE", "evse": {"id": 1}},
                    "variable": {"name": "AvailabilityState"},
                    "attributeType": "Actual",
                },
                {
                    "component": {"name": "Nope"},
                    "variable": {"name": "Nothing"},
                    "attributeType": "Actual",
                },
            ]
        },
    )
    assert response.json()["items"] == [
        {
            "component": "OCPPCommCtrlr",
            "variable": "HeartbeatInterval",
            "attribute_type": "Actual",
            "status": "Accepted",
            "value": "300",
        },
        {
            "component": "EVSE",
            "evse_id": 1,
            "variable": "AvailabilityState",
            "attribute_type": "Actual",
            "status": "Accepted",
            "value": "Available",
        },
        {
            "component": "Nope",
            "variable": "Nothing",
            "attribute_type": "Actual",
            "status": "UnknownComponent",
        },
    ]
    assert [(i["component"], i["variable"], i["value"]) for i in await stored(api)] == [
        ("EVSE", "AvailabilityState", "Available"),
        ("OCPPCommCtrlr", "HeartbeatInterval", "300"),
    ]


async def test_tc_b_09_tc_b_10_set_variables_v201(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions, OcppVersion.V201)
    items = [
        {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "60"},
        {
            "component": "SampledDataCtrlr",
            "variable": "TxUpdatedInterval",
            "value": "30",
            "attribute_type": "Target",
        },
        {"component": "AuthCtrlr", "variable": "Enabled", "value": "maybe"},
    ]
    reply = {
        "setVariableResult": [
            {"attributeStatus": "Accepted", "attributeType": "Actual", **HEARTBEAT},
            {
                "attributeStatus": "RebootRequired",
                "attributeType": "Target",
                "component": {"name": "SampledDataCtrlr"},
                "variable": {"name": "TxUpdatedInterval"},
            },
            {
                "attributeStatus": "Rejected",
                "attributeStatusInfo": {"reasonCode": "InvalidValue"},
                "component": {"name": "AuthCtrlr"},
                "variable": {"name": "Enabled"},
            },
        ]
    }

    response = request(api, "PUT", "", json={"items": items})
    command = await exchange(sessions, OcppVersion.V201, reply)
    response = await response

    assert (command.action, command.payload["setVariableData"][1]) == (
        "SetVariables",
        {
            "attributeType": "Target",
            "attributeValue": "30",
            "component": {"name": "SampledDataCtrlr"},
            "variable": {"name": "TxUpdatedInterval"},
        },
    )
    assert [(i["variable"], i["status"], i["value"]) for i in response.json()["items"]] == [
        ("HeartbeatInterval", "Accepted", "60"),
        ("TxUpdatedInterval", "RebootRequired", "30"),
        ("Enabled", "Rejected", "maybe"),
    ]
    assert response.json()["items"][2]["status_info"] == {"reasonCode": "InvalidValue"}
    assert [(i["variable"], i["attribute_type"], i["value"]) for i in await stored(api)] == [
        ("HeartbeatInterval", "Actual", "60"),
        ("TxUpdatedInterval", "Target", "30"),
    ]


async def test_tc_b_08_get_variables_split_to_items_per_message(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    """The station reported DeviceDataCtrlr.ItemsPerMessage[GetVariables] = 2: 3 items, 2 calls."""
    await connect(sessions, OcppVersion.V201)
    await notify_report(
        sessions,
        1,
        0,
        [report_data("DeviceDataCtrlr", "ItemsPerMessage", "2", variable_instance="GetVariables")],
    )
    names = ["A", "B", "C"]

    response = request(
        api,
        "POST",
        "/query",
        json={"items": [{"component": "X", "variable": name} for name in names]},
    )
    calls = []
    for part in (names[:2], names[2:]):
        reply = {
            "getVariableResult": [
                {
                    "attributeStatus": "UnknownVariable",
                    "component": {"name": "X"},
                    "variable": {"name": name},
                }
                for name in part
            ]
        }
        calls.append(await exchange(sessions, OcppVersion.V201, reply))
    response = await response

    assert [len(c.payload["getVariableData"]) for c in calls] == [2, 1]
    assert [i["variable"] for i in response.json()["items"]] == names


def report_data(
    component: str,
    variable: str,
    value: str | None,
    *,
    mutability: str = "ReadWrite",
    variable_instance: str | None = None,
    evse: dict[str, int] | None = None,
    characteristics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    attribute: dict[str, Any] = {"type": "Actual", "mutability": mutability}
    if value is not None:
        attribute["value"] = value
    data: dict[str, Any] = {
        "component": {"name": component, **({"evse": evse} if evse else {})},
        "variable": {
            "name": variable,
            **({"instance": variable_instance} if variable_instance else {}),
        },
        "variableAttribute": [attribute],
    }
    if characteristics is not None:
        data["variableCharacteristics"] = characteristics
    return data


async def notify_report(
    sessions: Harness,
    request_id: int,
    seq_no: int,
    report: list[dict[str, Any]],
    *,
    tbc: bool = False,
) -> None:
    payload = {
        "requestId": request_id,
        "generatedAt": "2026-11-25T10:00:00Z",
        "seqNo": seq_no,
        "tbc": tbc,
        "reportData": report,
    }
    assert schemas.validate(OcppVersion.V201, "NotifyReport", payload) is None
    event = await sessions.call("CP-1", "NotifyReport", payload, version=OcppVersion.V201)
    await sessions.processed(event)


@pytest.mark.parametrize(
    "report_base", ["FullInventory", "ConfigurationInventory", "SummaryInventory"]
)
async def test_tc_b_12_to_b_14_get_base_report_then_notify_report_parts(
    api: httpx.AsyncClient, sessions: Harness, report_base: str
) -> None:
    await connect(sessions, OcppVersion.V201)

    response = request(api, "POST", "/refresh", json={"report_base": report_base})
    command = await exchange(sessions, OcppVersion.V201, {"status": "Accepted"})
    response = await response
    request_id = command.payload["requestId"]
    assert (command.action, command.payload) == (
        "GetBaseReport",
        {"requestId": request_id, "reportBase": report_base},
    )
    assert response.json()["request_id"] == request_id
    assert response.json()["status"] == "Accepted"

    interval = characteristics = {
        "dataType": "integer",
        "unit": "s",
        "minLimit": 1,
        "supportsMonitoring": False,
    }
    part_0 = [report_data("OCPPCommCtrlr", "HeartbeatInterval", "300", characteristics=interval)]
    part_1 = [
        report_data(
            "EVSE",
            "AvailabilityState",
            "Available",
            mutability="ReadOnly",
            evse={"id": 1},
            characteristics={
                "dataType": "OptionList",
                "valuesList": "Available,Occupied",
                "supportsMonitoring": True,
            },
        ),
        report_data("SecurityCtrlr", "BasicAuthPassword", None, mutability="WriteOnly"),
    ]
    # The last part first, then the first part twice: the result is the same.
    await notify_report(sessions, request_id, 1, part_1)
    await notify_report(sessions, request_id, 0, part_0, tbc=True)
    await notify_report(sessions, request_id, 0, part_0, tbc=True)

    assert characteristics is interval
    assert await stored(api) == [
        {
            "component": "EVSE",
            "evse_id": 1,
            "variable": "AvailabilityState",
            "attribute_type": "Actual",
            "value": "Available",
            "readonly": True,
            "mutability": "ReadOnly",
            "data_type": "OptionList",
            "values_list": "Available,Occupied",
        },
        {
            "component": "OCPPCommCtrlr",
            "variable": "HeartbeatInterval",
            "attribute_type": "Actual",
            "value": "300",
            "readonly": False,
            "mutability": "ReadWrite",
            "data_type": "integer",
            "unit": "s",
            "min_limit": 1.0,
        },
        {
            "component": "SecurityCtrlr",
            "variable": "BasicAuthPassword",
            "attribute_type": "Actual",
            "readonly": False,
            "mutability": "WriteOnly",
        },
    ]
    reported = sessions.published("station.device-model.reported")
    assert [e.data for e in reported] == [
        {
            "request_id": request_id,
            "seq_no": s,
            "tbc": t,
            "generated_at": "2026-11-25T10:00:00Z",
            "variables": n,
            "report_state": state,
            "missing_seq_nos": missing,
        }
        for s, t, n, state, missing in (
            (1, False, 2, "incomplete", [0]),
            (0, True, 1, "complete", []),
            (0, True, 1, "complete", []),
        )
    ]
    async with sessions.service.factory() as session:
        report = await session.get(ReportRequest, request_id)
    assert report is not None
    assert (report.status, report.parts_received, report.completed_at is not None) == (
        "Accepted",
        2,
        True,
    )


async def test_a_later_get_variables_keeps_what_the_report_described(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions, OcppVersion.V201)
    await notify_report(
        sessions,
        7,
        0,
        [
            report_data(
                "OCPPCommCtrlr",
                "HeartbeatInterval",
                "300",
                characteristics={"dataType": "integer", "supportsMonitoring": False},
            )
        ],
    )

    response = request(
        api,
        "PUT",
        "",
        json={
            "items": [
                {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "90"}
            ]
        },
    )
    await exchange(
        sessions,
        OcppVersion.V201,
        {"setVariableResult": [{"attributeStatus": "Accepted", **HEARTBEAT}]},
    )
    await response

    [item] = await stored(api)
    assert (item["value"], item["data_type"], item["mutability"]) == ("90", "integer", "ReadWrite")


async def test_tc_b_18_get_custom_report_v201(api: httpx.AsyncClient, sessions: Harness) -> None:
    await connect(sessions, OcppVersion.V201)
    body = {
        "component_criteria": ["Available", "Problem"],
        "component_variables": [
            {"component": "EVSE", "evse_id": 1},
            {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"},
        ],
    }

    response = request(api, "POST", "/report", json=body)
    command = await exchange(sessions, OcppVersion.V201, {"status": "EmptyResultSet"})
    response = await response

    assert (command.action, command.payload) == (
        "GetReport",
        {
            "requestId": command.payload["requestId"],
            "componentCriteria": ["Available", "Problem"],
            "componentVariable": [
                {"component": {"name": "EVSE", "evse": {"id": 1}}},
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
            ],
        },
    )
    assert response.json()["status"] == "EmptyResultSet"
    assert response.json()["request_id"] == command.payload["requestId"]


async def test_custom_report_is_not_in_v16(api: httpx.AsyncClient, sessions: Harness) -> None:
    await connect(sessions, OcppVersion.V16)

    response = await api.post(f"{API}/report", json={"component_criteria": ["Problem"]})

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:not-in-this-ocpp-version"


# Bad input --------------------------------------------------------------------------------


async def test_read_configuration_of_unknown_station_is_404(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get(API), 404)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/refresh", {}),
        ("POST", "/query", {"items": [{"key": "A"}]}),
        ("PUT", "", {"items": [{"key": "A", "value": "1"}]}),
        ("POST", "/report", {}),
    ],
)
async def test_unknown_station_404_and_offline_409(
    api: httpx.AsyncClient, method: str, path: str, body: dict[str, Any]
) -> None:
    unknown = await api.request(method, f"{API}{path}", json=body)
    await api.put("/api/v1/stations/CP-1", json={})
    offline = await api.request(method, f"{API}{path}", json=body)

    assert assert_problem(unknown, 404)["type"] == "urn:csms:problem:unknown-station"
    assert assert_problem(offline, 409)["type"] == "urn:csms:problem:station-offline"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/refresh", {"report_base": "Everything"}),
        ("POST", "/query", {"items": []}),
        ("POST", "/query", {"items": [{}]}),
        ("POST", "/query", {"items": [{"key": "A", "component": "B", "variable": "C"}]}),
        ("POST", "/query", {"items": [{"component": "B"}]}),
        ("POST", "/query", {"items": [{"variable": "C"}]}),
        ("POST", "/query", {"items": [{"component": "B", "variable": "C", "connector_id": 1}]}),
        (
            "POST",
            "/query",
            {"items": [{"component": "B", "variable": "C", "attribute_type": "Wanted"}]},
        ),
        ("PUT", "", {"items": [{"key": "A"}]}),
        ("PUT", "", {"items": [{"key": "A", "value": 1, "extra": True}]}),
        ("POST", "/report", {"component_criteria": ["Broken"]}),
        ("POST", "/report", {"component_variables": [{"variable": "X"}]}),
    ],
)
async def test_malformed_bodies_are_422(
    api: httpx.AsyncClient, sessions: Harness, method: str, path: str, body: dict[str, Any]
) -> None:
    await connect(sessions, OcppVersion.V201)

    response = await api.request(method, f"{API}{path}", json=body)

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:invalid-request"


async def test_set_variables_value_over_1000_is_422_v201(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions, OcppVersion.V201)

    response = await api.put(
        API, json={"items": [{"component": "A", "variable": "B", "value": "x" * 1001}]}
    )

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:invalid-ocpp-payload"


async def test_a_report_part_with_a_request_id_past_32_bits_is_stored_not_counted(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    """The schema bounds no integer; no request of ours has such an id (PostgreSQL's
    32-bit column would refuse it and fail the whole message)."""
    await connect(sessions, OcppVersion.V201)

    await notify_report(
        sessions, 2**40, 0, [report_data("OCPPCommCtrlr", "HeartbeatInterval", "60")]
    )

    assert [(i["variable"], i["value"]) for i in await stored(api)] == [("HeartbeatInterval", "60")]
    (reported,) = sessions.published("station.device-model.reported")
    assert "report_state" not in reported.data
