"""Local lists and reservations end to end: REST replica → Redis → gateway → real station.

Two gateways and two sessions replicas on real Kafka, Redis and PostgreSQL; the
stations are the ``ocpp`` package's ChargePoint keeping a real local list.
"""

import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import Cluster
from tests.station_handlers_auth import AuthStation, auth_station
from tests.waiting import eventually

pytestmark = pytest.mark.integration

VERSIONS = ["1.6", "2.0.1"]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def put(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.put(path, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def online(client: httpx.AsyncClient, station_id: str) -> bool:
    response = await client.get(f"/stations/{station_id}")
    return response.status_code == 200 and bool(response.json()["online"])


async def blocked_on(station: AuthStation, token: str) -> bool:
    info = station.local_list.get(token)
    return info is not None and info["status"] == "Blocked"


@pytest.mark.parametrize("version", VERSIONS)
async def test_local_list_full_differential_and_token_change_reach_the_station(
    running_cluster: Cluster, version: str
) -> None:
    csms, station_id = running_cluster, new_id("LL")
    tag_1, tag_2 = new_id("T"), new_id("T")
    async with httpx.AsyncClient(
        base_url=csms.api_url(0), headers=csms.admin, timeout=30
    ) as client:
        await put(client, f"/stations/{station_id}", {})
        for token in (tag_1, tag_2):
            await put(client, f"/id-tokens/{token}", {"type": "ISO14443", "status": "Accepted"})

        async with auth_station(csms.ocpp_url(1), station_id, version) as station:
            await eventually(lambda: online(client, station_id))
            full = await put(
                client, f"/stations/{station_id}/local-list", {"id_tokens": [{"id_token": tag_1}]}
            )
            assert (full["last_status"], full["pending"]) == ("Accepted", False)
            assert station.local_list.keys() == {tag_1}

            response = await client.patch(
                f"/stations/{station_id}/local-list",
                json={"add": [{"id_token": tag_2}], "remove": [{"id_token": tag_1}]},
            )
            assert response.status_code == 200, response.text
            assert station.local_list.keys() == {tag_2}
            assert station.list_version == response.json()["station_version"] == 2

            # A token change reaches the station without any list call (background sync).
            await put(client, f"/id-tokens/{tag_2}", {"type": "ISO14443", "status": "Blocked"})
            await eventually(lambda: blocked_on(station, tag_2), timeout_s=30)
            kinds = [
                p.get("update_type") for action, p in station.received if action == "SendLocalList"
            ]
            assert kinds == ["Full", "Differential", "Differential"]

            check = await client.post(f"/stations/{station_id}/local-list/version-check")
            assert check.json() == {"station_version": 3, "version": 3, "matches": True}


@pytest.mark.parametrize("version", VERSIONS)
async def test_reservation_round_trip(running_cluster: Cluster, version: str) -> None:
    csms, station_id, token = running_cluster, new_id("RES"), new_id("T")
    async with httpx.AsyncClient(
        base_url=csms.api_url(1), headers=csms.admin, timeout=30
    ) as client:
        await put(client, f"/stations/{station_id}", {})
        await put(client, f"/id-tokens/{token}", {"type": "ISO14443", "status": "Accepted"})
        async with auth_station(csms.ocpp_url(0), station_id, version) as station:
            await eventually(lambda: online(client, station_id))
            created = await client.post(
                f"/stations/{station_id}/reservations",
                json={"id_token": token, "evse_id": 1, "expires_at": "2100-01-01T00:00:00Z"},
            )
            assert created.status_code == 201, created.text
            reservation = created.json()
            assert (reservation["status"], reservation["ocpp_status"]) == ("accepted", "Accepted")
            assert station.reservations == {reservation["id"]}

            path = f"/stations/{station_id}/reservations/{reservation['id']}"
            cancelled = await client.delete(path)
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "cancelled"
            assert station.reservations == set()
            assert [a for a, _ in station.received] == ["ReserveNow", "CancelReservation"]

    async with httpx.AsyncClient(
        base_url=csms.api_url(0), headers=csms.admin, timeout=30
    ) as other_replica:
        listed = (await other_replica.get(f"/stations/{station_id}/reservations")).json()
        assert [(r["id"], r["status"]) for r in listed["items"]] == [
            (reservation["id"], "cancelled")
        ]
