"""The spine end to end: stations ⇄ two gateways ⇄ Kafka ⇄ two sessions replicas ⇄ Redis.

Every test runs against real processes (two ``csms gateway``, two ``csms sessions``)
on real Kafka, Redis and PostgreSQL. Stations are played by the ``ocpp``
package's ChargePoint (an independent implementation) or by raw WebSockets.
"""

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from csms_core import topics
from tests import stations
from tests.conftest import Cluster
from tests.topic_reader import read_topic
from tests.waiting import eventually

pytestmark = pytest.mark.integration

VERSIONS = ["1.6", "2.0.1", "2.1"]


def new_station_id(prefix: str = "CP") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def register(csms: Cluster, station_id: str, **body: Any) -> None:
    async with httpx.AsyncClient(base_url=csms.api_url(0), headers=csms.admin) as client:
        response = await client.put(f"/stations/{station_id}", json=body)
        assert response.status_code in (200, 201), response.text


async def get_station(csms: Cluster, station_id: str, replica: int = 0) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=csms.api_url(replica), headers=csms.admin) as client:
        response = await client.get(f"/stations/{station_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.mark.parametrize("version", VERSIONS)
async def test_tc_b_01_cold_boot_heartbeat_status_authorize(
    running_cluster: Cluster, version: str
) -> None:
    csms = running_cluster
    station_id = new_station_id()
    await register(csms, station_id)
    async with httpx.AsyncClient(base_url=csms.api_url(1), headers=csms.admin) as client:
        response = await client.put(
            "/id-tokens/TOKEN-OK", json={"type": "ISO14443", "status": "Accepted"}
        )
        assert response.status_code in (200, 201), response.text

    async with stations.station(csms.ocpp_url(1), station_id, version) as station:
        boot = await station.call(stations.boot_call(version))
        assert boot.status == "Accepted"
        assert boot.interval > 0

        heartbeat = await station.call(stations.heartbeat_call(version))
        assert heartbeat.current_time.endswith("Z")

        status = "Available"
        await station.call(stations.status_call(version, 1, status, "2026-11-25T10:00:00Z"))

        accepted = await station.call(stations.authorize_call(version, "TOKEN-OK"))
        unknown = await station.call(stations.authorize_call(version, "NOBODY"))
        if version == "1.6":
            assert accepted.id_tag_info["status"] == "Accepted"
            assert unknown.id_tag_info["status"] == "Invalid"
        else:
            assert accepted.id_token_info["status"] == "Accepted"
            assert unknown.id_token_info["status"] == "Unknown"

        async def booted_and_available() -> dict[str, Any] | None:
            body = await get_station(csms, station_id, replica=1)
            connectors = body.get("connectors") or []
            ready = body["online"] and body["vendor"] == "TestVendor" and connectors
            return body if ready and connectors[0]["status"] == "Available" else None

        body = await eventually(booted_and_available)
        assert body["ocpp_version"] == version
        assert body["model"] == "TestModel"

    inbound = await read_topic(
        csms.infra.kafka_bootstrap, csms.topic(topics.OCPP_INBOUND), station_id
    )
    actions = [event.data["action"] for event in inbound]
    assert actions == [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "Authorize",
        "Authorize",
    ]
    assert all(event.ocpp_version == version for event in inbound)


async def test_tc_b_03_unknown_station_rejected_in_distributed_mode(
    running_cluster: Cluster,
) -> None:
    station_id = new_station_id("UNKNOWN")
    async with stations.station(running_cluster.ocpp_url(0), station_id, "2.0.1") as station:
        boot = await station.call(stations.boot_call("2.0.1"))
        assert boot.status == "Rejected"


async def test_tc_a_01_to_03_basic_auth_on_real_gateway(running_cluster: Cluster) -> None:
    csms = running_cluster
    station_id = new_station_id("SECURE")
    password = "a-very-secret-password"
    await register(csms, station_id, password=password)

    with pytest.raises(InvalidStatus) as refused:
        async with stations.station(csms.ocpp_url(0), station_id, "2.0.1", "wrong-password-123"):
            pass
    assert refused.value.response.status_code == 401

    async with stations.station(csms.ocpp_url(0), station_id, "2.0.1", password) as station:
        boot = await station.call(stations.boot_call("2.0.1"))
        assert boot.status == "Accepted"


@pytest.mark.parametrize("version", VERSIONS)
async def test_rest_command_reaches_station_held_by_other_gateway(
    running_cluster: Cluster, version: str
) -> None:
    """TC_013 (1.6 hard reset) / TC_B_21 style: the REST replica and the gateway differ."""
    csms = running_cluster
    station_id = new_station_id()
    await register(csms, station_id)
    async with stations.station(csms.ocpp_url(1), station_id, version) as station:
        await station.call(stations.boot_call(version))
        for replica in (0, 1):
            async with httpx.AsyncClient(
                base_url=csms.api_url(replica), headers=csms.admin, timeout=30
            ) as client:
                response = await client.post(
                    f"/stations/{station_id}/commands/reset", json={"type": "hard"}
                )
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "Accepted"
        expected = {"type": "Hard"} if version == "1.6" else {"type": "Immediate"}
        assert station.received == [("Reset", expected), ("Reset", expected)]

    results = await read_topic(
        csms.infra.kafka_bootstrap, csms.topic(topics.OCPP_COMMAND_RESULTS), station_id
    )
    assert [event.data["outcome"] for event in results] == ["result", "result"]


async def test_command_errors_unknown_offline_and_timeout(running_cluster: Cluster) -> None:
    csms = running_cluster
    async with httpx.AsyncClient(
        base_url=csms.api_url(0), headers=csms.admin, timeout=30
    ) as client:
        unknown = await client.post(
            f"/stations/{new_station_id('NOPE')}/commands/reset", json={"type": "soft"}
        )
        assert unknown.status_code == 404
        assert unknown.headers["content-type"].startswith("application/problem+json")

        offline_id = new_station_id("OFF")
        await register(csms, offline_id)
        offline = await client.post(f"/stations/{offline_id}/commands/reset", json={"type": "soft"})
        assert offline.status_code == 409
        assert offline.json()["status"] == 409

        silent_id = new_station_id("SILENT")
        await register(csms, silent_id)
        async with connect(
            f"{csms.ocpp_url(0)}/ocpp/{silent_id}",
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        ):
            await eventually(lambda: _routed(client, silent_id))
            timeout = await client.post(
                f"/stations/{silent_id}/commands/reset",
                params={"timeout_s": 1},
                json={"type": "soft"},
            )
            assert timeout.status_code == 504, timeout.text


async def _routed(client: httpx.AsyncClient, station_id: str) -> bool:
    response = await client.get(f"/stations/{station_id}")
    return response.status_code == 200 and bool(response.json()["online"])


@pytest.mark.parametrize(
    ("version", "frame", "expected"),
    [
        ("1.6", b"not json", [4, "-1", "FormationViolation"]),
        ("2.0.1", b"not json", [4, "-1", "RpcFrameworkError"]),
        ("2.1", b'{"an": "object"}', [4, "-1", "RpcFrameworkError"]),
        ("2.0.1", b'[9, "m1", "Heartbeat", {}]', [4, "m1", "MessageTypeNotSupported"]),
        ("1.6", b'[2, "m2", "FlyToTheMoon", {}]', [4, "m2", "NotImplemented"]),
        ("2.0.1", b'[2, "m3", "Reset", {"type": "Immediate"}]', [4, "m3", "NotSupported"]),
        ("1.6", b'[2, "m4", "BootNotification", {}]', [4, "m4", "OccurenceConstraintViolation"]),
        ("2.1", b'[2, "m5", "Heartbeat", {"extra": 1}]', [4, "m5", "FormatViolation"]),
        (
            "2.0.1",
            b'[2, "m6", "StatusNotification", {"timestamp": "2026-11-25T10:00:00Z", '
            b'"connectorStatus": "Available", "evseId": "one", "connectorId": 1}]',
            [4, "m6", "TypeConstraintViolation"],
        ),
    ],
)
async def test_malformed_frames_get_the_right_callerror_through_the_real_gateway(
    running_cluster: Cluster, version: str, frame: bytes, expected: list[Any]
) -> None:
    station_id = new_station_id("BAD")
    async with connect(
        f"{running_cluster.ocpp_url(0)}/ocpp/{station_id}",
        subprotocols=[stations.SUBPROTOCOL[version]],  # type: ignore[list-item]
    ) as websocket:
        await websocket.send(frame.decode())
        answer = orjson.loads(await asyncio.wait_for(websocket.recv(), 10))
        assert answer[:3] == expected
        # The connection survives a bad frame: a valid Heartbeat is still answered.
        await websocket.send(orjson.dumps([2, "ok-1", "Heartbeat", {}]).decode())
        heartbeat = orjson.loads(await asyncio.wait_for(websocket.recv(), 10))
        assert heartbeat[:2] == [3, "ok-1"]
        assert "currentTime" in heartbeat[2]


async def test_station_follows_to_other_gateway_after_its_gateway_is_killed(
    running_cluster: Cluster,
) -> None:
    csms = running_cluster
    station_id = new_station_id("MOVER")
    await register(csms, station_id)
    first = csms.gateways[0]
    async with stations.station(csms.ocpp_url(0), station_id, "2.0.1") as station:
        await station.call(stations.boot_call("2.0.1"))
        first.kill()
        # A crashed gateway leaves no goodbye: the connection just drops.
        await asyncio.wait_for(stations.websocket_of(station).wait_closed(), 10)

    try:
        async with stations.station(csms.ocpp_url(1), station_id, "2.0.1") as station:
            await station.call(stations.boot_call("2.0.1"))
            async with httpx.AsyncClient(
                base_url=csms.api_url(0), headers=csms.admin, timeout=30
            ) as client:
                response = await client.post(
                    f"/stations/{station_id}/commands/trigger-message",
                    json={"message": "Heartbeat"},
                )
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "Accepted"
            assert station.received == [("TriggerMessage", {"requested_message": "Heartbeat"})]
    finally:
        first.start()
