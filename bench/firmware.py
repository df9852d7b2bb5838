"""A firmware campaign over a simulated fleet, in the distributed mode.

Two ``csms gateway``, one ``csms sessions`` and one ``csms firmware`` process on real
Kafka, Redis and PostgreSQL; N simulated stations of mixed OCPP versions in this
process (time sped up 20 times: a download takes 1.5 s), of which a share fails every
install (InstallationFailed, they keep their version). One campaign updates them all:
waves, a download concurrency cap, a maintenance window that opens a minute after the
campaign is created, a failure threshold that pauses it (the benchmark resumes it each
time, as an operator would), one retry per station.

Checked and reported, from the stations' and the ``csms.firmware`` topic's side:
- nothing is sent before the window opens;
- the download concurrency never exceeds its cap (reconstructed from the station
  state changes on ``csms.firmware``, in event time);
- a wave starts only once the wave before it has finished;
- the campaign pauses at its threshold and, resumed, ends ``completed`` with every
  healthy station confirmed on the new version by its boot and the broken ones failed;
- duration, peak concurrent downloads, messages on the wire.

    uv run python -m bench.firmware --stations 1000
"""

import argparse
import asyncio
import contextlib
import hashlib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench import harness
from bench.harness import Csms, Report
from csms_core import topics
from csms_simulator.clock import ScaledClock
from csms_simulator.config import SimulationConfig
from csms_simulator.connection import run_station
from csms_simulator.fleet import build_stations
from csms_simulator.messages import MODEL, VENDOR
from csms_simulator.stats import FleetStats
from tests import cluster
from tests.cluster import Component
from tests.cluster_firmware import firmware, reset_firmware
from tests.topic_reader import read_topic

NEW_VERSION = "2.0.0"
SLOT_STATES = {"dispatching", "sent", "downloading"}
FINAL_STATES = {"succeeded", "failed", "skipped", "cancelled"}


def start_processes(csms: Csms) -> Component:
    """2 gateways, 1 sessions replica, 1 firmware service; the latter returned."""
    with ThreadPoolExecutor(1) as thread:  # it runs a loop of its own
        thread.submit(reset_firmware, csms.infra).result()
    # Heartbeats once a simulated day: at 60x speed the default would be 200 a second
    # from 1,000 stations, which this shared 2-core machine spends its time on.
    # A station answered Pending (the gateway's fallback while sessions is busy) boots
    # again after the interval it was given: in simulated seconds, so keep it long.
    quiet = {"CSMS_HEARTBEAT_INTERVAL_S": "86400", "CSMS_PENDING_RETRY_INTERVAL_S": "3600"}
    csms._start(csms._sessions_component(quiet))
    csms._start(csms._gateway_component({}))
    component = firmware(csms.infra, csms.group, "firmware", csms.log_dir, CSMS_LOG_LEVEL="WARNING")
    with ThreadPoolExecutor(2) as threads:
        list(threads.map(csms._start, [csms._gateway_component({}), component]))
    return component


def window_opening_in(seconds: float) -> tuple[datetime, dict[str, str]]:
    """A window (UTC) that opens at the first whole minute ``seconds`` from now."""
    opens = (datetime.now(UTC) + timedelta(seconds=seconds + 59)).replace(second=0, microsecond=0)
    closes = opens + timedelta(hours=2)
    return opens, {"start": f"{opens:%H:%M}", "end": f"{closes:%H:%M}", "timezone": "UTC"}


async def wait_known(api: httpx.AsyncClient, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    known = 0
    while time.monotonic() < deadline:
        try:
            # Booted (their model known), not only connected: the target is a model.
            response = await api.get("/firmware/stations", params={"limit": 1, "model": MODEL})
            known = response.json()["total"] if response.status_code == 200 else known
        except httpx.TransportError as exc:  # a busy machine: ask again
            print(f"NOTE asking for the stations failed: {exc!r}", flush=True)
        if known >= count:
            return
        await asyncio.sleep(1.0)
    raise TimeoutError(f"the firmware service knows {known} of {count} stations")


async def upload_image(api: httpx.AsyncClient) -> str:
    image = b"CSMS-Sim VirtualCharger firmware " + NEW_VERSION.encode() + b"\n" * 65536
    response = await api.post(
        "/firmware/images",
        data={
            "vendor": VENDOR,
            "models": MODEL,
            "version": NEW_VERSION,
            "sha256": hashlib.sha256(image).hexdigest(),
        },
        files={"file": ("sim-2.0.0.bin", image)},
    )
    response.raise_for_status()
    image_id: str = response.json()["image_id"]
    return image_id


async def campaign_rows(api: httpx.AsyncClient, campaign_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    while True:
        page = (
            await api.get(
                f"/firmware/campaigns/{campaign_id}/stations",
                params={"limit": 500, "offset": len(rows)},
            )
        ).json()
        rows += page["items"]
        if len(rows) >= page["total"]:
            return rows


async def drive(
    api: httpx.AsyncClient, campaign_id: str, report: Report, timeout_s: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Follow the campaign; resume it whenever its threshold paused it."""
    pauses: list[dict[str, int]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = await api.get(f"/firmware/campaigns/{campaign_id}")
        if response.status_code != 200:  # e.g. 503 while its database restarts
            await asyncio.sleep(1.0)
            continue
        view = response.json()
        if view["state"] == "completed":
            report.note(f"paused at the threshold {len(pauses)} times: {pauses}")
            return view, pauses
        if view["state"] == "paused":
            counts = {k: v for k, v in view["counts"].items() if v}
            pauses.append(counts)
            report.note(f"paused ({view['state_reason']}) with {counts}; resuming")
            (await api.post(f"/firmware/campaigns/{campaign_id}/resume")).raise_for_status()
        await asyncio.sleep(0.5)
    raise TimeoutError(f"campaign not completed in {timeout_s} s: {view}")


def concurrency_timeline(events: list[Any]) -> int:
    """The most stations holding a download slot at once, from their state changes."""
    state: dict[str, str] = {}
    peak = holding = 0
    for event in sorted(events, key=lambda e: e.time):
        station, new = event.data["station_id"], event.data["state"]
        old = state.get(station, "pending")
        holding += (new in SLOT_STATES) - (old in SLOT_STATES)
        state[station] = new
        peak = max(peak, holding)
    return peak


def waves_in_order(rows: list[dict[str, Any]]) -> bool:
    """Every wave's first dispatch came after the last station of the wave before finished."""
    first: dict[int, datetime] = {}
    last: dict[int, datetime] = {}
    for row in rows:
        wave = row["wave"]
        if row["dispatched_at"]:
            dispatched = datetime.fromisoformat(row["dispatched_at"])
            first[wave] = min(first.get(wave, dispatched), dispatched)
        if row["finished_at"]:
            finished = datetime.fromisoformat(row["finished_at"])
            last[wave] = max(last.get(wave, finished), finished)
    # A station's first dispatch is overwritten by its retry: compare with its wave's end.
    return all(first[w] >= last[w - 1] for w in first if w - 1 in last)


async def run(args: argparse.Namespace, csms: Csms, report: Report) -> None:
    component = start_processes(csms)
    gateways = [c for c in csms.components if c.command == "gateway"]
    base = f"http://127.0.0.1:{component.port}/api/v1"
    config = SimulationConfig(
        count=args.stations,
        version_mix={"1.6": 0.3, "2.0.1": 0.4, "2.1": 0.3},
        evses_per_station=1,
        id_prefix=harness.station_prefix("fw"),
        speed=args.speed,
        arrival_mean_s=1e12,  # no EVs: the campaign alone
        install_failure_rate=args.failure_rate,
        updated_firmware_version=NEW_VERSION,
        ramp_per_s=50.0,
        call_timeout=60.0,
        boot_retry_s=3600.0,
        seed=args.seed,
    )
    stats = FleetStats()
    stations = build_stations(config, ScaledClock(config.speed), stats)
    broken = {s.station_id for s in stations if s.install_broken}
    versions = Counter(s.version.number for s in stations)
    report.note(f"fleet: {dict(versions)}, {len(broken)} stations whose installs fail")
    async with (
        httpx.AsyncClient(base_url=base, timeout=60, headers=csms.admin) as api,
        asyncio.TaskGroup() as tasks,
    ):
        running = [
            tasks.create_task(
                run_station(station, f"ws://127.0.0.1:{gateways[i % 2].port}/ocpp", i / 50)
            )
            for i, station in enumerate(stations)
        ]
        try:
            await wait_known(api, len(stations), timeout_s=300)
            image_id = await upload_image(api)
            opens, window = window_opening_in(args.window_in)
            plan = {
                "wave_size": args.wave_size,
                "max_concurrent_downloads": args.concurrency,
                "window": window,
                "failure_threshold": {"count": args.threshold},
                "retries": 1,
                "retry_delay_s": 2,
                "silence_timeout_s": 120,
            }
            created = await api.post(
                "/firmware/campaigns",
                json={"image_id": image_id, "target": {"model": MODEL}, "plan": plan},
            )
            created.raise_for_status()
            campaign_id = created.json()["campaign_id"]
            await asyncio.sleep(max(0.0, (opens - datetime.now(UTC)).total_seconds() - 1.0))
            early = stats.incoming["UpdateFirmware"] + stats.incoming["SignedUpdateFirmware"]
            started = time.monotonic()
            view, pauses = await drive(api, campaign_id, report, timeout_s=args.timeout)
            duration = time.monotonic() - started
            rows = await campaign_rows(api, campaign_id)
        finally:
            for task in running:
                task.cancel()
    events = await read_topic(
        csms.infra.kafka_bootstrap, cluster.topic_prefix(csms.group) + topics.FIRMWARE
    )
    changes = [e for e in events if e.type == "firmware.station.state_changed"]
    peak = concurrency_timeline(changes)
    states = Counter(row["state"] for row in rows)
    healthy_on_new = sum(
        1 for s in stations if s.station_id not in broken and s.firmware_version == NEW_VERSION
    )
    failed_ids = {row["station_id"] for row in rows if row["state"] == "failed"}
    report.figure(
        f"{len(stations)} stations ({dict(versions)}), {len(broken)} broken: campaign "
        f"{view['state']} in {duration:.1f} s after its window opened; states {dict(states)}"
    )
    report.figure(
        f"healthy stations confirmed on {NEW_VERSION} by their boot: "
        f"{states['succeeded']} of {len(stations) - len(broken)} (simulator side: "
        f"{healthy_on_new}); failed = the broken ones: {failed_ids == broken}"
    )
    report.figure(
        f"peak concurrent downloads {peak} (cap {args.concurrency}); waves of "
        f"{args.wave_size} in order: {waves_in_order(rows)}; UpdateFirmware before the "
        f"window: {early}; pauses at the threshold ({args.threshold} failures): {len(pauses)}"
    )
    report.figure(
        "messages: UpdateFirmware "
        f"{stats.incoming['UpdateFirmware'] + stats.incoming['SignedUpdateFirmware']}, "
        f"TriggerMessage {stats.incoming['TriggerMessage']}, FirmwareStatusNotification "
        f"{stats.outgoing['FirmwareStatusNotification'].sent}, BootNotification "
        f"{stats.outgoing['BootNotification'].sent}; csms.firmware events {len(events)} "
        f"({len(changes)} station state changes); simulator errors {stats.error_count}"
    )
    if peak > args.concurrency or early or not waves_in_order(rows) or failed_ids != broken:
        report.note("A CHECK FAILED: see the figures above")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    harness.common_arguments(parser)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--failure-rate", type=float, default=0.02)
    parser.add_argument("--wave-size", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--threshold", type=int, default=10, help="failures that pause it")
    parser.add_argument("--window-in", type=float, default=60.0, help="s until the window")
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1200.0)
    args = parser.parse_args()
    if args.smoke:
        args.stations, args.wave_size, args.concurrency, args.threshold = 20, 8, 4, 2
        args.failure_rate, args.window_in = 0.1, 1.0
    report = harness.report_for("Firmware campaign", args)
    with harness.running_csms(args) as csms, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args, csms, report))
    report.write()


if __name__ == "__main__":
    main()
