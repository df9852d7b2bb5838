"""2.x customer information (OCPP 2.0.1 N09/N10, OCTT TC_N_27..TC_N_63): CustomerInformation
by idToken, customerIdentifier or customerCertificate, the NotifyCustomerInformation parts
that follow assembled per request, and a cleared idToken leaving the local list (TC_N_46)."""

import asyncio
from typing import Any

import httpx
import pytest

from csms_core.router import StationCommand
from csms_ocpp import OcppVersion, schemas
from tests.kits.sessions import Harness, assert_problem

STATION = "/api/v1/stations/CP-1"
API = f"{STATION}/customer-information"
TOKEN = {"id_token": "04A2B3C4D5E6F7", "type": "ISO14443"}
CERTIFICATE = {
    "hash_algorithm": "SHA256",
    "issuer_name_hash": "a" * 64,
    "issuer_key_hash": "b" * 64,
    "serial_number": "0102",
}


async def connect(sessions: Harness, version: OcppVersion = OcppVersion.V201) -> None:
    await sessions.processed(await sessions.connect("CP-1", "conn-1", version))


async def exchange(sessions: Harness, reply: dict[str, Any]) -> StationCommand:
    command = await sessions.command()
    assert schemas.validate(OcppVersion.V201, command.action, command.payload) is None
    assert schemas.validate(OcppVersion.V201, command.action, reply, response=True) is None
    await sessions.reply(command, reply)
    return command


async def ask(
    api: httpx.AsyncClient, sessions: Harness, body: dict[str, Any], status: str
) -> tuple[StationCommand, dict[str, Any]]:
    response = asyncio.create_task(api.post(API, json=body))
    command = await exchange(sessions, {"status": status})
    answer = await response
    assert answer.status_code == 200, answer.text
    return command, answer.json()


async def notify(sessions: Harness, request_id: int, seq_no: int, data: str, *, tbc: bool) -> None:
    payload = {
        "requestId": request_id,
        "seqNo": seq_no,
        "generatedAt": "2026-11-25T10:00:00Z",
        "tbc": tbc,
        "data": data,
    }
    assert schemas.validate(OcppVersion.V201, "NotifyCustomerInformation", payload) is None
    event = await sessions.call(
        "CP-1", "NotifyCustomerInformation", payload, version=OcppVersion.V201
    )
    await sessions.processed(event)


async def requested(api: httpx.AsyncClient, request_id: int) -> dict[str, Any]:
    response = await api.get(f"{API}/{request_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_tc_n_27_get_customer_information_accepted_with_data(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)

    command, answer = await ask(api, sessions, {"report": True, "id_token": TOKEN}, "Accepted")
    request_id = command.payload["requestId"]
    await notify(sessions, request_id, 1, "last used 2026-11-24", tbc=False)
    midway = await requested(api, request_id)
    await notify(sessions, request_id, 0, "card 04A2B3C4D5E6F7; ", tbc=True)
    await notify(sessions, request_id, 0, "card 04A2B3C4D5E6F7; ", tbc=True)

    assert (command.action, command.payload) == (
        "CustomerInformation",
        {
            "requestId": request_id,
            "report": True,
            "clear": False,
            "idToken": {"idToken": "04A2B3C4D5E6F7", "type": "ISO14443"},
        },
    )
    assert (answer["status"], answer["request_id"], answer["removed_from_local_list"]) == (
        "Accepted",
        request_id,
        False,
    )
    assert (midway["state"], midway["missing_seq_nos"]) == ("incomplete", [0])
    done = await requested(api, request_id)
    assert (done["state"], done["parts_received"], done["data"]) == (
        "complete",
        2,
        "card 04A2B3C4D5E6F7; last used 2026-11-24",
    )
    listed = (await api.get(API)).json()
    assert [item["request_id"] for item in listed["items"]] == [request_id]


async def test_tc_n_28_get_customer_information_accepted_no_data(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)

    command, _ = await ask(api, sessions, {"report": True, "id_token": TOKEN}, "Accepted")
    await notify(sessions, command.payload["requestId"], 0, "", tbc=False)

    done = await requested(api, command.payload["requestId"])
    assert (done["state"], done["data"]) == ("complete", "")


async def test_tc_n_29_get_customer_information_not_accepted(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)

    command, answer = await ask(
        api, sessions, {"report": True, "customer_identifier": "nobody"}, "Rejected"
    )

    assert answer["status"] == "Rejected"
    done = await requested(api, command.payload["requestId"])
    assert (done["status"], done["state"], done["data"]) == ("Rejected", "rejected", None)


@pytest.mark.parametrize(
    ("customer", "sent"),
    [
        pytest.param(
            {"id_token": TOKEN},
            {"idToken": {"idToken": "04A2B3C4D5E6F7", "type": "ISO14443"}},
            id="tc_n_30_id_token",
        ),
        pytest.param(
            {"customer_identifier": "customer-42"},
            {"customerIdentifier": "customer-42"},
            id="tc_n_62_customer_identifier",
        ),
        pytest.param(
            {"customer_certificate": CERTIFICATE},
            {
                "customerCertificate": {
                    "hashAlgorithm": "SHA256",
                    "issuerNameHash": "a" * 64,
                    "issuerKeyHash": "b" * 64,
                    "serialNumber": "0102",
                }
            },
            id="tc_n_63_customer_certificate",
        ),
    ],
)
async def test_tc_n_30_tc_n_62_tc_n_63_clear_and_report_with_data(
    api: httpx.AsyncClient, sessions: Harness, customer: dict[str, Any], sent: dict[str, Any]
) -> None:
    await connect(sessions)

    command, _ = await ask(api, sessions, {"report": True, "clear": True} | customer, "Accepted")
    await notify(sessions, command.payload["requestId"], 0, "2 sessions; cleared", tbc=False)

    assert (
        command.payload
        == {"requestId": command.payload["requestId"], "report": True, "clear": True} | sent
    )
    done = await requested(api, command.payload["requestId"])
    assert (done["state"], done["data"]) == ("complete", "2 sessions; cleared")


async def test_tc_n_31_clear_and_report_no_data(api: httpx.AsyncClient, sessions: Harness) -> None:
    await connect(sessions)

    command, _ = await ask(
        api, sessions, {"report": True, "clear": True, "id_token": TOKEN}, "Accepted"
    )
    await notify(sessions, command.payload["requestId"], 0, "", tbc=False)

    assert (await requested(api, command.payload["requestId"]))["state"] == "complete"


async def test_tc_n_32_clear_and_no_report(api: httpx.AsyncClient, sessions: Harness) -> None:
    await connect(sessions)

    command, answer = await ask(
        api, sessions, {"clear": True, "customer_identifier": "customer-42"}, "Accepted"
    )

    assert (command.payload["report"], command.payload["clear"]) == (False, True)
    assert answer["status"] == "Accepted"
    done = await requested(api, command.payload["requestId"])
    assert (done["state"], done["data"]) == ("complete", None)


async def test_tc_n_46_clear_customer_information_updates_the_local_list(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    for id_token in ("04A2B3C4D5E6F7", "OTHER-1"):
        token = {"type": "ISO14443", "status": "Accepted"}
        assert (await api.put(f"/api/v1/id-tokens/{id_token}", json=token)).status_code == 200
    await connect(sessions)
    full = asyncio.create_task(
        api.put(
            f"{STATION}/local-list",
            json={"id_tokens": [{"id_token": "04A2B3C4D5E6F7"}, {"id_token": "OTHER-1"}]},
        )
    )
    sent_full = await exchange(sessions, {"status": "Accepted"})
    assert (await full).status_code == 200

    # A lower-case idToken names the same token (OCPP 2.0.1: idToken is case-insensitive).
    lower = {"id_token": "04a2b3c4d5e6f7", "type": "ISO14443"}
    _, answer = await ask(api, sessions, {"clear": True, "id_token": lower}, "Accepted")
    differential = await exchange(sessions, {"status": "Accepted"})

    assert sent_full.payload["updateType"] == "Full"
    assert answer["removed_from_local_list"] is True
    assert (differential.action, differential.payload) == (
        "SendLocalList",
        {
            "versionNumber": 2,
            "updateType": "Differential",
            "localAuthorizationList": [
                {"idToken": {"idToken": "04A2B3C4D5E6F7", "type": "ISO14443"}}
            ],
        },
    )

    async def entries() -> list[str]:
        body = (await api.get(f"{STATION}/local-list")).json()
        return [e["id_token"] for e in body["entries"]["items"]]

    async with asyncio.timeout(15):
        while await entries() != ["OTHER-1"]:
            await asyncio.sleep(0.02)

    # The next Full update no longer carries it (sent once the background sync that sent
    # the Differential has let go of the list: until then a sync finds it held).
    async def full_sync() -> None:
        while not await sessions.service.local_lists.sync("CP-1", full=True):
            await asyncio.sleep(0.02)

    resync = asyncio.create_task(full_sync())
    again = await exchange(sessions, {"status": "Accepted"})
    await resync
    assert again.payload["updateType"] == "Full"
    assert [e["idToken"]["idToken"] for e in again.payload["localAuthorizationList"]] == ["OTHER-1"]


async def test_a_rejected_clear_keeps_the_token_on_the_local_list(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    token = {"type": "ISO14443", "status": "Accepted"}
    assert (await api.put("/api/v1/id-tokens/04A2B3C4D5E6F7", json=token)).status_code == 200
    await connect(sessions)
    full = asyncio.create_task(
        api.put(f"{STATION}/local-list", json={"id_tokens": [{"id_token": "04A2B3C4D5E6F7"}]})
    )
    await exchange(sessions, {"status": "Accepted"})
    await full

    _, answer = await ask(api, sessions, {"clear": True, "id_token": TOKEN}, "Rejected")

    assert answer["removed_from_local_list"] is False
    body = (await api.get(f"{STATION}/local-list")).json()
    assert [(e["id_token"], e["removed"]) for e in body["entries"]["items"]] == [
        ("04A2B3C4D5E6F7", False)
    ]


# Bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"report": True},
        {"report": True, "id_token": TOKEN, "customer_identifier": "x"},
        {"report": True, "customer_identifier": "x", "customer_certificate": CERTIFICATE},
        {"id_token": TOKEN},
        {"report": False, "clear": False, "id_token": TOKEN},
        {"report": True, "customer_identifier": ""},
        {"report": True, "customer_identifier": "x" * 65},
        {"report": True, "id_token": {"id_token": "x" * 37, "type": "ISO14443"}},
        {"report": True, "id_token": {"id_token": "x"}},
        {"report": True, "customer_certificate": CERTIFICATE | {"hash_algorithm": "MD5"}},
        {"report": "yes", "customer_identifier": "x"},
        {"report": True, "customer_identifier": "x", "extra": 1},
    ],
)
async def test_malformed_bodies_are_422_and_nothing_is_sent(
    api: httpx.AsyncClient, sessions: Harness, body: dict[str, Any]
) -> None:
    await connect(sessions)

    response = await api.post(API, json=body)

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:invalid-request"


async def test_an_id_token_type_2_0_1_does_not_know_is_refused_by_its_schema(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await connect(sessions)

    response = await api.post(
        API, json={"report": True, "id_token": {"id_token": "x", "type": "Wristband"}}
    )

    assert assert_problem(response, 422)["type"] == "urn:csms:problem:invalid-ocpp-payload"


async def test_unknown_station_404_offline_409_and_v16_422(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    body = {"report": True, "customer_identifier": "x"}
    unknown = await api.post(API, json=body)
    unknown_read = await api.get(API)
    await api.put(STATION, json={})
    offline = await api.post(API, json=body)
    missing = await api.get(f"{API}/5")
    await connect(sessions, OcppVersion.V16)
    v16 = await api.post(API, json=body)

    assert assert_problem(unknown, 404)["type"] == "urn:csms:problem:unknown-station"
    assert assert_problem(unknown_read, 404)["type"] == "urn:csms:problem:unknown-station"
    assert assert_problem(offline, 409)["type"] == "urn:csms:problem:station-offline"
    assert assert_problem(missing, 404)["type"] == "urn:csms:problem:unknown-report"
    assert assert_problem(v16, 422)["type"] == "urn:csms:problem:not-in-this-ocpp-version"
