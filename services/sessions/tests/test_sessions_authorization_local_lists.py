"""Local authorization lists: Full and Differential updates, resends, re-sync, ClearCache.

OCTT: TC_042_x / TC_043_x (1.6), TC_D_01..TC_D_04 / TC_D_08 / TC_D_09, TC_061 / TC_C_37 / TC_C_38.
The test plays the gateway: it reads each command from the gateway mailbox and answers it.
"""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest

from csms_core.bus import Delivery
from csms_core.bus.memory import InMemoryBus
from csms_core.events import ConnectorStatusChanged, ConnectorStatusChangedData
from csms_core.router import CommandOutcome, StationCommand
from csms_core.router.memory import InMemoryRouter
from csms_core.topics import STATION_STATUS
from csms_ocpp import OcppVersion, schemas
from csms_sessions.app import create_app
from csms_sessions.db import utc_now
from csms_sessions.local_lists.api import MAX_TOKENS_PER_REQUEST
from csms_sessions.local_lists.sync import _of_no_interest
from tests.kits.api import bearer_headers
from tests.kits.sessions import Harness, assert_problem, running_sessions, settings_for_tests

LIST = "/api/v1/stations/CP-1/local-list"


@pytest.fixture
async def small_messages(tmp_path: Path) -> AsyncIterator[tuple[Harness, httpx.AsyncClient]]:
    """Sessions sending at most two list entries per SendLocalList."""
    settings = settings_for_tests(tmp_path, local_list_items_per_message=2)
    async with running_sessions(settings, InMemoryBus(), InMemoryRouter()) as harness:
        transport = httpx.ASGITransport(app=create_app(harness.service))
        headers = await bearer_headers(harness.service.engine)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://csms", headers=headers
        ) as client:
            yield harness, client


def later(call: Coroutine[Any, Any, httpx.Response]) -> "asyncio.Task[httpx.Response]":
    """Start a REST call that completes once the 'gateway' answered its commands."""
    return asyncio.create_task(call)


async def station_gets(
    sessions: Harness, version: OcppVersion, status: str = "Accepted", action: str = "SendLocalList"
) -> dict[str, Any]:
    """The next command (checked against its request schema), answered with ``status``."""
    command = await sessions.command()
    assert command.action == action
    assert schemas.validate(version, action, command.payload) is None, command.payload
    await sessions.reply(command, {"status": status})
    return command.payload


async def tokens(api: httpx.AsyncClient, *ids: str, **body: Any) -> None:
    for id_token in ids:
        token = {"type": "ISO14443", "status": "Accepted"} | body
        response = await api.put(f"/api/v1/id-tokens/{id_token}", json=token)
        assert response.status_code == 200, response.text


async def online(sessions: Harness, version: OcppVersion, station_id: str = "CP-1") -> None:
    event = await sessions.connect(station_id, "conn-1", version)
    await sessions.processed(event)


async def test_tc_043_4_full_list_v16(api: httpx.AsyncClient, sessions: Harness) -> None:
    await tokens(api, "TAG-1", expiry_date="2100-01-01T00:00:00Z", group_id="PARENT")
    await tokens(api, "TAG-2", status="Blocked")
    await online(sessions, OcppVersion.V16)
    body = {"id_tokens": [{"id_token": "TAG-1"}, {"id_token": "TAG-2"}]}

    response = later(api.put(LIST, json=body))
    sent = await station_gets(sessions, OcppVersion.V16)
    assert sent == {
        "listVersion": 1,
        "updateType": "Full",
        "localAuthorizationList": [
            {
                "idTag": "TAG-1",
                "idTagInfo": {
                    "status": "Accepted",
                    "expiryDate": "2100-01-01T00:00:00.000Z",
                    "parentIdTag": "PARENT",
                },
            },
            {"idTag": "TAG-2", "idTagInfo": {"status": "Blocked"}},
        ],
    }
    result = (await response).json()
    assert (result["version"], result["station_version"], result["pending"]) == (1, 1, False)
    assert result["last_status"] == "Accepted"
    assert [(e["id_token"], e["synced"]) for e in result["entries"]["items"]] == [
        ("TAG-1", True),
        ("TAG-2", True),
    ]


async def test_tc_d_01_tc_d_02_tc_d_03_full_then_differential_v201(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await tokens(api, "TOKEN-1", "TOKEN-2")
    await tokens(api, "TOKEN-3", type="eMAID")
    await online(sessions, OcppVersion.V201)

    response = later(api.put(LIST, json={"id_tokens": [{"id_token": "TOKEN-1"}]}))
    assert await station_gets(sessions, OcppVersion.V201) == {
        "versionNumber": 1,
        "updateType": "Full",
        "localAuthorizationList": [
            {
                "idToken": {"idToken": "TOKEN-1", "type": "ISO14443"},
                "idTokenInfo": {"status": "Accepted"},
            }
        ],
    }
    await response

    changes = {
        "add": [{"id_token": "TOKEN-3"}, {"id_token": "TOKEN-2"}],
        "remove": [{"id_token": "TOKEN-1"}],
    }
    response = later(api.patch(LIST, json=changes))
    assert await station_gets(sessions, OcppVersion.V201) == {
        "versionNumber": 2,
        "updateType": "Differential",
        "localAuthorizationList": [
            {"idToken": {"idToken": "TOKEN-1", "type": "ISO14443"}},
            {
                "idToken": {"idToken": "TOKEN-2", "type": "ISO14443"},
                "idTokenInfo": {"status": "Accepted"},
            },
            {
                "idToken": {"idToken": "TOKEN-3", "type": "eMAID"},
                "idTokenInfo": {"status": "Accepted"},
            },
        ],
    }
    result = (await response).json()
    assert [e["id_token"] for e in result["entries"]["items"]] == ["TOKEN-2", "TOKEN-3"]
    assert (result["station_version"], result["pending"]) == (2, False)


async def test_tc_d_04_full_with_empty_list(api: httpx.AsyncClient, sessions: Harness) -> None:
    await online(sessions, OcppVersion.V201)

    response = later(api.put(LIST, json={"id_tokens": []}))

    assert await station_gets(sessions, OcppVersion.V201) == {
        "versionNumber": 1,
        "updateType": "Full",
    }
    assert (await response).json()["entries"]["total"] == 0


async def test_long_list_goes_as_full_then_differentials(
    small_messages: tuple[Harness, httpx.AsyncClient],
) -> None:
    sessions, api = small_messages
    await tokens(api, "T1", "T2", "T3", "T4", "T5", group_id="FLEET")
    await online(sessions, OcppVersion.V16)

    response = later(api.put(LIST, json={"group_id": "FLEET"}))
    sent = [await station_gets(sessions, OcppVersion.V16) for _ in range(3)]

    assert [(m["listVersion"], m["updateType"]) for m in sent] == [
        (1, "Full"),
        (2, "Differential"),
        (3, "Differential"),
    ]
    assert [[e["idTag"] for e in m["localAuthorizationList"]] for m in sent] == [
        ["T1", "T2"],
        ["T3", "T4"],
        ["T5"],
    ]
    assert (await response).json()["station_version"] == 3


@pytest.mark.parametrize("answer", ["VersionMismatch", "Failed"])
async def test_tc_043_3_version_mismatch_or_failed_resends_full(
    api: httpx.AsyncClient, sessions: Harness, answer: str
) -> None:
    await tokens(api, "TAG-1", "TAG-2")
    await online(sessions, OcppVersion.V16)
    first = later(api.put(LIST, json={"id_tokens": [{"id_token": "TAG-1"}]}))
    await station_gets(sessions, OcppVersion.V16)
    await first

    response = later(api.patch(LIST, json={"add": [{"id_token": "TAG-2"}]}))
    differential = await station_gets(sessions, OcppVersion.V16, answer)
    full = await station_gets(sessions, OcppVersion.V16)

    assert (differential["updateType"], differential["listVersion"]) == ("Differential", 2)
    assert (full["updateType"], full["listVersion"]) == ("Full", 3)
    assert [e["idTag"] for e in full["localAuthorizationList"]] == ["TAG-1", "TAG-2"]
    result = (await response).json()
    assert (result["station_version"], result["pending"], result["last_status"]) == (
        3,
        False,
        "Accepted",
    )


async def test_tc_043_1_not_supported_stops_trying(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await online(sessions, OcppVersion.V16)

    response = later(api.put(LIST, json={"id_tokens": []}))
    await station_gets(sessions, OcppVersion.V16, "NotSupported")

    result = (await response).json()
    assert (result["last_status"], result["pending"], result["station_version"]) == (
        "NotSupported",
        False,
        None,
    )


async def test_token_change_resyncs_the_lists_holding_it(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await tokens(api, "TOKEN-1", "TOKEN-2")
    await online(sessions, OcppVersion.V201)
    response = later(api.put(LIST, json={"id_tokens": [{"id_token": "TOKEN-1"}]}))
    await station_gets(sessions, OcppVersion.V201)
    await response

    await tokens(api, "TOKEN-1", status="Blocked")  # the background sync sends it
    assert await station_gets(sessions, OcppVersion.V201) == {
        "versionNumber": 2,
        "updateType": "Differential",
        "localAuthorizationList": [
            {
                "idToken": {"idToken": "TOKEN-1", "type": "ISO14443"},
                "idTokenInfo": {"status": "Blocked"},
            }
        ],
    }
    await tokens(api, "TOKEN-2", status="Blocked")  # on no list: nothing is sent
    assert (await api.delete("/api/v1/id-tokens/TOKEN-1")).status_code == 204
    assert await station_gets(sessions, OcppVersion.V201) == {
        "versionNumber": 3,
        "updateType": "Differential",
        "localAuthorizationList": [{"idToken": {"idToken": "TOKEN-1", "type": "ISO14443"}}],
    }
    await eventually_synced(api, 3)
    assert (await api.get(LIST)).json()["entries"]["total"] == 0


async def test_group_list_follows_tokens_joining_the_group(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await tokens(api, "TAG-1", group_id="FLEET")
    await online(sessions, OcppVersion.V16)
    response = later(api.put(LIST, json={"group_id": "FLEET"}))
    await station_gets(sessions, OcppVersion.V16)
    await response

    await tokens(api, "TAG-2", group_id="FLEET")

    assert await station_gets(sessions, OcppVersion.V16) == {
        "listVersion": 2,
        "updateType": "Differential",
        "localAuthorizationList": [
            {"idTag": "TAG-2", "idTagInfo": {"status": "Accepted", "parentIdTag": "FLEET"}}
        ],
    }


async def eventually_synced(api: httpx.AsyncClient, version: int) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            body: dict[str, Any] = (await api.get(LIST)).json()
            if body["station_version"] == version and not body["pending"]:
                return body
            await asyncio.sleep(0.02)


async def test_offline_station_is_synced_when_it_connects(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await api.put("/api/v1/stations/CP-1", json={})
    await tokens(api, "TAG-1")

    stored = await api.put(LIST, json={"id_tokens": [{"id_token": "TAG-1"}]})
    assert stored.status_code == 200, stored.text
    body = stored.json()
    assert (body["pending"], body["last_status"], body["station_version"]) == (
        True,
        "offline",
        None,
    )

    await sessions.connect("CP-1", "conn-1", OcppVersion.V16)
    sent = await station_gets(sessions, OcppVersion.V16)

    assert sent["updateType"] == "Full"
    assert sent["localAuthorizationList"] == [
        {"idTag": "TAG-1", "idTagInfo": {"status": "Accepted"}}
    ]
    assert (await eventually_synced(api, sent["listVersion"]))["last_status"] == "Accepted"


async def test_station_timeout_keeps_the_list_pending(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await online(sessions, OcppVersion.V16)

    response = later(api.put(LIST, json={"id_tokens": []}))
    command = await sessions.command()
    await sessions.reply(command, outcome=CommandOutcome.TIMEOUT)

    body = (await response).json()
    assert (body["pending"], body["last_status"]) == (True, "timeout")


async def test_force_sync_sends_full(api: httpx.AsyncClient, sessions: Harness) -> None:
    await tokens(api, "TAG-1")
    await online(sessions, OcppVersion.V201)
    response = later(api.put(LIST, json={"id_tokens": [{"id_token": "TAG-1"}]}))
    await station_gets(sessions, OcppVersion.V201)
    await response

    response = later(api.post(f"{LIST}/sync"))
    sent = await station_gets(sessions, OcppVersion.V201)

    assert (sent["updateType"], sent["versionNumber"]) == ("Full", 2)
    assert (await response).json()["station_version"] == 2


@pytest.mark.parametrize(
    ("version", "answer", "matches"),
    [
        (OcppVersion.V16, {"listVersion": 0}, True),  # TC_042_2: no list yet
        (OcppVersion.V201, {"versionNumber": 0}, True),  # TC_D_09
        (OcppVersion.V201, {"versionNumber": 7}, False),  # TC_D_08, and we think otherwise
    ],
)
async def test_tc_042_tc_d_08_tc_d_09_get_local_list_version(
    api: httpx.AsyncClient,
    sessions: Harness,
    version: OcppVersion,
    answer: dict[str, int],
    matches: bool,
) -> None:
    await online(sessions, version)

    response = later(api.post(f"{LIST}/version-check"))
    command = await sessions.command()
    assert (command.action, command.payload) == ("GetLocalListVersion", {})
    await sessions.reply(command, answer)

    result = (await response).json()
    assert result == {
        "station_version": next(iter(answer.values())),
        "version": None,
        "matches": matches,
    }
    if not matches:  # the mismatch is repaired with a Full update
        assert (await station_gets(sessions, version))["updateType"] == "Full"


@pytest.mark.parametrize(
    ("version", "status"),
    [(OcppVersion.V16, "Accepted"), (OcppVersion.V201, "Accepted"), (OcppVersion.V201, "Rejected")],
)
async def test_tc_061_tc_c_37_tc_c_38_clear_cache(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion, status: str
) -> None:
    await online(sessions, version)

    response = later(api.post("/api/v1/stations/CP-1/commands/clear-cache"))
    command: StationCommand = await sessions.command()
    await sessions.reply(command, {"status": status})

    assert (command.action, command.payload) == ("ClearCache", {})
    assert (await response).json()["status"] == status


async def test_bad_list_requests_are_problems_and_change_nothing(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await tokens(api, "TAG-1")
    await tokens(api, "TAG-1", type="eMAID")
    await online(sessions, OcppVersion.V16)

    for body, kind in (
        ({}, "invalid-request"),
        ({"id_tokens": [], "group_id": "G"}, "invalid-request"),
        ({"id_tokens": [{"id_token": "NOBODY"}]}, "unknown-id-token"),
        ({"id_tokens": [{"id_token": "TAG-1"}]}, "unknown-id-token"),  # two types: ambiguous
        ({"id_tokens": [{"id_token": "TAG-1", "colour": "red"}]}, "invalid-request"),
    ):
        problem = assert_problem(await api.put(LIST, json=body), 422)
        assert problem["type"] == f"urn:csms:problem:{kind}", body
    for body, kind in (
        ({}, "invalid-request"),
        ({"remove": [{"id_token": "TAG-1"}]}, "not-on-the-list"),
    ):
        problem = assert_problem(await api.patch(LIST, json=body), 422)
        assert problem["type"] == f"urn:csms:problem:{kind}", body
    assert_problem(await api.get("/api/v1/stations/NOPE/local-list"), 404)
    assert_problem(await api.put("/api/v1/stations/NOPE/local-list", json={"id_tokens": []}), 404)
    unchanged = (await api.get(LIST)).json()
    assert (unchanged["version"], unchanged["entries"]["total"]) == (0, 0)


async def test_a_million_entry_local_list_is_refused_before_it_is_read(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await online(sessions, OcppVersion.V201)
    million = b'{"id_tokens": [' + b",".join([b'{"id_token":"T"}'] * 1_000_000) + b"]}"
    headers = {"content-type": "application/json"}
    assert_problem(await api.put(LIST, content=million, headers=headers), 413)
    # Within the body limit, still past what one request may name: 422, nothing changed.
    many = {"id_tokens": [{"id_token": f"T{n}"} for n in range(MAX_TOKENS_PER_REQUEST + 1)]}
    assert_problem(await api.put(LIST, json=many), 422)
    assert_problem(await api.patch(LIST, json={"add": many["id_tokens"]}), 422)
    unchanged = (await api.get(LIST)).json()
    assert (unchanged["version"], unchanged["entries"]["total"]) == (0, 0)


def test_only_a_station_back_online_is_decoded_by_the_list_sync() -> None:
    """A connector status (most of station.status) is skipped on its type alone; a record
    that is no event, or of a type the topic does not carry, is decoded (and refused)."""

    def record(value: bytes) -> Delivery:
        return Delivery(STATION_STATUS, 0, 0, "CP-1", value)

    status = ConnectorStatusChanged(
        source="test",
        station_id="CP-1",
        data=ConnectorStatusChangedData(
            evse_id=1,
            connector_id=1,
            status="Available",
            ocpp_status="Available",
            timestamp=utc_now(),
        ),
    )
    assert _of_no_interest(record(status.to_bytes()))
    assert not _of_no_interest(record(b'{"type": "station.connected"}'))
    assert not _of_no_interest(record(b'{"type": "station.booted"}'))
    assert not _of_no_interest(record(b'{"type": "no.such.event"}'))
    assert not _of_no_interest(record(b"[1, 2]"))
    assert not _of_no_interest(record(b"not json"))
