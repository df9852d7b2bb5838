"""Station password rotation (OCPP 2.0.1 A01/A02, OCTT TC_A_09/TC_A_10; 1.6 security
whitepaper AuthorizationKey): the new password is sent, staged next to the old one while
the station takes it, and never stored in clear, shown or put in an event."""

import asyncio
from typing import Any

import httpx
import pytest

from csms_core.identity import verify_password
from csms_ocpp import OcppVersion, schemas
from tests.kits.sessions import Harness, assert_problem

OLD, NEW = "the-old-password-16", "a-brand-new-pass-20"
ROTATE = "/api/v1/stations/CP-1/password"
CONFIGURATION = "/api/v1/stations/CP-1/configuration"
VERSIONS = pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201])


def _answer(version: OcppVersion, status: str) -> dict[str, Any]:
    if not version.is_2x:
        return {"status": status}
    return {
        "setVariableResult": [
            {
                "attributeStatus": status,
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
            }
        ]
    }


async def _registered_and_online(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion
) -> None:
    assert (await api.put("/api/v1/stations/CP-1", json={"password": OLD})).status_code == 200
    await sessions.processed(await sessions.connect("CP-1", "conn-1", version))


async def _station_answers(sessions: Harness, version: OcppVersion, status: str) -> Any:
    command = await sessions.command()
    assert schemas.validate(version, command.action, command.payload) is None
    await sessions.reply(command, _answer(version, status))
    return command


@VERSIONS
async def test_tc_a_09_the_new_password_is_staged_until_the_station_uses_it(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion
) -> None:
    await _registered_and_online(api, sessions, version)
    response = asyncio.create_task(api.put(ROTATE, json={"password": NEW}))
    command = await _station_answers(sessions, version, "Accepted")
    answer = await response
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "Accepted", "rotated": True}
    if version.is_2x:
        [item] = command.payload["setVariableData"]
        assert (item["variable"]["name"], item["attributeValue"]) == ("BasicAuthPassword", NEW)
    else:
        assert command.payload == {"key": "AuthorizationKey", "value": NEW}
    identity = await sessions.service.identities.get("CP-1")
    assert identity is not None and identity.password_hash and identity.pending_password_hash
    assert verify_password(OLD, identity.password_hash)  # still valid: not reconnected yet
    assert verify_password(NEW, identity.pending_password_hash)
    assert NEW not in answer.text


@VERSIONS
async def test_tc_a_10_a_password_the_station_refuses_is_forgotten(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion
) -> None:
    await _registered_and_online(api, sessions, version)
    response = asyncio.create_task(api.put(ROTATE, json={"password": NEW}))
    await _station_answers(sessions, version, "Rejected")
    answer = await response
    assert answer.json() == {"status": "Rejected", "rotated": False}
    identity = await sessions.service.identities.get("CP-1")
    assert identity is not None and identity.password_hash is not None
    assert identity.pending_password_hash is None
    assert verify_password(OLD, identity.password_hash)


async def test_a_password_set_as_configuration_is_rotated_and_never_stored_or_shown(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await _registered_and_online(api, sessions, OcppVersion.V16)
    items = [{"key": "AuthorizationKey", "value": NEW}]
    response = asyncio.create_task(api.put(CONFIGURATION, json={"items": items}))
    await _station_answers(sessions, OcppVersion.V16, "Accepted")
    answer = await response
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"items": [{"key": "AuthorizationKey", "status": "Accepted"}]}
    stored = await api.get(CONFIGURATION, params={"limit": 500})
    assert NEW not in stored.text
    identity = await sessions.service.identities.get("CP-1")
    assert identity is not None and identity.pending_password_hash is not None
    assert verify_password(NEW, identity.pending_password_hash)


async def test_a_password_set_as_a_2x_variable_is_rotated_and_never_stored_or_shown(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await _registered_and_online(api, sessions, OcppVersion.V201)
    items = [{"component": "SecurityCtrlr", "variable": "BasicAuthPassword", "value": NEW}]
    response = asyncio.create_task(api.put(CONFIGURATION, json={"items": items}))
    await _station_answers(sessions, OcppVersion.V201, "Accepted")
    answer = await response
    assert answer.status_code == 200, answer.text
    [item] = answer.json()["items"]
    assert (item["status"], item.get("value")) == ("Accepted", None)
    assert NEW not in (await api.get(CONFIGURATION, params={"limit": 500})).text
    identity = await sessions.service.identities.get("CP-1")
    assert identity is not None and identity.pending_password_hash is not None


async def test_rotation_needs_a_connected_station_and_a_long_password(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    assert_problem(await api.put(ROTATE, json={"password": NEW}), 404)  # unknown
    await api.put("/api/v1/stations/CP-1", json={"password": OLD})
    assert_problem(await api.put(ROTATE, json={"password": NEW}), 409)  # offline
    await sessions.processed(await sessions.connect("CP-1", "conn-1", OcppVersion.V201))
    assert_problem(await api.put(ROTATE, json={"password": "short"}), 422)
    identity = await sessions.service.identities.get("CP-1")
    assert identity is not None and identity.pending_password_hash is None
