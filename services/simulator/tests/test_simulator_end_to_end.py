"""The fleet against the real CSMS (gateway + sessions) running embedded in this process."""

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from csms_cli.embedded import run_embedded
from csms_simulator import RunReport, SimulationConfig, run_fleet
from csms_simulator.stats import FleetStats


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def embedded_csms(tmp_path: Path) -> AsyncIterator[str]:
    """The real gateway and sessions service, in-process bus and router, SQLite."""
    ocpp_port = _free_port()
    ready, stopping = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(
        run_embedded(
            host="127.0.0.1",
            ocpp_port=ocpp_port,
            api_port=_free_port(),
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}",
            unknown_station_policy="accept",
            ready=ready,
            stopping=stopping,
        )
    )
    async with asyncio.timeout(20):
        await asyncio.wait(
            [server, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED
        )
    assert ready.is_set(), server
    try:
        yield f"ws://127.0.0.1:{ocpp_port}/ocpp"
    finally:
        stopping.set()
        async with asyncio.timeout(30):
            await server


def _assert_clean(report: RunReport, stations: int) -> None:
    assert report.booted == stations, report.to_json()
    assert report.boot_status == {"Accepted": stations}, report.boot_status
    assert report.connect_failures == 0
    assert report.protocol_errors == 0
    assert report.invalid_outgoing == 0
    assert report.call_errors == {}, report.call_errors
    assert report.limit_violations == 0
    assert report.error_kinds == {}, report.error_kinds


async def test_mixed_fleet_boots_and_heartbeats(tmp_path: Path) -> None:
    stats, stopping = FleetStats(), asyncio.Event()

    async def two_heartbeats_each() -> None:
        # The run ends when the fleet has answered heartbeats worth two per station, not at
        # a fixed time: on a loaded machine the boots alone once took the whole of a fixed
        # 5 s, and none was answered.
        while stats.outgoing["Heartbeat"].answered < 40:
            await asyncio.sleep(0.05)
        stopping.set()

    async with embedded_csms(tmp_path) as url:
        config = SimulationConfig(
            url=url,
            count=20,
            version_mix={"1.6": 1, "2.0.1": 1, "2.1": 1},
            heartbeat_interval_s=60,
            meter_interval_s=60,
            speed=150.0,  # the CSMS's 300 s heartbeat interval is 2 s real
            # No EVs: a decision call (Authorize) takes ~1 s real in the embedded CSMS, which at
            # this speed would hold the one-outstanding-CALL queue, heartbeats included.
            arrival_mean_s=1e9,
            duration_s=40.0,  # only a bound: the watcher stops the run
            validate_outgoing=True,
            ramp_per_s=200,
        )
        watcher = asyncio.create_task(two_heartbeats_each())
        report = await run_fleet(config, stopping=stopping, progress=False, stats=stats)
        watcher.cancel()
    _assert_clean(report, 20)
    assert set(report.versions) == {"1.6", "2.0.1", "2.1"}
    heartbeats = report.outgoing["Heartbeat"]
    assert heartbeats["answered"] >= 40, heartbeats  # as many as two each, within the bound
    assert heartbeats["sent"] - heartbeats["answered"] <= 20  # at most one in flight each
    assert heartbeats["timeouts"] == 0


async def test_smoke_200_stations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 200 stations and the whole embedded CSMS share one event loop and one SQLite writer
    # here, so a decision may take longer than the gateway's default 10 s before its
    # fallback answer; the stations themselves wait 30 s for any answer. Likewise an
    # upgrade may outlast the gateway's 10 s handshake bound on a loaded CI machine (seen:
    # 103 of 303 upgrades dropped at load 8), so the smoke gives it the stations' own 30 s.
    monkeypatch.setenv("CSMS_DECISION_TIMEOUT_S", "25")
    monkeypatch.setenv("CSMS_OPEN_TIMEOUT_S", "30")
    async with embedded_csms(tmp_path) as url:
        config = SimulationConfig(
            url=url, count=200, speed=10.0, duration_s=14.0, ramp_per_s=400, arrival_mean_s=600
        )
        report = await run_fleet(config, progress=False)
    _assert_clean(report, 200)
