"""Remote control and configuration end to end: REST → sessions → Redis → gateway → station.

Real ``csms`` processes (two gateways, two sessions replicas) on real Kafka,
Redis and PostgreSQL; stations played by the ``ocpp`` package's ChargePoint.
"""

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from csms_core import topics
from tests import stations
from tests.conftest import Cluster
from tests.station_handlers_remote import Station16Remote, Station201Remote, remote_station
from tests.topic_reader import read_topic
from tests.waiting import eventually

pytestmark = pytest.mark.integration

WAIT_S = 15


def new_station_id() -> str:
    return f"RC-{uuid.uuid4().hex[:10]}"


def rest(csms: Cluster, replica: int = 0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=csms.api_url(replica), headers=csms.admin, timeout=30)


async def boot(api: httpx.AsyncClient, station_id: str, client: Any, version: str) -> None:
    """Register and boot the station; return once sessions holds it online."""
    response = await api.put(f"/stations/{station_id}", json={})
    assert response.status_code in (200, 201), response.text
    # Registered, so Accepted; under load the gateway's fallback may answer Pending first,
    # which still lets the CSMS configure and command the station (OCPP 2.0.1 B02).
    boot = await client.call(stations.boot_call(version))
    assert boot.status in ("Accepted", "Pending")

    async def online() -> bool:
        body = (await api.get(f"/stations/{station_id}")).json()
        return bool(body.get("online")) and body.get("ocpp_version") == version

    await eventually(online, timeout_s=60)  # a fresh consumer group may have a backlog


async def test_tc_011_1_remote_start_then_station_starts_v16(running_cluster: Cluster) -> None:
    station_id = new_station_id()
    async with (
        remote_station(running_cluster.ocpp_url(1), station_id, "1.6") as client,
        rest(running_cluster) as api,
    ):
        assert isinstance(client, Station16Remote)
        await boot(api, station_id, client, "1.6")
        response = await api.post(
            f"/stations/{station_id}/commands/remote-start",
            json={"id_token": "DRIVER-1", "evse_id": 1},
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Accepted"
        assert client.received[0] == (
            "RemoteStartTransaction",
            {"id_tag": "DRIVER-1", "connector_id": 1},
        )

        action, answer = await asyncio.wait_for(client.sent.get(), WAIT_S)
        assert action == "StartTransaction"
        assert isinstance(answer.transaction_id, int)

        stop = await api.post(
            f"/stations/{station_id}/commands/remote-stop",
            json={"transaction_id": answer.transaction_id},
        )
        assert stop.status_code == 200, stop.text
        assert client.received[-1] == (
            "RemoteStopTransaction",
            {"transaction_id": answer.transaction_id},
        )


async def test_tc_f_02_request_start_then_transaction_event_v201(
    running_cluster: Cluster,
) -> None:
    station_id = new_station_id()
    async with (
        remote_station(running_cluster.ocpp_url(0), station_id, "2.0.1") as client,
        rest(running_cluster) as api,
    ):
        assert isinstance(client, Station201Remote)
        await boot(api, station_id, client, "2.0.1")
        response = await api.post(
            f"/stations/{station_id}/commands/remote-start",
            json={"id_token": "DRIVER-2", "token_type": "ISO14443", "evse_id": 1},
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Accepted"
        action, payload = client.received[0]
        assert action == "RequestStartTransaction"
        assert payload["id_token"] == {"id_token": "DRIVER-2", "type": "ISO14443"}
        assert payload["evse_id"] == 1
        assert isinstance(payload["remote_start_id"], int)

        action, answer = await asyncio.wait_for(client.sent.get(), WAIT_S)
        assert action == "TransactionEvent"
        assert not isinstance(answer, Exception), answer
        assert answer.id_token_info["status"] in ("Accepted", "Unknown", "Invalid")


async def test_tc_019_tc_021_configuration_v16(running_cluster: Cluster) -> None:
    station_id = new_station_id()
    async with (
        remote_station(running_cluster.ocpp_url(0), station_id, "1.6") as client,
        rest(running_cluster) as api,
    ):
        await boot(api, station_id, client, "1.6")
        refreshed = await api.post(f"/stations/{station_id}/configuration/refresh")
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["action"] == "GetConfiguration"

        changed = await api.put(
            f"/stations/{station_id}/configuration",
            json={
                "items": [
                    {"key": "HeartbeatInterval", "value": "60"},
                    {"key": "NumberOfConnectors", "value": "4"},
                ]
            },
        )
        assert changed.status_code == 200, changed.text
        assert [i["status"] for i in changed.json()["items"]] == ["Accepted", "Rejected"]

        # The other replica reads what this one stored.
        async with httpx.AsyncClient(
            base_url=running_cluster.api_url(1), headers=running_cluster.admin
        ) as other:
            stored = (await other.get(f"/stations/{station_id}/configuration")).json()
    assert [(i["key"], i["value"], i["readonly"]) for i in stored["items"]] == [
        ("HeartbeatInterval", "60", False),
        ("NumberOfConnectors", "1", True),
    ]


async def test_tc_b_06_b_09_b_13_variables_and_report_v201(running_cluster: Cluster) -> None:
    station_id = new_station_id()
    async with (
        remote_station(running_cluster.ocpp_url(1), station_id, "2.0.1") as client,
        rest(running_cluster) as api,
    ):
        await boot(api, station_id, client, "2.0.1")
        heartbeat = {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"}
        changed = await api.put(
            f"/stations/{station_id}/configuration",
            json={"items": [heartbeat | {"value": "45"}]},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["items"][0]["status"] == "Accepted"

        queried = await api.post(
            f"/stations/{station_id}/configuration/query",
            json={"items": [heartbeat, {"component": "Nope", "variable": "Nothing"}]},
        )
        assert [(i["status"], i.get("value")) for i in queried.json()["items"]] == [
            ("Accepted", "45"),
            ("UnknownVariable", None),
        ]

        refreshed = await api.post(f"/stations/{station_id}/configuration/refresh")
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["status"] == "Accepted"
        for _ in range(2):
            action, answer = await asyncio.wait_for(client.sent.get(), WAIT_S)
            assert action == "NotifyReport"
            assert not isinstance(answer, Exception), answer

        async def reported() -> list[tuple[str, str, Any, str]] | None:
            body = (await api.get(f"/stations/{station_id}/configuration")).json()
            items = [
                (i["component"], i["variable"], i.get("value"), i.get("mutability"))
                for i in body["items"]
            ]
            return items if all(item[3] for item in items) and len(items) == 2 else None

        assert await eventually(reported) == [
            ("OCPPCommCtrlr", "HeartbeatInterval", "45", "ReadWrite"),
            ("SecurityCtrlr", "Identity", station_id, "ReadOnly"),
        ]


async def test_a_command_over_rest_is_audited_as_the_callers_on_csms_audit(
    running_cluster: Cluster,
) -> None:
    """Issue 14's audit trail across processes: the REST call on one sessions replica, the
    command it sent, both readable on the other replica and relayed to csms.audit."""
    station_id = new_station_id()
    async with (
        remote_station(running_cluster.ocpp_url(1), station_id, "1.6") as client,
        rest(running_cluster) as api,
        rest(running_cluster, replica=1) as other,
    ):
        await boot(api, station_id, client, "1.6")
        refreshed = await api.post(f"/stations/{station_id}/configuration/refresh")
        assert refreshed.status_code == 200, refreshed.text
        key_id = running_cluster.admin["Authorization"].removeprefix("Bearer csms_")[:12]

        async def trail() -> list[dict[str, Any]]:
            response = await other.get("/audit", params={"station_id": station_id})
            assert response.status_code == 200, response.text
            items: list[dict[str, Any]] = response.json()["items"]
            return items

        async def complete() -> bool:
            entries = await trail()
            return {"rest", "command"} <= {e["kind"] for e in entries}

        await eventually(complete, timeout_s=WAIT_S)
        entries = await trail()
    refresh = next(e for e in entries if e["action"].endswith("/configuration/refresh"))
    command = next(e for e in entries if e["kind"] == "command")
    assert (refresh["actor"], refresh["outcome"]) == (f"api-key:{key_id}", "200")
    assert (command["action"], command["outcome"]) == ("GetConfiguration", "result")
    assert command["actor"] == f"api-key:{key_id}"  # the caller's, not the service's

    async def relayed() -> bool:
        events = await read_topic(
            running_cluster.infra.kafka_bootstrap, running_cluster.topic(topics.AUDIT), station_id
        )
        return {e.id for e in events} >= {refresh["id"], command["id"]}

    await eventually(relayed, timeout_s=WAIT_S)
