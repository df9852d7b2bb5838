"""A charging session per OCPP version through two gateways, Kafka and two sessions replicas.

Stations (the ``ocpp`` package's ChargePoint) run TC_004_1 (1.6) / TC_E_04 (2.x)
style sessions; the session is read back over REST from the other replica and
its events from the ``csms.sessions`` topic.
"""

import uuid
from typing import Any

import httpx
import pytest

from csms_core import topics
from tests import stations
from tests.conftest import Cluster
from tests.topic_reader import read_topic
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def _prepare(csms: Cluster, station_id: str) -> None:
    async with httpx.AsyncClient(base_url=csms.api_url(0), headers=csms.admin) as client:
        registered = await client.put(f"/stations/{station_id}", json={})
        assert registered.status_code == 200, registered.text
        token = await client.put(
            "/id-tokens/E2E-TOKEN", json={"type": "ISO14443", "status": "Accepted"}
        )
        assert token.status_code == 200, token.text


async def _ended_session(csms: Cluster, station_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=csms.api_url(1), headers=csms.admin) as client:

        async def ended() -> dict[str, Any] | None:
            response = await client.get("/sessions", params={"station_id": station_id})
            assert response.status_code == 200, response.text
            items: list[dict[str, Any]] = response.json()["items"]
            return items[0] if items and items[0]["state"] == "ended" else None

        return await eventually(ended)


async def _run_v16(station: stations.Station) -> str:
    start = await station.call(
        stations.start_transaction_call("E2E-TOKEN", 1000, "2026-11-25T10:00:00Z")
    )
    assert start.id_tag_info["status"] == "Accepted"
    transaction_id: int = start.transaction_id
    await station.call(
        stations.meter_values_call_v16(transaction_id, 4000, 7400, "2026-11-25T10:30:00Z")
    )
    stop = await station.call(
        stations.stop_transaction_call(transaction_id, 8500, "2026-11-25T11:00:00Z")
    )
    assert stop.id_tag_info is None
    return str(transaction_id)


async def _run_v2(station: stations.Station, version: str) -> str:
    transaction_id = uuid.uuid4().hex
    events = [
        ("Started", "2026-11-25T10:00:00Z", 1000.0, "E2E-TOKEN"),
        ("Updated", "2026-11-25T10:30:00Z", 4000.0, None),
        ("Ended", "2026-11-25T11:00:00Z", 8500.0, None),
    ]
    for seq_no, (event_type, timestamp, wh, token) in enumerate(events):
        call = stations.transaction_event_call(
            version, event_type, seq_no, transaction_id, timestamp, wh, token
        )
        answer = await station.call(call)
        if token:
            assert answer.id_token_info["status"] == "Accepted"
        else:
            assert answer.id_token_info is None
    return transaction_id


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
async def test_charging_session_end_to_end(running_cluster: Cluster, version: str) -> None:
    csms = running_cluster
    station_id = f"TX-{uuid.uuid4().hex[:10]}"
    await _prepare(csms, station_id)

    async with stations.station(csms.ocpp_url(0), station_id, version) as station:
        assert (await station.call(stations.boot_call(version))).status == "Accepted"
        if version == "1.6":
            transaction_id = await _run_v16(station)
        else:
            transaction_id = await _run_v2(station, version)

    session = await _ended_session(csms, station_id)
    assert (session["transaction_id"], session["energy_wh"]) == (transaction_id, 7500.0)
    assert (session["stop_reason"], session["id_token"]) == ("local", "E2E-TOKEN")
    assert (session["started_at"], session["ended_at"]) == (
        "2026-11-25T10:00:00Z",
        "2026-11-25T11:00:00Z",
    )
    events = await read_topic(csms.infra.kafka_bootstrap, csms.topic(topics.SESSIONS), station_id)
    assert [event.type for event in events] == [
        "session.started",
        "session.updated",
        "session.ended",
    ]
    assert {event.data["session_id"] for event in events} == {session["session_id"]}
    assert events[-1].data["energy_wh"] == 7500.0
    assert events[-1].data["duration_s"] == 3600.0
    samples = await read_topic(
        csms.infra.kafka_bootstrap, csms.topic(topics.METER_VALUES), station_id
    )
    assert [len(event.data["samples"]) for event in samples] == (
        [2] if version == "1.6" else [1, 1, 1]
    )
