"""Smart charging: a site of N stations behind a grid limit well below their sum.

The distributed mode (two ``csms gateway``, one or two ``csms sessions``, one
``csms smartcharging``) against simulated stations run in this process, so the
simulator's own power per EVSE (what its charging-profile engine lets the EV draw) is
the ground truth of the site load. Every station has one 3-phase 32 A EVSE; every EVSE
gets an EV within seconds, so the demand is far above the limit.

Figures:
- reaction time: from the first EV charging until full compliance (every charging
  session has a profile its station accepted, and the site load is under the limit);
- overshoot after that: max A above the limit per phase, share of 0.5 s samples above;
- utilisation: mean site load / limit over the samples where the demand (what the EVs
  would draw unconstrained, capped at 32 A) exceeds the limit (target ≥ 95 %);
- a REST limit drop (operator override): time until the site load is under the new
  limit, and until every station draws no more than its new share (target ≤ 2 s);
- a station reconnect: its connection closed, it reconnects; time until it has its
  TxProfile again.

    uv run python -m bench.smartcharging --stations 50 --limit-a 200 --duration 60
"""

import argparse
import asyncio
import contextlib
import json
import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import harness
from bench.harness import Csms, Report
from csms_ocpp.frames import Call
from csms_simulator.clock import ScaledClock
from csms_simulator.config import SimulationConfig
from csms_simulator.connection import run_station
from csms_simulator.fleet import build_stations
from csms_simulator.station import Station
from csms_simulator.stats import FleetStats
from tests import cluster
from tests.cluster import Component
from tests.cluster_smartcharging import reset_smartcharging, smartcharging

VOLTS_3_PHASE = 230.0 * 3
EVSE_MAX_A = 32.0
EVSE_MIN_A = 6.0
ID_TOKEN = "SIMTOKEN1"  # noqa: S105 - a simulated RFID card, not a secret
# The stations' documented reaction time: an EV that plugs in draws its failsafe until
# its TxProfile arrives (tests/test_e2e_smartcharging.py REACTION_S).
REACTION_S = 3.0
TOLERANCE_A = 0.01


@dataclass
class Sample:
    at: float
    load_w: dict[str, float]  # per station
    demand_w: float
    charging: int

    @property
    def site_w(self) -> float:
        return sum(self.load_w.values())


@dataclass
class Sampler:
    """What the stations draw (the simulator's power per EVSE), every ``interval_s``."""

    stations: list[Station]
    samples: list[Sample] = field(default_factory=list)
    first_charging: dict[str, float] = field(default_factory=dict)

    def take(self) -> Sample:
        load: dict[str, float] = {}
        demand, charging = 0.0, 0
        for station in self.stations:
            watts = 0.0
            for evse in station.charging.evses.values():
                session = evse.session
                if session is None or not session.started:
                    continue
                charging += 1
                watts += session.power_w
                self.first_charging.setdefault(station.station_id, time.monotonic())
                wanted = min(session.ev.curve_w(evse.dc), evse.rating_w)
                demand += min(wanted, EVSE_MAX_A * VOLTS_3_PHASE)
            load[station.station_id] = watts
        return Sample(time.monotonic(), load, demand, charging)

    async def run(self, interval_s: float) -> None:
        while True:
            self.samples.append(self.take())
            await asyncio.sleep(interval_s)

    def between(self, since: float, until: float) -> list[Sample]:
        return [s for s in self.samples if since <= s.at <= until]


@dataclass
class Watched:
    """One station's reconnects and the SetChargingProfile calls it gets."""

    station: Station
    connects: list[float] = field(default_factory=list)
    profiles: list[tuple[float, str]] = field(default_factory=list)  # (time, purpose)

    def attach(self) -> None:
        handle, connected = self.station.handle, self.station.connected

        def on_call(call: Call) -> Any:
            if call.action == "SetChargingProfile":
                text = json.dumps(call.payload)
                purpose = next(
                    (p for p in ("TxDefaultProfile", "TxProfile") if f'"{p}"' in text), "other"
                )
                self.profiles.append((time.monotonic(), purpose))
            return handle(call)

        def on_connected() -> None:
            self.connects.append(time.monotonic())
            connected()

        self.station.handle = on_call  # type: ignore[method-assign]
        self.station.connected = on_connected  # type: ignore[method-assign]


def amps(watts: float) -> float:
    return watts / VOLTS_3_PHASE


async def eventually(check: Callable[[], Any], timeout_s: float, interval_s: float) -> float:
    """Poll ``check`` (sync or async) until truthy; the time it became so (monotonic)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s} s")
        await asyncio.sleep(interval_s)


# -- processes and topology ------------------------------------------------------------------


def start_processes(csms: Csms, sessions_replicas: int) -> Component:
    """2 gateways, ``sessions_replicas`` sessions, 1 smart charging; the latter returned."""
    with ThreadPoolExecutor(1) as thread:  # it runs a loop of its own
        thread.submit(reset_smartcharging, csms.infra).result()  # the bench db's schema
    csms.sessions()  # the first sessions replica migrates its schema
    component = smartcharging(
        csms.infra,
        csms.group,
        "smartcharging",
        csms.log_dir,
        CSMS_LOG_LEVEL="WARNING",
    )
    more = [csms._gateway_component({}), csms._gateway_component({}), component]
    # A second sessions replica joins the group the first one started at the end of the
    # topics (the harness's own helper would commit offsets under a live member).
    env = {"CSMS_LOG_LEVEL": "WARNING", "CSMS_UNKNOWN_STATION_POLICY": "accept"}
    more += [
        cluster.sessions(csms.infra, csms.group, f"sessions-{n}", csms.log_dir, **env)
        for n in range(2, sessions_replicas + 1)
    ]
    # From this thread: a component dies with the thread that started it (PR_SET_PDEATHSIG).
    csms.start_together(more)
    return component


@dataclass(frozen=True)
class Api:
    """A REST base URL and the admin key to call it with."""

    url: str
    headers: dict[str, str]

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30, headers=self.headers)


async def set_up_site(
    sessions_api: Api, api: Api, site_id: str, station_ids: list[str], limit_a: float
) -> None:
    async with sessions_api.client() as client:
        for station_id in station_ids:
            response = await client.put(f"/stations/{station_id}", json={})
            response.raise_for_status()
        body = {"type": "ISO14443", "status": "Accepted"}
        (await client.put(f"/id-tokens/{ID_TOKEN}", json=body)).raise_for_status()
    async with api.client() as client:
        (await client.put(f"/sites/{site_id}", json={"limit_a": limit_a})).raise_for_status()
        evse = {"evse_id": 1, "max_a": EVSE_MAX_A, "min_a": EVSE_MIN_A}
        for station_id in station_ids:
            response = await client.put(
                f"/sites/{site_id}/stations/{station_id}", json={"evses": [evse]}
            )
            response.raise_for_status()


async def allocation(api: Api, site_id: str) -> dict[str, Any]:
    async with api.client() as client:
        response = await client.get(f"/sites/{site_id}/allocation")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


async def converged(api: Api, site_id: str, charging: int) -> bool:
    sessions = (await allocation(api, site_id))["sessions"]
    return len(sessions) >= charging and all(s["outcome"] == "Accepted" for s in sessions)


# -- the measurement -------------------------------------------------------------------------


def steady_figures(samples: list[Sample], limit_a: float) -> tuple[str, float]:
    """Overshoot and utilisation of ``samples`` against ``limit_a``; and the utilisation."""
    loads = [amps(s.site_w) for s in samples]
    above = [load - limit_a for load in loads if load > limit_a + TOLERANCE_A]
    spells = over_limit_spells(samples, limit_a)
    over_demand = [amps(s.site_w) / limit_a for s in samples if amps(s.demand_w) > limit_a]
    utilisation = statistics.fmean(over_demand) if over_demand else float("nan")
    within = sum(u >= 0.95 for u in over_demand) / len(over_demand) if over_demand else 0.0
    text = (
        f"{len(samples)} samples: site load per phase min {min(loads):.1f} / mean "
        f"{statistics.fmean(loads):.1f} / max {max(loads):.1f} A vs limit {limit_a:.0f} A; "
        f"overshoot max {max(above, default=0.0):.2f} A per phase, "
        f"{100 * len(above) / len(samples):.1f} % of samples above, longest spell "
        f"{max(spells, default=0.0):.1f} s (allowed {REACTION_S:.0f} s); utilisation while "
        f"demand > limit ({len(over_demand)} samples, demand mean "
        f"{statistics.fmean(amps(s.demand_w) for s in samples):.0f} A) {100 * utilisation:.1f} % "
        f"(target ≥ 95 %; {100 * within:.0f} % of those samples ≥ 95 %)"
    )
    return text, utilisation


def over_limit_spells(samples: list[Sample], limit_a: float) -> list[float]:
    spells, start = [], None
    for sample in samples:
        over = amps(sample.site_w) > limit_a + TOLERANCE_A
        if over and start is None:
            start = sample.at
        elif not over and start is not None:
            spells.append(sample.at - start)
            start = None
    if start is not None and samples:
        spells.append(samples[-1].at - start)
    return spells


async def measure(csms: Csms, args: argparse.Namespace, report: Report) -> None:
    component = start_processes(csms, args.sessions)
    gateways = [c for c in csms.components if c.command == "gateway"]
    sessions_port = next(c.port for c in csms.components if c.command == "sessions")
    api = Api(f"http://127.0.0.1:{component.port}/api/v1", csms.admin)
    prefix = f"SCB{uuid.uuid4().hex[:5]}-"
    config = SimulationConfig(
        count=args.stations,
        evses_per_station=1,
        id_prefix=prefix,
        id_tokens=(ID_TOKEN,),
        arrival_mean_s=args.arrival_mean_s,
        meter_interval_s=args.meter_interval_s,
        seed=11,
    )
    site_id = f"site-{prefix.lower().rstrip('-')}"
    sum_a = args.stations * EVSE_MAX_A
    await set_up_site(
        Api(f"http://127.0.0.1:{sessions_port}/api/v1", csms.admin),
        api,
        site_id,
        config.station_ids(),
        args.limit_a,
    )
    report.figure(
        f"{args.stations} stations (1 x 3-phase {EVSE_MAX_A:.0f} A EVSE each, OCPP mix "
        f"{config.version_mix}) on one site: limit {args.limit_a:.0f} A per phase vs "
        f"{sum_a:.0f} A of EVSEs; 2 gateways, {args.sessions} sessions, 1 smartcharging "
        f"(allocation tick 1 s); samples every {args.sample_s} s from the simulator's power"
    )
    stations = build_stations(config, ScaledClock(config.speed), FleetStats())
    sampler = Sampler(stations)
    watched = {station.station_id: Watched(station) for station in stations}
    for each in watched.values():
        each.attach()
    limit_w = args.limit_a * VOLTS_3_PHASE
    async with asyncio.TaskGroup() as tasks:
        running = [
            tasks.create_task(
                run_station(station, f"ws://127.0.0.1:{gateways[i % 2].port}/ocpp", i * 0.02)
            )
            for i, station in enumerate(stations)
        ]
        sampling = tasks.create_task(sampler.run(args.sample_s))
        try:
            await _run(args, report, api, site_id, watched, sampler, limit_w)
        finally:
            for task in (*running, sampling):
                task.cancel()


async def _run(
    args: argparse.Namespace,
    report: Report,
    api: Api,
    site_id: str,
    watched: dict[str, Watched],
    sampler: Sampler,
    limit_w: float,
) -> None:
    limit_a = args.limit_a
    stations = [each.station for each in watched.values()]
    wanted = max(1, int(0.9 * args.stations))
    first = await eventually(lambda: sampler.take().charging > 0, 120, 0.05)
    await eventually(lambda: sampler.take().charging >= wanted, 120, 0.2)
    all_in = time.monotonic()
    await eventually(lambda: converged(api, site_id, sampler.take().charging), 120, 0.2)
    try:
        done = await eventually(lambda: sampler.take().site_w <= limit_w + 1.0, 30, 0.05)
    except TimeoutError:
        done = time.monotonic()
        now, plan = sampler.take(), await allocation(api, site_id)
        granted = {s["station_id"]: s["limit_a"] for s in plan["sessions"]}
        over = {
            sid: (round(amps(w), 1), granted.get(sid))
            for sid, w in now.load_w.items()
            if amps(w) > granted.get(sid, 0.0) + 0.1
        }
        report.figure(
            f"NOT compliant 30 s after the allocation converged: site load "
            f"{amps(now.site_w):.1f} A vs {limit_a:.0f} A, allocated "
            f"{max(plan['site']['allocated_a']):.1f} A; {len(over)} stations draw more than "
            f"their allocation (drawn A, allocated A): {over}"
        )
    before = sampler.between(first, done)
    peak = max((amps(s.site_w) for s in before), default=0.0)
    report.figure(
        f"reaction: first EV charging → full compliance (every charging session's profile "
        f"accepted, site load ≤ limit) {done - first:.1f} s ({wanted}/{args.stations} "
        f"EVs charging {all_in - first:.1f} s after the first); peak before that "
        f"{peak:.1f} A per phase ({max(0.0, peak - limit_a):.1f} A above the limit), "
        f"over-limit spells before {[round(x, 1) for x in over_limit_spells(before, limit_a)]} s"
    )

    failsafe_first, delays = 0, []
    for sid, each in watched.items():
        defaults = [at for at, purpose in each.profiles if purpose == "TxDefaultProfile"]
        charging_at = sampler.first_charging.get(sid)
        if defaults and each.connects:
            delays.append(defaults[0] - each.connects[0])
        if defaults and charging_at is not None and defaults[0] <= charging_at:
            failsafe_first += 1
    to_tx = [
        next(at for at, purpose in watched[sid].profiles if purpose == "TxProfile" and at >= start)
        - start
        for sid, start in sampler.first_charging.items()
        if any(p == "TxProfile" and at >= start for at, p in watched[sid].profiles)
    ]
    report.figure(
        f"EV charging → its first TxProfile: p50 {harness.percentile(to_tx, 50):.1f} s, p90 "
        f"{harness.percentile(to_tx, 90):.1f} s, max {max(to_tx, default=float('nan')):.1f} s "
        f"({len(to_tx)} EVs)"
    )
    report.figure(
        f"failsafe (station-wide TxDefaultProfile on connect): in place before the EV started "
        f"charging on {failsafe_first}/{len(sampler.first_charging)} stations; connect → "
        f"failsafe p50 {harness.percentile(delays, 50):.1f} s, max "
        f"{max(delays, default=float('nan')):.1f} s ({len(delays)} stations got one)"
    )
    await asyncio.sleep(args.duration)
    steady = sampler.between(done, time.monotonic())
    text, utilisation = steady_figures(steady, limit_a)
    report.figure(f"steady {args.duration:.0f} s at {limit_a:.0f} A: {text}")

    # The grid operator drops the limit: time until every station draws its new share.
    dropped_a = args.drop_a
    dropped_w = dropped_a * VOLTS_3_PHASE
    fast = Sampler(stations)
    async with api.client() as client:
        dropped_at = time.monotonic()
        response = await client.post(
            f"/sites/{site_id}/limit-override", json={"limit_a": dropped_a}
        )
        response.raise_for_status()
    answered = time.monotonic() - dropped_at
    fast_task = asyncio.create_task(fast.run(0.02))
    try:
        site_ok: float | None = await eventually(
            lambda: sampler.take().site_w <= dropped_w + 1.0, 10, 0.02
        )
    except TimeoutError:
        site_ok = None
    await asyncio.sleep(max(0.0, dropped_at + 4.0 - time.monotonic()))
    fast_task.cancel()
    after_drop = await allocation(api, site_id)
    shares_w: dict[str, float] = {}
    for session in after_drop["sessions"]:
        shares_w[session["station_id"]] = shares_w.get(session["station_id"], 0.0) + (
            session["limit_a"] * VOLTS_3_PHASE
        )
    every_ok = _every_station_under(fast.samples, shares_w)
    if site_ok is None or every_ok is None:
        now = sampler.take()
        over = {
            sid: (round(amps(w), 1), round(amps(shares_w.get(sid, 0.0)), 1))
            for sid, w in now.load_w.items()
            if w > shares_w.get(sid, 0.0) + 1.0
        }
        report.figure(
            f"after the drop, {len(over)} stations draw more than their allocation "
            f"(drawn A, allocated A): {over}"
        )
    site_text = "NOT within 10 s" if site_ok is None else f"{site_ok - dropped_at:.2f} s"
    every_text = "NOT within 4 s" if every_ok is None else f"{every_ok - dropped_at:.2f} s"
    report.figure(
        f"limit drop {limit_a:.0f} → {dropped_a:.0f} A (POST limit-override, answered in "
        f"{answered:.2f} s): site load under the new limit after {site_text}, every station "
        f"at or under its new share after {every_text} (target ≤ 2 s; "
        f"{sum(s['limit_a'] > 0 for s in after_drop['sessions'])} sessions "
        f"not paused, allocated {max(after_drop['site']['allocated_a']):.1f} A)"
    )
    await asyncio.sleep(args.after_drop_s)
    steady_drop = sampler.between(dropped_at + 2.0, time.monotonic())
    text, _ = steady_figures(steady_drop, dropped_a)
    report.figure(f"after the drop (from +2 s, {args.after_drop_s:.0f} s): {text}")

    await _reconnect(report, api, site_id, watched, after_drop)
    if utilisation < 0.95:
        report.note(f"utilisation {100 * utilisation:.1f} % is below the 95 % target")


def _every_station_under(samples: list[Sample], shares_w: dict[str, float]) -> float | None:
    """The first sample time from which every station stays at or under its share."""
    ok_from: float | None = None
    for sample in samples:
        ok = all(watts <= shares_w.get(sid, 0.0) + 1.0 for sid, watts in sample.load_w.items())
        if ok and ok_from is None:
            ok_from = sample.at
        elif not ok:
            ok_from = None
    return ok_from


async def _reconnect(
    report: Report,
    api: Api,
    site_id: str,
    all_watched: dict[str, Watched],
    current: dict[str, Any],
) -> None:
    """Close one charging (not paused) station's connection; it reconnects on its own."""
    chosen = next(s for s in current["sessions"] if s["limit_a"] > 0)
    watched = all_watched[chosen["station_id"]]
    station = watched.station
    closed_at = time.monotonic()
    watched.connects.clear()
    station.request_disconnect("bench: connection killed", 1.0)
    try:
        await eventually(lambda: bool(watched.connects), 60, 0.02)
        await eventually(
            lambda: any(
                p == "TxProfile" and at > watched.connects[0] for at, p in watched.profiles
            ),
            30,
            0.02,
        )
    except TimeoutError:
        since = [p for at, p in watched.profiles if at > closed_at]
        report.figure(
            f"reconnect of {station.station_id} ({station.version.value}): reconnected "
            f"{bool(watched.connects)}, profiles after the close {since}: "
            "NO TxProfile within 30 s"
        )
        return
    reconnected = watched.connects[0]
    tx = next(at for at, p in watched.profiles if p == "TxProfile" and at > reconnected)
    evse = station.charging.evses[1]
    power_a = amps(evse.session.power_w) if evse.session is not None else 0.0
    new = await allocation(api, site_id)
    limit = next(
        (s["limit_a"] for s in new["sessions"] if s["station_id"] == station.station_id), 0
    )
    purposes = [p for at, p in watched.profiles if at > reconnected]
    report.figure(
        f"reconnect of {station.station_id} ({station.version.value}, {chosen['limit_a']:.1f} A): "
        f"connection closed, back {reconnected - closed_at:.1f} s later (1 s offline); TxProfile "
        f"again {tx - reconnected:.2f} s after reconnecting (profiles since: {purposes}); draws "
        f"{power_a:.1f} A vs its allocation {limit:.1f} A"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.common_arguments(parser)
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--limit-a", type=float, default=200.0, help="site limit, A per phase")
    parser.add_argument("--drop-a", type=float, default=None, help="dropped limit (0.6 x limit)")
    parser.add_argument("--duration", type=float, default=60.0, help="steady seconds measured")
    parser.add_argument("--after-drop-s", type=float, default=10.0)
    parser.add_argument("--sessions", type=int, default=2, choices=(1, 2))
    parser.add_argument("--sample-s", type=float, default=0.5)
    parser.add_argument("--arrival-mean-s", type=float, default=3.0)
    parser.add_argument("--meter-interval-s", type=float, default=10.0)
    args = parser.parse_args()
    if args.attach is not None:
        parser.error("--attach: this benchmark starts its own gateways and smart charging")
    if args.smoke:
        args.stations, args.limit_a, args.duration, args.after_drop_s = 5, 40.0, 5.0, 3.0
        args.sessions = 1
    if args.drop_a is None:
        args.drop_a = round(0.6 * args.limit_a)
    report = harness.report_for("Smart charging: a site under its limit", args)
    with harness.running_csms(args) as csms:
        asyncio.run(measure(csms, args, report))
    report.write()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
