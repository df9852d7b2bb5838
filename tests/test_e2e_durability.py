"""Nothing acknowledged is lost: the Kafka broker dies mid-traffic and comes back.

Stations (raw WebSockets, so every frame is under the test's control) keep
sending CALLs to both gateways while the broker is SIGKILLed and restarted.
Every CALL a station got a CALLRESULT for must then be on ``ocpp.inbound``
exactly once and exactly as sent.
"""

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from csms_core import topics
from tests.cluster import Infra, PrivateBrokers
from tests.conftest import Cluster, reset_state
from tests.topic_reader import read_topic

ANSWER_WAIT_S = 120.0

pytestmark = pytest.mark.integration


@dataclass
class Traffic:
    """What one station sent, and what happened to each CALL."""

    station_id: str
    acknowledged: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    acknowledged_after_restart: int = 0
    acknowledged_at: list[float] = field(default_factory=list)


def _status_call(index: int) -> tuple[str, dict[str, Any]]:
    second = index % 60
    return (
        "StatusNotification",
        {
            "timestamp": f"2026-11-25T10:{index // 60 % 60:02d}:{second:02d}Z",
            "connectorStatus": "Occupied" if index % 2 else "Available",
            "evseId": 1,
            "connectorId": 1,
        },
    )


async def _drive(url: str, traffic: Traffic, stop: asyncio.Event, restarted: asyncio.Event) -> None:
    async with connect(
        f"{url}/ocpp/{traffic.station_id}",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
    ) as websocket:
        index = 0
        while not stop.is_set():
            index += 1
            message_id = f"{traffic.station_id}-{index}"
            action, payload = _status_call(index) if index % 3 else ("Heartbeat", {})
            await websocket.send(orjson.dumps([2, message_id, action, payload]).decode())
            # Long: a broker with thousands of partitions takes tens of seconds to recover
            # after SIGKILL, and the gateway answers a CALL only once its publish ended.
            answer = orjson.loads(await asyncio.wait_for(websocket.recv(), ANSWER_WAIT_S))
            assert answer[1] == message_id
            if answer[0] == 3:
                traffic.acknowledged[message_id] = (action, payload)
                traffic.acknowledged_at.append(time.monotonic())
                traffic.acknowledged_after_restart += restarted.is_set()
            else:
                assert answer[0] == 4
                assert answer[2] == "InternalError", answer
                traffic.refused.append(message_id)
            await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def broker_and_cluster(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[PrivateBrokers, Cluster]]:
    """A cluster on a Kafka broker of its own: the test kills it, and others share ours."""
    state_dir = tmp_path_factory.mktemp("kafka-of-its-own")
    with PrivateBrokers.running(infra, state_dir, kafka=True, redis=False) as brokers:
        reset_state(brokers.infra)
        csms = Cluster(brokers.infra, tmp_path_factory.mktemp("logs"))
        try:
            csms.start()
            yield brokers, csms
        finally:
            csms.stop()


@pytest.mark.timeout(360)
async def test_no_acknowledged_message_lost_when_kafka_restarts(
    broker_and_cluster: tuple[PrivateBrokers, Cluster],
) -> None:
    brokers, csms = broker_and_cluster
    traffic = [Traffic(f"DUR-{name}-{uuid.uuid4().hex[:8]}") for name in ("a", "b")]
    stop, restarted = asyncio.Event(), asyncio.Event()
    drivers = [
        asyncio.create_task(_drive(csms.ocpp_url(index), station, stop, restarted))
        for index, station in enumerate(traffic)
    ]
    try:
        # Traffic flows before the outage (a fresh broker creates the topics first).
        deadline = time.monotonic() + 60
        while any(len(s.acknowledged) < 16 for s in traffic):
            assert time.monotonic() < deadline, "no traffic acknowledged before the outage"
            await asyncio.sleep(0.2)
        await asyncio.to_thread(brokers.run, "kafka-stop")
        stopped_at = time.monotonic()
        await asyncio.sleep(5)
        starting_at = time.monotonic()
        await asyncio.to_thread(brokers.run, "kafka-start")
        restarted.set()
        # Let traffic flow again until each station has been acknowledged after the restart.
        deadline = time.monotonic() + 60
        while any(s.acknowledged_after_restart < 5 for s in traffic):
            assert time.monotonic() < deadline, "traffic did not resume after the broker restart"
            await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*drivers)
    assert time.monotonic() - stopped_at > 5
    # Durable before answered: while the broker was down, no station got a CALLRESULT.
    for station in traffic:
        during_outage = [t for t in station.acknowledged_at if stopped_at + 0.5 < t < starting_at]
        assert during_outage == [], f"{station.station_id} acknowledged without Kafka"
        assert station.acknowledged_at[0] < stopped_at, "no traffic before the outage"

    for station in traffic:
        events = await read_topic(
            csms.infra.kafka_bootstrap, csms.topic(topics.OCPP_INBOUND), station.station_id
        )
        on_topic: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for event in events:
            on_topic.setdefault(event.data["message_id"], []).append(
                (event.data["action"], event.data["payload"])
            )
        assert len(station.acknowledged) > 20
        for message_id, sent in station.acknowledged.items():
            assert on_topic.get(message_id) == [sent], f"{message_id} lost or changed"
