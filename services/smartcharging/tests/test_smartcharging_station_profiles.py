"""Station-wide profiles: the failsafe on connect, kept current, and a rated station's max."""

from pathlib import Path
from typing import Any

import httpx
import pytest

from csms_core.router import StationCommand
from csms_ocpp import OcppVersion, schemas
from csms_smartcharging.app import create_app
from tests.kits.api import bearer_headers
from tests.kits.smartcharging import (
    Harness,
    eventually,
    running_smartcharging,
    settings_for_tests,
)


def profile(command: StationCommand) -> dict[str, Any]:
    payload = command.payload
    found: dict[str, Any] = payload.get("csChargingProfiles") or payload["chargingProfile"]
    return found


def purpose(command: StationCommand) -> str:
    return str(profile(command)["chargingProfilePurpose"])


def limit(command: StationCommand) -> float:
    schedule = profile(command)["chargingSchedule"]
    schedule = schedule[0] if isinstance(schedule, list) else schedule
    value: float = schedule["chargingSchedulePeriod"][0]["limit"]
    return value


def station_wide(harness: Harness, station_id: str, wanted: str) -> list[float]:
    return [
        limit(c)
        for c in harness.stations.sent(station_id)
        if purpose(c) == wanted and 0 in (c.payload.get("evseId"), c.payload.get("connectorId"))
    ]


async def put_station(
    api: httpx.AsyncClient, station_id: str, evses: int = 2, max_a: float | None = None
) -> None:
    body: dict[str, Any] = {"evses": [{"evse_id": n, "max_a": 32} for n in range(1, evses + 1)]}
    if max_a is not None:
        body["max_a"] = max_a
    response = await api.put(f"/sites/depot/stations/{station_id}", json=body)
    assert response.status_code in (200, 201), response.text


async def test_failsafe_is_sent_on_connect_without_an_allocation(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    assert (await api.put("/sites/depot", json={"limit_a": 40})).status_code == 201
    await put_station(api, "A")
    await harness.service.allocator.drain()
    await harness.connect("A", OcppVersion.V201)

    async def failsafe() -> list[float]:
        return station_wide(harness, "A", "TxDefaultProfile")

    assert await eventually(failsafe) == [20.0]  # 40 A over A's 2 EVSEs
    await harness.service.allocator.drain()
    limits = (await api.get("/stations/A/charging-limits")).json()
    assert [(x["evse_id"], x["purpose"], x["limit_a"], x["outcome"]) for x in limits] == [
        (0, "TxDefaultProfile", 20.0, "Accepted")
    ]


async def test_failsafe_follows_the_site_as_stations_are_added(
    harness: Harness, api: httpx.AsyncClient
) -> None:
    assert (await api.put("/sites/depot", json={"limit_a": 40})).status_code == 201
    await put_station(api, "A")
    await harness.service.allocator.drain()
    await harness.connect("A", OcppVersion.V16)
    await harness.settle()
    assert station_wide(harness, "A", "TxDefaultProfile") == [20.0]

    await put_station(api, "B")  # 4 EVSEs now share 40 A
    await harness.settle()
    await harness.service.allocator.drain()
    assert station_wide(harness, "A", "TxDefaultProfile") == [20.0, 10.0]

    harness.service.allocator.mark_dirty("depot", "tick")  # nothing changed: nothing sent
    await harness.settle()
    await harness.service.allocator.drain()
    assert station_wide(harness, "A", "TxDefaultProfile") == [20.0, 10.0]


@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201, OcppVersion.V21])
async def test_a_rated_station_gets_its_station_max_profile(
    harness: Harness, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    wanted = "ChargePointMaxProfile" if version is OcppVersion.V16 else "ChargingStationMaxProfile"
    assert (await api.put("/sites/depot", json={"limit_a": 100})).status_code == 201
    await put_station(api, "A", max_a=48)
    await harness.service.allocator.drain()
    await harness.connect("A", version)
    await harness.settle()
    assert station_wide(harness, "A", wanted) == [48.0]
    for command in harness.stations.sent("A"):
        assert schemas.validate(version, command.action, command.payload) is None

    await put_station(api, "A", max_a=40)  # re-rated while online: sent again
    await harness.settle()
    await harness.service.allocator.drain()
    assert station_wide(harness, "A", wanted) == [48.0, 40.0]

    response = await api.delete("/sites/depot/stations/A")  # off the site: ours are cleared
    assert response.status_code == 204
    await harness.service.allocator.drain()
    cleared = harness.stations.sent("A", "ClearChargingProfile")
    assert len(cleared) == 1
    assert schemas.validate(version, "ClearChargingProfile", cleared[0].payload) is None


async def test_a_change_seen_by_a_replica_that_does_not_lead_reaches_the_leader(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two replicas on one PostgreSQL: the follower's REST and consumed events make the
    leader allocate at once (NOTIFY), not at its next tick (an hour here)."""
    settings = settings_for_tests(tmp_path, database_url=postgres_url)
    async with running_smartcharging(settings) as leader:
        await eventually(lambda: _true(leader.service.allocator.leads))
        async with running_smartcharging(settings) as follower:
            assert not follower.service.allocator.leads
            transport = httpx.ASGITransport(app=create_app(follower.service))
            headers = await bearer_headers(follower.service.engine)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://sc/api/v1", headers=headers
            ) as api:
                assert (await api.put("/sites/depot", json={"limit_a": 40})).status_code == 201
                await put_station(api, "A")
            # The station is connected to the leader's gateway; its session reaches the
            # follower's consumer (another partition of the topic).
            await leader.connect("A", OcppVersion.V201)
            await leader.settle()  # its failsafe; no session yet, so no TxProfile
            assert station_wide(leader, "A", "TxDefaultProfile") == [20.0]
            follower.versions["A"] = OcppVersion.V201
            await follower.start_session("A", 1, "s1")

            async def tx_profile() -> list[float]:
                return [limit(c) for c in leader.stations.sent("A") if purpose(c) == "TxProfile"]

            assert await eventually(tx_profile, timeout_s=10) == [32.0]
            assert follower.stations.sent("A") == []  # only the leader sends TxProfiles


async def _true(value: bool) -> bool:
    return value
