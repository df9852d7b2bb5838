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


def start_processes(csms: Csms) -> tuple[Component, list[int]]:
    """2 gateways, 1 sessions replica, 1 firmware service: the latter and the gateways'
    ports. Attached (the smoke tests' shared pair): only the firmware service."""
    if csms.attached:
        component = firmware(
            csms.infra, csms.group, "firmware", csms.log_dir, CSMS_LOG_LEVEL="WARNING"
        )
        csms._start(component)
        return component, [csms.gateway().port]
    with ThreadPoolExecutor(1) as thread:  # it runs a loop of its own
        thread.submit(reset_firmware, csms.infra).result()
    # Heartbeats once a simulated day: at 60x speed the default would be 200 a second
    # from 1,000 stations, which this shared 2-core machine spends its time on.
    # A station answered Pending (the gateway's fallback while sessions is busy) boots
    # again after the interval it was given, in the CSMS's real seconds (the default 30).
    quiet = {"CSMS_HEARTBEAT_INTERVAL_S": "86400"}
    # A boot sessions has not decided in 10 s is answered Pending by the gateway and comes
    # back 30 s later: on a loaded machine a backlog of boots feeds itself (every decision
    # late). The fleet ramps up at 10 stations a second and the gateways wait 30 s.
    patient = {"CSMS_DECISION_TIMEOUT_S": "30"}
    csms._start(csms._sessions_component(quiet))
    csms._start(csms._gateway_component(patient))
    component = firmware(csms.infra, csms.group, "firmware", csms.log_dir, CSMS_LOG_LEVEL="WARNING")
    # From this thread: a component dies with the thread that started it (PR_SET_PDEATHSIG).
    for started in (csms._gateway_component(patient), component):
        csms._start(started)
    return component, [c.port for c in csms.components if c.command == "gateway"]


def window_opening_in(seconds: float) -> tuple[datetime, dict[str, str]]:
    """A window (UTC) that opens at the first whole minute ``seconds`` from now (0: the
    window opened at the start of this minute)."""
    opens = datetime.now(UTC).replace(second=0, microsecond=0)
    if seconds > 0:
        opens = (datetime.now(UTC) + timedelta(seconds=seconds + 59)).replace(
            second=0, microsecond=0
        )
    closes = opens + timedelta(hours=2)
    return opens, {"start": f"{opens:%H:%M}", "end": f"{closes:%H:%M}", "timezone": "UTC"}


async def known_stations(api: httpx.AsyncClient, ids: set[str]) -> int:
    """How many of ``ids`` the firmware service knows booted (their model known)."""
    known: set[str] = set()
    offset, total = 0, 1
    while offset < total:
        response = await api.get(
            "/firmware/stations", params={"limit": 500, "offset": offset, "model": MODEL}
        )
        response.raise_for_status()
        page = response.json()
        if not page["items"]:
            break
        known |= ids & {item["station_id"] for item in page["items"]}
        offset, total = offset + len(page["items"]), page["total"]
    return len(known)


async def wait_known(api: httpx.AsyncClient, ids: set[str], timeout_s: float) -> None:
    """Every station booted, not only connected: the target is a model. Other stations
    (the smoke tests' other benchmarks) of that model are not counted."""
    started = time.monotonic()
    deadline, noted = started + timeout_s, started
    known = 0
    while time.monotonic() < deadline:
        if time.monotonic() - noted >= 30:
            print(
                f"NOTE {known} of {len(ids)} stations booted after "
                f"{time.monotonic() - started:.0f} s",
                flush=True,
            )
            noted = time.monotonic()
        try:
            known = await known_stations(api, ids)
        except httpx.HTTPError as exc:  # a busy machine (a timeout, a 503): ask again
            print(f"NOTE asking for the stations failed: {exc!r}", flush=True)
        if known >= len(ids):
            return
        await asyncio.sleep(1.0)
    raise TimeoutError(f"the firmware service knows {known} of {len(ids)} stations")


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


def waves_out_of_order(rows: list[dict[str, Any]]) -> list[str]:
    """The waves whose first dispatch came before the last station of the wave before
    finished (none: in order), each with the stations concerned."""
    first: dict[int, tuple[datetime, str]] = {}
    last: dict[int, tuple[datetime, str]] = {}
    for row in rows:
        wave, station = row["wave"], row["station_id"]
        if row["dispatched_at"]:
            dispatched = (datetime.fromisoformat(row["dispatched_at"]), station)
            first[wave] = min(first.get(wave, dispatched), dispatched)
        if row["finished_at"]:
            finished = (datetime.fromisoformat(row["finished_at"]), station)
            last[wave] = max(last.get(wave, finished), finished)
    # A station's first dispatch is overwritten by its retry: compare with its wave's end.
    return [
        f"wave {w}: {first[w][1]} dispatched at {first[w][0]:%H:%M:%S.%f}, wave {w - 1}'s "
        f"{last[w - 1][1]} finished at {last[w - 1][0]:%H:%M:%S.%f}"
        for w in sorted(first)
        if w - 1 in last and first[w][0] < last[w - 1][0]
    ]


async def run(args: argparse.Namespace, csms: Csms, report: Report) -> None:
    component, gateways = start_processes(csms)
    try:
        await campaign_over_fleet(args, csms, component, gateways, report)
    finally:
        if csms.attached:  # nobody else stops what this run started
            csms.stop()


async def campaign_over_fleet(
    args: argparse.Namespace,
    csms: Csms,
    component: Component,
    gateways: list[int],
    report: Report,
) -> None:
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
        ramp_per_s=args.ramp,
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
                run_station(
                    station, f"ws://127.0.0.1:{gateways[i % len(gateways)]}/ocpp", i / args.ramp
                )
            )
            for i, station in enumerate(stations)
        ]
        try:
            await wait_known(api, {s.station_id for s in stations}, timeout_s=args.boot_timeout)
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
            # The fleet by its model; attached, other benchmarks' stations share it.
            ids = sorted(s.station_id for s in stations)
            target = {"station_ids": ids} if csms.attached else {"model": MODEL}
            created = await api.post(
                "/firmware/campaigns",
                json={"image_id": image_id, "target": target, "plan": plan},
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
    disorder = waves_out_of_order(rows)
    for wave in disorder:
        report.note(f"out of order: {wave}")
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
        f"{args.wave_size} in order: {not disorder}; UpdateFirmware before the "
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
    if peak > args.concurrency or early or disorder or failed_ids != broken:
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
    parser.add_argument("--ramp", type=float, default=10.0, help="stations connecting a second")
    parser.add_argument("--timeout", type=float, default=1200.0)
    parser.add_argument(
        "--boot-timeout", type=float, default=900.0, help="s for the whole fleet to boot"
    )
    args = parser.parse_args()
    if args.smoke:
        # A window open already: the whole-minute wait is the full run's check.
        args.stations, args.wave_size, args.concurrency, args.threshold = 20, 8, 4, 1
        args.failure_rate, args.window_in = 0.1, 0.0
    report = harness.report_for("Firmware campaign", args)
    with harness.running_csms(args) as csms, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args, csms, report))
    report.write()


if __name__ == "__main__":
    main()
