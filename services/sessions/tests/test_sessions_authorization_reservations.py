"""Reservations: ReserveNow, CancelReservation, ReservationStatusUpdate, expiry and use.

OCTT: TC_046..TC_053 (1.6), TC_H_01 / TC_H_07 / TC_H_08 / TC_H_15 / TC_H_17 / TC_H_20 / TC_H_22.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from csms_core.router import CommandOutcome
from csms_ocpp import OcppVersion, schemas
from csms_sessions.reservations.service import mark_reservation_used
from tests.kits.sessions import Harness, assert_problem

RESERVATIONS = "/api/v1/stations/CP-1/reservations"
EXPIRES = "2100-01-01T10:00:00Z"


async def setup(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion, **token: Any
) -> None:
    body = {"type": "ISO14443", "status": "Accepted", "group_id": "FLEET"} | token
    assert (await api.put("/api/v1/id-tokens/TAG-1", json=body)).status_code == 200
    await sessions.processed(await sessions.connect("CP-1", "conn-1", version))


async def reserve(
    api: httpx.AsyncClient,
    sessions: Harness,
    version: OcppVersion,
    body: dict[str, Any],
    status: str = "Accepted",
) -> tuple[dict[str, Any], httpx.Response]:
    """POST the reservation; the station answers ReserveNow with ``status``."""
    response = asyncio.create_task(api.post(RESERVATIONS, json=body))
    command = await sessions.command()
    assert command.action == "ReserveNow"
    assert schemas.validate(version, "ReserveNow", command.payload) is None
    await sessions.reply(command, {"status": status})
    return command.payload, await response


async def test_tc_046_reserve_connector_v16(api: httpx.AsyncClient, sessions: Harness) -> None:
    await setup(api, sessions, OcppVersion.V16)

    sent, response = await reserve(
        api, sessions, OcppVersion.V16, {"id_token": "TAG-1", "evse_id": 1, "expires_at": EXPIRES}
    )

    assert response.status_code == 201, response.text
    reservation = response.json()
    assert sent == {
        "connectorId": 1,
        "expiryDate": "2100-01-01T10:00:00.000Z",
        "idTag": "TAG-1",
        "reservationId": reservation["id"],
        "parentIdTag": "FLEET",
    }
    assert (reservation["status"], reservation["ocpp_status"]) == ("accepted", "Accepted")
    assert (await api.get(f"{RESERVATIONS}/{reservation['id']}")).json() == reservation


async def test_tc_049_reserve_charge_point_v16(api: httpx.AsyncClient, sessions: Harness) -> None:
    await setup(api, sessions, OcppVersion.V16)

    sent, _ = await reserve(
        api, sessions, OcppVersion.V16, {"id_token": "TAG-1", "expires_at": EXPIRES}
    )

    assert sent["connectorId"] == 0


@pytest.mark.parametrize("version", [OcppVersion.V201, OcppVersion.V21])
async def test_tc_h_01_tc_h_15_reserve_evse_with_connector_type(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion
) -> None:
    await setup(api, sessions, version)
    body = {"id_token": "TAG-1", "evse_id": 2, "connector_type": "cType2", "expires_at": EXPIRES}

    sent, response = await reserve(api, sessions, version, body)

    assert sent == {
        "id": response.json()["id"],
        "expiryDateTime": "2100-01-01T10:00:00.000Z",
        "idToken": {"idToken": "TAG-1", "type": "ISO14443"},
        "evseId": 2,
        "connectorType": "cType2",
        "groupIdToken": {"idToken": "FLEET", "type": "Central"},
    }


async def test_tc_h_08_reserve_unspecified_evse(api: httpx.AsyncClient, sessions: Harness) -> None:
    await setup(api, sessions, OcppVersion.V201)

    sent, _ = await reserve(
        api, sessions, OcppVersion.V201, {"id_token": "TAG-1", "expires_at": EXPIRES}
    )

    assert "evseId" not in sent


async def test_reservation_ids_are_allocated_distinct(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await setup(api, sessions, OcppVersion.V16)
    body = {"id_token": "TAG-1", "evse_id": 1, "expires_at": EXPIRES}

    first = (await reserve(api, sessions, OcppVersion.V16, body))[0]["reservationId"]
    second = (await reserve(api, sessions, OcppVersion.V16, body))[0]["reservationId"]

    assert first != second


@pytest.mark.parametrize("status", ["Faulted", "Occupied", "Unavailable", "Rejected"])
async def test_tc_048_tc_h_22_refused_reservation_is_rejected(
    api: httpx.AsyncClient, sessions: Harness, status: str
) -> None:
    await setup(api, sessions, OcppVersion.V16)

    _, response = await reserve(
        api,
        sessions,
        OcppVersion.V16,
        {"id_token": "TAG-1", "evse_id": 1, "expires_at": EXPIRES},
        status,
    )

    assert (response.json()["status"], response.json()["ocpp_status"]) == ("rejected", status)
    listed = (await api.get(RESERVATIONS, params={"status": "rejected"})).json()
    assert [r["id"] for r in listed["items"]] == [response.json()["id"]]


@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201])
async def test_tc_051_tc_h_17_cancel(
    api: httpx.AsyncClient, sessions: Harness, version: OcppVersion
) -> None:
    await setup(api, sessions, version)
    _, created = await reserve(
        api, sessions, version, {"id_token": "TAG-1", "evse_id": 1, "expires_at": EXPIRES}
    )
    reservation_id = created.json()["id"]

    response = asyncio.create_task(api.delete(f"{RESERVATIONS}/{reservation_id}"))
    command = await sessions.command()
    await sessions.reply(command, {"status": "Accepted"})

    assert (command.action, command.payload) == (
        "CancelReservation",
        {"reservationId": reservation_id},
    )
    assert (await response).json()["status"] == "cancelled"
    again = await api.delete(f"{RESERVATIONS}/{reservation_id}")
    assert assert_problem(again, 409)["type"] == "urn:csms:problem:reservation-not-active"


async def test_tc_052_cancel_rejected_keeps_the_reservation(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await setup(api, sessions, OcppVersion.V16)
    _, created = await reserve(
        api, sessions, OcppVersion.V16, {"id_token": "TAG-1", "evse_id": 1, "expires_at": EXPIRES}
    )
    path = f"{RESERVATIONS}/{created.json()['id']}"

    response = asyncio.create_task(api.delete(path))
    await sessions.reply(await sessions.command(), {"status": "Rejected"})

    assert assert_problem(await response, 409)["type"] == "urn:csms:problem:cancel-rejected"
    assert (await api.get(path)).json()["status"] == "accepted"


async def test_tc_047_reservation_past_expiry_reads_expired_v16(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await setup(api, sessions, OcppVersion.V16)
    soon = datetime.now(UTC) + timedelta(seconds=2)  # room for a loaded machine
    body = {"id_token": "TAG-1", "evse_id": 1, "expires_at": soon.isoformat()}
    _, created = await reserve(api, sessions, OcppVersion.V16, body)
    assert created.json()["status"] == "accepted"

    await asyncio.sleep((soon - datetime.now(UTC)).total_seconds() + 0.05)

    assert (await api.get(f"{RESERVATIONS}/{created.json()['id']}")).json()["status"] == "expired"


@pytest.mark.parametrize(("update", "status"), [("Expired", "expired"), ("Removed", "removed")])
async def test_tc_h_07_tc_h_20_reservation_status_update(
    api: httpx.AsyncClient, sessions: Harness, update: str, status: str
) -> None:
    await setup(api, sessions, OcppVersion.V201)
    _, created = await reserve(
        api, sessions, OcppVersion.V201, {"id_token": "TAG-1", "evse_id": 1, "expires_at": EXPIRES}
    )
    reservation_id = created.json()["id"]

    payload = {"reservationId": reservation_id, "reservationUpdateStatus": update}
    event = await sessions.call(
        "CP-1", "ReservationStatusUpdate", payload, version=OcppVersion.V201
    )
    await sessions.processed(event)

    stored = (await api.get(f"{RESERVATIONS}/{reservation_id}")).json()
    assert (stored["status"], stored["ocpp_status"]) == (status, update)


async def test_unknown_reservation_status_update_changes_nothing(sessions: Harness) -> None:
    payload = {"reservationId": 999, "reservationUpdateStatus": "Expired"}
    event = await sessions.call(
        "CP-1", "ReservationStatusUpdate", payload, version=OcppVersion.V201
    )

    await sessions.processed(event)  # handled (logged), no answer owed: the gateway answers


async def test_tc_046_mark_reservation_used(api: httpx.AsyncClient, sessions: Harness) -> None:
    await setup(api, sessions, OcppVersion.V16)
    _, created = await reserve(
        api, sessions, OcppVersion.V16, {"id_token": "TAG-1", "evse_id": 1, "expires_at": EXPIRES}
    )
    reservation_id = created.json()["id"]

    async with sessions.service.factory() as session, session.begin():
        assert await mark_reservation_used(session, "CP-2", reservation_id) is None
        used = await mark_reservation_used(session, "CP-1", reservation_id)
        assert used is not None
        assert await mark_reservation_used(session, "CP-1", reservation_id) is None

    assert (await api.get(f"{RESERVATIONS}/{reservation_id}")).json()["status"] == "used"


async def test_offline_station_is_409_and_stores_nothing(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await api.put("/api/v1/stations/CP-1", json={})
    await api.put("/api/v1/id-tokens/TAG-1", json={"type": "ISO14443", "status": "Accepted"})

    response = await api.post(RESERVATIONS, json={"id_token": "TAG-1", "expires_at": EXPIRES})

    assert assert_problem(response, 409)["type"] == "urn:csms:problem:station-offline"
    assert (await api.get(RESERVATIONS)).json()["total"] == 0


async def test_no_answer_keeps_the_reservation_pending(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    await setup(api, sessions, OcppVersion.V201)

    response = asyncio.create_task(
        api.post(RESERVATIONS, json={"id_token": "TAG-1", "expires_at": EXPIRES})
    )
    await sessions.reply(await sessions.command(), outcome=CommandOutcome.TIMEOUT)

    assert_problem(await response, 504)
    assert [r["status"] for r in (await api.get(RESERVATIONS)).json()["items"]] == ["pending"]


@pytest.mark.parametrize(
    ("version", "body", "status", "kind"),
    [
        (
            OcppVersion.V16,
            {"id_token": "TAG-1", "expires_at": "2020-01-01T00:00:00Z"},
            422,
            "invalid-request",
        ),
        (
            OcppVersion.V16,
            {"id_token": "TAG-1", "expires_at": "2100-01-01T00:00:00"},
            422,
            "invalid-request",
        ),
        (
            OcppVersion.V16,
            {"id_token": "TAG-1", "evse_id": 0, "expires_at": EXPIRES},
            422,
            "invalid-request",
        ),
        (OcppVersion.V16, {"id_token": "NOBODY", "expires_at": EXPIRES}, 422, "token-not-accepted"),
        (
            OcppVersion.V16,
            {"id_token": "BLOCKED", "expires_at": EXPIRES},
            422,
            "token-not-accepted",
        ),
        (
            OcppVersion.V16,
            {"id_token": "TAG-1", "connector_type": "cType2", "expires_at": EXPIRES},
            422,
            "not-in-this-ocpp-version",
        ),
        (
            OcppVersion.V201,
            {"id_token": "TAG-1", "evse_id": 1, "expires_at": EXPIRES, "x": 1},
            422,
            "invalid-request",
        ),
    ],
)
async def test_bad_reservations_are_problems_and_store_nothing(
    api: httpx.AsyncClient,
    sessions: Harness,
    version: OcppVersion,
    body: dict[str, Any],
    status: int,
    kind: str,
) -> None:
    await setup(api, sessions, version)
    await api.put("/api/v1/id-tokens/BLOCKED", json={"type": "ISO14443", "status": "Blocked"})

    problem = assert_problem(await api.post(RESERVATIONS, json=body), status)

    assert problem["type"] == f"urn:csms:problem:{kind}"
    assert (await api.get(RESERVATIONS)).json()["total"] == 0


async def test_unknown_station_and_reservation_are_404(
    api: httpx.AsyncClient, sessions: Harness
) -> None:
    assert_problem(
        await api.post(
            "/api/v1/stations/NOPE/reservations", json={"id_token": "T", "expires_at": EXPIRES}
        ),
        404,
    )
    await setup(api, sessions, OcppVersion.V16)
    assert_problem(await api.get(f"{RESERVATIONS}/42"), 404)
    assert_problem(await api.delete(f"{RESERVATIONS}/42"), 404)
