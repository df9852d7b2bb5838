"""Nothing acknowledged is lost when a sessions replica crashes or Redis restarts.

A cluster of its own (two gateways, two sessions replicas) with a short route
refresh period, so a restarted Redis gets its routes back within a second.
"""

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.cluster import Infra, PrivateBrokers
from tests.conftest import Cluster, reset_state
from tests.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def private_redis(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateBrokers]:
    """A Redis server of the module's own: a test restarts it, and others share ours."""
    state_dir = tmp_path_factory.mktemp("redis-of-its-own")
    with PrivateBrokers.running(infra, state_dir, kafka=False, redis=True) as brokers:
        yield brokers


@pytest.fixture(scope="module")
def resilient_cluster(
    private_redis: PrivateBrokers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    reset_state(private_redis.infra)
    csms = Cluster(
        private_redis.infra,
        tmp_path_factory.mktemp("resilience-logs"),
        CSMS_ROUTE_REFRESH_S="1",
        CSMS_UNKNOWN_STATION_POLICY="accept",
    )
    try:
        csms.start()
        yield csms
    finally:
        csms.stop()


async def _call(websocket: ClientConnection, message_id: str, action: str, payload: Any) -> Any:
    await websocket.send(orjson.dumps([2, message_id, action, payload]).decode())
    answer = orjson.loads(await asyncio.wait_for(websocket.recv(), 30))
    assert answer[1] == message_id
    return answer


STATUSES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")


def _status(evse_id: int, status: str, second: int) -> dict[str, Any]:
    return {
        "timestamp": f"2026-11-25T11:{second // 60:02d}:{second % 60:02d}Z",
        "connectorStatus": status,
        "evseId": evse_id,
        "connectorId": 1,
    }


async def test_sessions_replica_crash_loses_no_acknowledged_status(
    resilient_cluster: Cluster,
) -> None:
    csms = resilient_cluster
    station_id = f"CRASH-{uuid.uuid4().hex[:8]}"
    expected: dict[int, str] = {}
    async with connect(
        f"{csms.ocpp_url(0)}/ocpp/{station_id}",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
    ) as websocket:
        for second in range(60):
            if second == 20:
                csms.sessions[0].kill()  # mid-traffic, no goodbye
            evse_id = second % 4 + 1
            status = STATUSES[second % len(STATUSES)]
            answer = await _call(
                websocket, f"s{second}", "StatusNotification", _status(evse_id, status, second)
            )
            assert answer[0] == 3
            expected[evse_id] = status

    try:
        async with httpx.AsyncClient(
            base_url=csms.api_url(1), headers=csms.admin, timeout=30
        ) as client:

            async def all_applied() -> bool:
                response = await client.get(f"/stations/{station_id}")
                if response.status_code != 200:
                    return False
                stored = {c["evse_id"]: c["status"] for c in response.json()["connectors"]}
                return stored == expected

            await eventually(all_applied, timeout_s=60, interval_s=0.5)
    finally:
        csms.sessions[0].start()


def _restart_redis(brokers: PrivateBrokers) -> None:
    redis_url = brokers.infra.redis_url
    subprocess.run(["redis-cli", "-u", redis_url, "shutdown", "nosave"], check=False, timeout=30)
    brokers.run("start")


async def test_redis_restart_routes_come_back_and_commands_flow(
    resilient_cluster: Cluster, private_redis: PrivateBrokers
) -> None:
    csms = resilient_cluster
    station_id = f"REDIS-{uuid.uuid4().hex[:8]}"
    async with connect(
        f"{csms.ocpp_url(1)}/ocpp/{station_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
    ) as websocket:
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        assert (await _call(websocket, "b1", "BootNotification", boot))[2]["status"] == "Accepted"
        await asyncio.to_thread(_restart_redis, private_redis)

        async with httpx.AsyncClient(
            base_url=csms.api_url(0), headers=csms.admin, timeout=30
        ) as client:
            command = asyncio.create_task(_reset_when_routed(client, station_id))
            request = orjson.loads(await asyncio.wait_for(websocket.recv(), 40))
            assert request[0] == 2
            assert request[2:] == ["Reset", {"type": "Soft"}]
            await websocket.send(orjson.dumps([3, request[1], {"status": "Accepted"}]).decode())
            response = await command
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Accepted"
        # Station CALLs that need a service's answer get one again (the reply mailbox is
        # back), at once: the gateway holds the replicas it read for what was left of their
        # TTL (csms_core.calls.directory), so the seconds before each renews its
        # announcement in the new Redis are no Pending for want of a decision.
        answer = await _call(websocket, "b2", "BootNotification", boot)
        assert answer[2]["status"] == "Accepted"


async def _reset_when_routed(client: httpx.AsyncClient, station_id: str) -> httpx.Response:
    """Retry while the route is still missing (409) right after the restart."""
    for _ in range(100):
        response = await client.post(
            f"/stations/{station_id}/commands/reset", json={"type": "soft"}
        )
        if response.status_code != 409:
            return response
        await asyncio.sleep(0.2)
    return response
