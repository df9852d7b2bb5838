"""2.x diagnostics end to end (OCPP 2.0.1 block N): REST → sessions → Redis → gateway →
station and back over Kafka, for monitors, monitoring reports, events and customer data.

Real ``csms`` processes (two gateways, two sessions replicas) on real Kafka, Redis and
PostgreSQL; the station played by the ``ocpp`` package's ChargePoint.
"""

import asyncio
from typing import Any

import ocpp.v201
import pytest

from csms_core import topics
from tests.conftest import Cluster
from tests.station_handlers_diagnostics import CUSTOMER_DATA, diagnostics_station
from tests.test_e2e_remote import WAIT_S, boot, new_station_id, rest
from tests.topic_reader import read_topic
from tests.waiting import eventually

pytestmark = pytest.mark.integration

POWER = {"component": "EVSE", "evse_id": 1, "variable": "Power"}
PROBLEM = {"component": "ChargingStation", "variable": "Problem"}


async def test_tc_n_08_n_47_n_18_n_21_monitors_report_clear_and_alert_v201(
    running_cluster: Cluster,
) -> None:
    station_id = new_station_id()
    async with (
        diagnostics_station(running_cluster.ocpp_url(1), station_id) as client,
        rest(running_cluster) as api,
        rest(running_cluster, replica=1) as other,
    ):
        await boot(api, station_id, client, "2.0.1")
        monitoring = f"/stations/{station_id}/monitoring"
        monitors = [
            POWER | {"type": "UpperThreshold", "value": 22000, "severity": 4},
            PROBLEM | {"type": "Delta", "value": 1, "severity": 2},
        ]
        set_response = await api.put(monitoring, json={"monitors": monitors})
        assert set_response.status_code == 200, set_response.text
        assert [(i["id"], i["status"]) for i in set_response.json()["items"]] == [
            (1, "Accepted"),
            (2, "Accepted"),
        ]

        report = await api.post(f"{monitoring}/report", json={})
        assert report.status_code == 200, report.text
        request_id = report.json()["request_id"]
        for _ in range(2):
            action, answer = await asyncio.wait_for(client.sent.get(), WAIT_S)
            assert action == "NotifyMonitoringReport"
            assert not isinstance(answer, Exception), answer

        async def complete() -> dict[str, Any] | None:
            body: dict[str, Any] = (await other.get(f"{monitoring}/reports/{request_id}")).json()
            return body if body.get("state") == "complete" else None

        assert (await eventually(complete))["seq_nos"] == [0, 1]
        stored = (await other.get(monitoring)).json()["items"]
        assert [(m["monitor_id"], m["variable"], m["type"], m["severity"]) for m in stored] == [
            (1, "Power", "UpperThreshold", 4),
            (2, "Problem", "Delta", 2),
        ]

        alert = ocpp.v201.call.NotifyEvent(
            generated_at="2026-11-25T10:00:05Z",
            seq_no=0,
            event_data=[
                {
                    "event_id": 9,
                    "timestamp": "2026-11-25T10:00:04Z",
                    "trigger": "Alerting",
                    "actual_value": "23000",
                    "event_notification_type": "CustomMonitor",
                    "variable_monitoring_id": 1,
                    "component": {"name": "EVSE", "evse": {"id": 1}},
                    "variable": {"name": "Power"},
                }
            ],
        )
        await client.send("NotifyEvent", alert)
        action, answer = await asyncio.wait_for(client.sent.get(), WAIT_S)
        assert (action, isinstance(answer, Exception)) == ("NotifyEvent", False)

        async def stored_event() -> list[dict[str, Any]] | None:
            items: list[dict[str, Any]] = (await api.get(f"/stations/{station_id}/events")).json()[
                "items"
            ]
            return items or None

        (event,) = await eventually(stored_event)
        assert (event["event_id"], event["severity"], event["actual_value"]) == (9, 4, "23000")

        async def published() -> list[dict[str, Any]] | None:
            records = await read_topic(
                running_cluster.infra.kafka_bootstrap,
                running_cluster.topic(topics.STATION_STATUS),
                station_id,
            )
            found = [dict(r.data) for r in records if r.type == "station.event.reported"]
            return found or None

        (data,) = await eventually(published)
        assert (data["event_id"], data["severity"], data["variable_monitoring_id"]) == (9, 4, 1)

        cleared = await api.post(f"{monitoring}/clear", json={"ids": [2, 7]})
        assert cleared.status_code == 200, cleared.text
        assert [(i["id"], i["status"]) for i in cleared.json()["items"]] == [
            (2, "Accepted"),
            (7, "NotFound"),
        ]
        left = (await api.get(monitoring)).json()["items"]
        assert [m["monitor_id"] for m in left] == [1]

        level = await api.put(f"{monitoring}/level", json={"severity": 5})
        assert (level.status_code, level.json()["status"]) == (200, "Accepted")
        assert client.received[-1] == ("SetMonitoringLevel", {"severity": 5})


async def test_tc_n_27_customer_information_report_in_parts_v201(
    running_cluster: Cluster,
) -> None:
    station_id = new_station_id()
    async with (
        diagnostics_station(running_cluster.ocpp_url(0), station_id) as client,
        rest(running_cluster) as api,
        rest(running_cluster, replica=1) as other,
    ):
        await boot(api, station_id, client, "2.0.1")
        path = f"/stations/{station_id}/customer-information"
        asked = await api.post(path, json={"report": True, "customer_identifier": "customer-42"})
        assert asked.status_code == 200, asked.text
        assert asked.json()["status"] == "Accepted"
        request_id = asked.json()["request_id"]
        assert client.received[-1] == (
            "CustomerInformation",
            {
                "request_id": request_id,
                "report": True,
                "clear": False,
                "customer_identifier": "customer-42",
            },
        )
        for _ in CUSTOMER_DATA:
            action, answer = await asyncio.wait_for(client.sent.get(), WAIT_S)
            assert (action, isinstance(answer, Exception)) == ("NotifyCustomerInformation", False)

        async def complete() -> dict[str, Any] | None:
            body: dict[str, Any] = (await other.get(f"{path}/{request_id}")).json()
            return body if body.get("state") == "complete" else None

        assert (await eventually(complete))["data"] == "".join(CUSTOMER_DATA)
