"""``csms sessions`` in two processes (``CSMS_SESSIONS_PROCESSES=2``): the REST API in the
process started, the consumer in a child it supervises. End to end on real Kafka, Redis and
PostgreSQL: boots decided and commands sent as with one process, a REST change that wakes
the background work (a token on a local list) still reaches the station at once, a consumer
process that dies is started again (and one that keeps dying stops the replica), and a stop or
a kill of the API process leaves no consumer process behind."""

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests import cluster
from tests.cluster import Component, Infra
from tests.conftest import reset_state
from tests.station_handlers_auth import auth_station
from tests.station_handlers_remote import Station16Remote, remote_station
from tests.test_e2e_authorization import blocked_on, online, put
from tests.test_e2e_remote import boot
from tests.waiting import eventually

pytestmark = pytest.mark.integration

SPLIT = {"CSMS_SESSIONS_PROCESSES": "2"}


@dataclass
class SplitCluster:
    infra: Infra
    group: str
    log_dir: Path
    gateway: Component
    sessions: Component
    admin: dict[str, str]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.sessions.port}/api/v1"

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway.port}"

    def another_sessions(self, name: str, **extra: str) -> Component:
        return cluster.sessions(self.infra, self.group, name, self.log_dir, **SPLIT, **extra)


@pytest.fixture(scope="module")
def split(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SplitCluster]:
    reset_state(infra)
    log_dir = tmp_path_factory.mktemp("logs")
    group = f"csms-sessions-{uuid.uuid4().hex[:8]}"
    # Pending lists looked for every 10 minutes only: a list sent within seconds was woken.
    sessions = cluster.sessions(
        infra, group, "sessions-split", log_dir, CSMS_LOCAL_LIST_SYNC_INTERVAL_S="600", **SPLIT
    )
    gateway = cluster.gateway(infra, group, f"gw-split-{uuid.uuid4().hex[:4]}", log_dir)
    csms = SplitCluster(
        infra, group, log_dir, gateway, sessions, asyncio.run(cluster.admin_headers(infra))
    )
    try:
        sessions.start()
        gateway.start()
        yield csms
    finally:
        cluster.stop_together([gateway, sessions])
        asyncio.run(cluster.retire_topics(infra.kafka_bootstrap, cluster.topic_prefix(group)))


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def samples(metrics: str, name: str) -> list[Sample]:
    """The samples of one metric in a /metrics text."""
    families = text_string_to_metric_families(metrics)
    return [sample for family in families for sample in family.samples if sample.name == name]


def counted_by_the_consumer(metrics: str) -> float:
    """The station events the consumer process handled, as the API process's /metrics says."""
    return sum(
        sample.value
        for sample in samples(metrics, "csms_sessions_events_total")
        if sample.labels["process"] == "consumer"
    )


def wait_until(condition: object, timeout_s: float = 30) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)


def test_the_consumer_runs_in_a_child_of_the_api_process(split: SplitCluster) -> None:
    assert split.sessions.process is not None
    [consumer] = children(split.sessions.process.pid)
    command = Path(f"/proc/{consumer}/cmdline").read_bytes().split(b"\0")
    assert b"sessions" in command and b"--control-fd" in command


async def test_a_boot_is_decided_and_a_command_reaches_the_station(split: SplitCluster) -> None:
    station_id = f"SP-{uuid.uuid4().hex[:10]}"
    async with (
        remote_station(split.ocpp_url, station_id, "1.6") as client,
        httpx.AsyncClient(base_url=split.api_url, headers=split.admin, timeout=30) as api,
    ):
        assert isinstance(client, Station16Remote)
        await boot(api, station_id, client, "1.6")  # the consumer (the child) decided it
        response = await api.post(
            f"/stations/{station_id}/commands/remote-start",
            json={"id_token": "DRIVER-SPLIT", "evse_id": 1},
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Accepted"
        assert client.received[0] == (
            "RemoteStartTransaction",
            {"id_tag": "DRIVER-SPLIT", "connector_id": 1},
        )
        # The API process audits the command as one process does.
        audit = await api.get("/audit", params={"limit": 50})
        assert audit.status_code == 200, audit.text
        assert any(entry.get("station_id") == station_id for entry in audit.json()["items"]), (
            audit.json()
        )
        # The consumer counts the events it handled in its process; the API process serves
        # them with its own, each labelled with its process.
        metrics = await api.get(f"http://127.0.0.1:{split.sessions.port}/metrics")
        assert metrics.status_code == 200, metrics.text
        assert counted_by_the_consumer(metrics.text) > 0
        assert {sample.labels["process"] for sample in samples(metrics.text, "python_info")} == {
            "api",
            "consumer",
        }


async def test_a_token_change_wakes_the_local_list_sync_at_once(split: SplitCluster) -> None:
    station_id, token = f"SPLL-{uuid.uuid4().hex[:8]}", f"T-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=split.api_url, headers=split.admin, timeout=30) as api:
        await put(api, f"/stations/{station_id}", {})
        await put(api, f"/id-tokens/{token}", {"type": "ISO14443", "status": "Accepted"})
        async with auth_station(split.ocpp_url, station_id, "2.0.1") as station:
            await eventually(lambda: online(api, station_id))
            await put(
                api, f"/stations/{station_id}/local-list", {"id_tokens": [{"id_token": token}]}
            )
            assert station.local_list.keys() == {token}
            await put(api, f"/id-tokens/{token}", {"type": "ISO14443", "status": "Blocked"})
            # Woken by the REST change in the API process: the next periodic look is 600 s off.
            await eventually(lambda: blocked_on(station, token), timeout_s=30)


@contextmanager
def another(split: SplitCluster, name: str, **extra: str) -> Iterator[tuple[Component, int]]:
    """A second sessions replica in two processes: it and its consumer's pid."""
    component = split.another_sessions(name, **extra)
    try:
        component.start()
        assert component.process is not None
        [consumer] = children(component.process.pid)
        yield component, consumer
    finally:
        component.stop()  # (nothing to stop once a test ended it: closes its log)


def test_a_killed_api_process_takes_its_consumer_with_it(split: SplitCluster) -> None:
    with another(split, "sessions-killed") as (component, consumer):
        component.kill()
        wait_until(lambda: not alive(consumer))


def another_child(pid: int, before: int) -> int:
    """The consumer process the API process ``pid`` started after ``before`` ended."""
    wait_until(lambda: children(pid) not in ([], [before]))
    [child] = children(pid)
    return child


async def boot_and_metrics(split: SplitCluster, sessions: Component, gateway: Component) -> str:
    """A station booted through ``gateway``, online in ``sessions``; its /metrics text."""
    station_id = f"SPR-{uuid.uuid4().hex[:10]}"
    base = f"http://127.0.0.1:{sessions.port}"
    async with (
        remote_station(f"ws://127.0.0.1:{gateway.port}", station_id, "1.6") as client,
        httpx.AsyncClient(base_url=f"{base}/api/v1", headers=split.admin, timeout=30) as api,
    ):
        await boot(api, station_id, client, "1.6")
        metrics = await api.get(f"{base}/metrics")
        assert metrics.status_code == 200, metrics.text
        return metrics.text


def test_a_consumer_that_dies_is_started_again_and_consumes(
    split: SplitCluster, tmp_path: Path
) -> None:
    # A group of its own, so that only this replica's consumer can take the station online.
    group = f"csms-sessions-{uuid.uuid4().hex[:8]}"
    sessions = cluster.sessions(
        split.infra,
        group,
        "sessions-restarted",
        tmp_path,
        CSMS_CONSUMER_PROCESS_RESTART_BACKOFF_S="0.2",
        **SPLIT,
    )
    gateway = cluster.gateway(split.infra, group, f"gw-restart-{uuid.uuid4().hex[:4]}", tmp_path)
    try:
        cluster.start_together([sessions, gateway])
        assert sessions.process is not None
        api_process = sessions.process.pid
        [first] = children(api_process)
        os.kill(first, signal.SIGKILL)
        second = another_child(api_process, first)
        sessions.wait_healthy(60)  # not ready from its end until the second one consumes
        metrics = asyncio.run(boot_and_metrics(split, sessions, gateway))
        [restarts] = samples(metrics, "csms_consumer_process_restarts_total")
        assert (restarts.labels, restarts.value) == ({"service": "sessions", "process": "api"}, 1)
        assert counted_by_the_consumer(metrics) > 0  # the second consumer process's
        assert f"the consumer process {first} ended (status -9): restarting it" in (
            sessions.log_tail(400)
        )
        sessions.process.send_signal(signal.SIGTERM)
        assert sessions.process.wait(timeout=30) == 0
        assert not alive(second)
    finally:
        cluster.stop_together([gateway, sessions])
        asyncio.run(cluster.retire_topics(split.infra.kafka_bootstrap, cluster.topic_prefix(group)))


def test_a_consumer_that_keeps_dying_stops_the_api_process_with_status_1(
    split: SplitCluster,
) -> None:
    with another(split, "sessions-crashing", CSMS_CONSUMER_PROCESS_RESTARTS="1") as (
        component,
        consumer,
    ):
        assert component.process is not None
        os.kill(consumer, signal.SIGKILL)
        again = another_child(component.process.pid, consumer)
        os.kill(again, signal.SIGKILL)  # the second end within the window: one restart only
        assert component.process.wait(timeout=30) == 1
        assert "2 times in 60 s: stopping (exit status 1)" in component.log_tail(400)
        assert not alive(again)


def test_sigterm_stops_both_gracefully(split: SplitCluster) -> None:
    with another(split, "sessions-stopped") as (component, consumer):
        assert component.process is not None
        component.process.send_signal(signal.SIGTERM)
        assert component.process.wait(timeout=30) == 0
        assert not alive(consumer)
