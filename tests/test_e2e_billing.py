"""Billing end to end per OCPP version: real gateways, sessions and billing processes on the
real Kafka, Redis and PostgreSQL, stations played by the ``ocpp`` package's clients.

One tariff prices every session: a start fee of 0.50 and energy at 0.20/kWh until 11:30
Amsterdam time (10:30 UTC in November), 0.30/kWh after, all with 20 % VAT. Each session
charges 1000 -> 4000 Wh by 10:30 UTC and -> 8500 Wh by 11:00 UTC:
0.50 + 3 kWh x 0.20 + 4.5 kWh x 0.30 = 2.45 excl. VAT, 2.94 incl.
"""

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import ocpp.v21
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from csms_core import topics
from tests import stations
from tests.cluster import Component, Infra
from tests.cluster_billing import billing
from tests.conftest import Cluster, reset_state
from tests.topic_reader import read_topic
from tests.waiting import eventually

# Seven processes start on two cores shared with other work: allow them the time.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
START_S = 180

TARIFF = {
    "tariff": {
        "id": "e2e",
        "currency": "EUR",
        "start_date_time": "2026-01-01T00:00:00Z",
        "elements": [
            {"price_components": [{"type": "FLAT", "price": 0.50, "vat": 20, "step_size": 1}]},
            {
                "price_components": [{"type": "ENERGY", "price": 0.20, "vat": 20, "step_size": 1}],
                "restrictions": {"end_time": "11:30"},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 20, "step_size": 1}]},
        ],
    },
    "applies_to": {"default": True},
    "time_zone": "Europe/Amsterdam",
}
EXPECTED_TOTAL = {"excl_vat": 2.45, "incl_vat": 2.94}


class BillingCluster:
    """tests.conftest's Cluster (two gateways, two sessions replicas) and two billing replicas
    in the same topic namespace."""

    def __init__(self, csms: Cluster) -> None:
        self.csms = csms
        self.billing: list[Component] = [
            billing(
                csms.infra,
                csms.group,
                f"billing-{n}",
                csms.log_dir,
                CSMS_BILLING_COST_UPDATE_INTERVAL_S="0.5",
            )
            for n in (1, 2)
        ]

    def billing_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.billing[index].port}/api/v1"


async def _drop_billing(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        await connection.execute(text('DROP SCHEMA IF EXISTS "billing" CASCADE'))
    await engine.dispose()


@pytest.fixture(scope="module")
def billing_cluster(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BillingCluster]:
    reset_state(infra)
    asyncio.run(_drop_billing(infra.database_url))
    csms = Cluster(infra, tmp_path_factory.mktemp("logs"))
    both = BillingCluster(csms)
    try:
        csms.sessions[0].start(START_S)  # it migrates the shared schemas first
        with ThreadPoolExecutor() as starting:
            others = [*csms.components[1:], *both.billing]
            list(starting.map(lambda component: component.start(START_S), others))
        yield both
    finally:
        for component in both.billing:
            component.stop()
        csms.stop()


@pytest.fixture(scope="module")
def priced(billing_cluster: BillingCluster) -> BillingCluster:
    with httpx.Client(
        base_url=billing_cluster.billing_url(0), headers=billing_cluster.csms.admin
    ) as client:
        stored = client.put("/tariffs/e2e", json=TARIFF)
        assert stored.status_code in {200, 201}, stored.text
    return billing_cluster


async def _prepare(csms: Cluster, station_id: str) -> None:
    async with httpx.AsyncClient(base_url=csms.api_url(0), headers=csms.admin) as client:
        assert (await client.put(f"/stations/{station_id}", json={})).status_code == 200
        token = await client.put(
            "/id-tokens/BILL-TOKEN", json={"type": "ISO14443", "status": "Accepted"}
        )
        assert token.status_code == 200, token.text


async def _cdr(cluster: BillingCluster, station_id: str) -> dict[str, Any]:
    """The station's CDR, read from the other billing replica."""
    async with httpx.AsyncClient(
        base_url=cluster.billing_url(1), headers=cluster.csms.admin
    ) as client:

        async def issued() -> dict[str, Any] | None:
            found = (await client.get("/cdrs", params={"station_id": station_id})).json()
            return found["items"][0] if found["items"] else None

        return await eventually(issued, timeout_s=30)


async def _run_v16(station: stations.Station) -> None:
    start = await station.call(
        stations.start_transaction_call("BILL-TOKEN", 1000, "2026-11-25T10:00:00Z")
    )
    transaction_id: int = start.transaction_id
    await station.call(
        stations.meter_values_call_v16(transaction_id, 4000, 7400, "2026-11-25T10:30:00Z")
    )
    await station.call(stations.stop_transaction_call(transaction_id, 8500, "2026-11-25T11:00:00Z"))


async def _run_v2(station: stations.Station, version: str) -> tuple[str, list[dict[str, Any]], Any]:
    """The session, waiting while it runs for the running cost the CSMS sends; its id, the
    running costs and the answer to its Ended event."""
    transaction_id = uuid.uuid4().hex
    started = stations.transaction_event_call(
        version, "Started", 0, transaction_id, "2026-11-25T10:00:00Z", 1000.0, "BILL-TOKEN"
    )
    await station.call(started)
    await station.call(
        stations.transaction_event_call(
            version, "Updated", 1, transaction_id, "2026-11-25T10:30:00Z", 4000.0
        )
    )

    async def running_costs() -> list[dict[str, Any]] | None:
        costs = [payload for action, payload in station.received if action == "CostUpdated"]
        return costs or None

    costs = await eventually(running_costs, timeout_s=30)
    ended = await station.call(
        stations.transaction_event_call(
            version, "Ended", 2, transaction_id, "2026-11-25T11:00:00Z", 8500.0
        )
    )
    return transaction_id, costs, ended


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
async def test_billing_end_to_end(priced: BillingCluster, version: str) -> None:
    """1.6: the cost is on REST and in the CDR. 2.x: TC_I_01, the running cost while charging
    (CostUpdated, incl. taxes); TC_I_02, the final cost in the Ended event's answer
    (``totalCost``, incl. taxes, from billing) is the CDR's. 2.1: billing answers
    VatNumberValidation."""
    cluster = priced
    station_id = f"BILL-{version.replace('.', '')}-{uuid.uuid4().hex[:6]}"
    await _prepare(cluster.csms, station_id)
    running: list[dict[str, Any]] = []
    transaction_id = ""
    ended: Any = None
    async with stations.station(cluster.csms.ocpp_url(0), station_id, version) as station:
        assert (await station.call(stations.boot_call(version))).status == "Accepted"
        if version == "1.6":
            await _run_v16(station)
        else:
            transaction_id, running, ended = await _run_v2(station, version)
        if version == "2.1":
            # Billing decides it (no VAT registry configured here: Rejected, Unavailable).
            vat = await station.call(ocpp.v21.call.VatNumberValidation(vat_number="NL123456789B01"))
            assert (vat.status, vat.status_info["reason_code"]) == ("Rejected", "Unavailable")
        received = list(station.received)
    cdr = await _cdr(cluster, station_id)
    assert cdr["total_cost"] == EXPECTED_TOTAL
    assert (cdr["total_energy"], cdr["total_time"]) == (7.5, 1.0)
    assert [period["start_date_time"] for period in cdr["charging_periods"]] == [
        "2026-11-25T10:00:00Z",
        "2026-11-25T10:30:00Z",
    ]
    assert cdr["cdr_token"]["uid"] == "BILL-TOKEN"
    if version == "1.6":
        assert not [action for action, _ in received if action == "CostUpdated"]
    else:
        # By 10:30: 0.50 + 3 kWh x 0.20 = 1.10, incl. 20 % = 1.32.
        assert running[0] == {"total_cost": 1.32, "transaction_id": transaction_id}
        assert ended.total_cost == cdr["total_cost"]["incl_vat"] == EXPECTED_TOTAL["incl_vat"]
    cost = await _final_cost(cluster, cdr["session_id"])
    assert (cost["state"], cost["total_cost"], cost["cdr_id"]) == (
        "ended",
        EXPECTED_TOTAL,
        cdr["id"],
    )
    events = await read_topic(
        cluster.csms.infra.kafka_bootstrap, cluster.csms.topic(topics.CDRS), station_id
    )
    assert [event.data["cdr_id"] for event in events] == [cdr["id"]]


async def _final_cost(cluster: BillingCluster, session_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=cluster.billing_url(0), headers=cluster.csms.admin
    ) as client:
        response = await client.get(f"/costs/{session_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found
