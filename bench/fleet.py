"""Many stations in one process on the minimal client: connect, boot, send on a schedule.

Every station speaks OCPP 2.0.1. Latencies are measured from the time a CALL was
*scheduled* (open loop: a late send counts against the CSMS, no coordinated
omission), to the arrival of its CALLRESULT.
"""

import asyncio
import contextlib
import itertools
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.wsclient import StationProtocol, connect_station

logger = logging.getLogger(__name__)

CALL, CALL_RESULT, CALL_ERROR = 2, 3, 4
CONNECT_ERRORS = (OSError, TimeoutError, ConnectionError)


def raise_file_limit() -> int:
    """Raise this process's soft limit of open files to the hard limit; returns it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def boot_payload() -> dict[str, Any]:
    return {
        "chargingStation": {"vendorName": "BenchVendor", "model": "BenchModel"},
        "reason": "PowerUp",
    }


def status_payload(evse_id: int) -> dict[str, Any]:
    return {
        "timestamp": now_iso(),
        "connectorStatus": "Available",
        "evseId": evse_id,
        "connectorId": 1,
    }


def meter_payload(evse_id: int, samples: int = 2) -> dict[str, Any]:
    """MeterValues with ``samples`` sampled values (the register, power, then per phase)."""
    measurands = [
        {"value": 1234.5, "measurand": "Energy.Active.Import.Register"},
        {"value": 7200.0, "measurand": "Power.Active.Import"},
    ]
    phases = ("L1", "L2", "L3")
    while len(measurands) < samples:
        phase = phases[len(measurands) % 3]
        kind = ("Current.Import", "Voltage", "Power.Active.Import")[len(measurands) // 3 % 3]
        measurands.append({"value": 16.0, "measurand": kind, "phase": phase})
    return {
        "evseId": evse_id,
        "meterValue": [{"timestamp": now_iso(), "sampledValue": measurands[:samples]}],
    }


@dataclass(frozen=True)
class CallKind:
    """One kind of load CALL: its OCPP action and how its payload is built per EVSE."""

    action: str
    payload: Callable[[int], dict[str, Any]]


HEARTBEAT = CallKind("Heartbeat", lambda _evse: {})
STATUS = CallKind("StatusNotification", status_payload)
METER = CallKind("MeterValues", meter_payload)
METER10 = CallKind("MeterValues", lambda evse: meter_payload(evse, samples=10))

# The gateway answers these itself after the durable write (ARCHITECTURE.md "gateway").
LOAD_MIXES: dict[str, tuple[CallKind, ...]] = {
    "mixed": (HEARTBEAT, STATUS, METER),
    "heartbeat": (HEARTBEAT,),
    "status": (STATUS,),
    "meter10": (METER10,),
}


class Frames:
    """Pre-encoded CALL tails (``"Action",{payload}]``), rebuilt once a second.

    The client's CPU is shared with the server under test: building and encoding a
    payload per CALL would make the client, not the server, the limit.
    """

    def __init__(self) -> None:
        self._second = -1
        self._tails: dict[tuple[CallKind, int], bytes] = {}

    def call(self, message_id: str, kind: CallKind, evse_id: int) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second, self._tails = second, {}
        tail = self._tails.get((kind, evse_id))
        if tail is None:
            body = orjson.dumps(kind.action) + b"," + orjson.dumps(kind.payload(evse_id))
            tail = self._tails[(kind, evse_id)] = body + b"]"
        return b'[2,"' + message_id.encode() + b'",' + tail


@dataclass
class LoadResult:
    """What one schedule run produced."""

    sent: int = 0
    answered: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    max_send_lag_ms: float = 0.0
    last_answer_at: float = 0.0  # time.time()


@dataclass
class ClosedLoop:
    """A closed-loop run in progress: what to send, until when, and when all came back."""

    kinds: tuple[CallKind, ...]
    ends_at: float  # perf_counter
    drained: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class CommandArrival:
    """A CSMS-initiated CALL as the station saw it."""

    station_id: str
    message_id: str
    action: str
    arrived_at: float  # time.time()


class Fleet:
    """Stations ``{prefix}{first}`` .. ``{prefix}{first + count - 1}`` on one gateway port."""

    def __init__(self, port: int, prefix: str, first: int, count: int) -> None:
        self.port = port
        self.station_ids = [f"{prefix}{number:06d}" for number in range(first, first + count)]
        self.stations: list[StationProtocol] = []
        self.connect_failures = 0
        self.connect_errors: dict[str, int] = {}  # failed connections by exception type
        self.commands: list[CommandArrival] = []
        self.on_command: Callable[[CommandArrival], None] | None = None
        self._boots: dict[tuple[str, str], asyncio.Future[tuple[str, float]]] = {}
        self._result: LoadResult | None = None
        self._frames = Frames()
        self._closed_loop: ClosedLoop | None = None

    # -- connections --------------------------------------------------------------------------

    async def connect_all(self, rate_per_s: float, concurrency: int = 200) -> int:
        """Connect every station at about ``rate_per_s``; returns how many are open."""
        self.stations = []
        self.connect_failures = 0
        gate = asyncio.Semaphore(concurrency)
        started = time.perf_counter()

        async def one(index: int, station_id: str) -> None:
            await asyncio.sleep(max(0.0, started + index / rate_per_s - time.perf_counter()))
            async with gate:
                await self.connect_one(station_id)

        async with asyncio.TaskGroup() as tasks:
            for index, station_id in enumerate(self.station_ids):
                tasks.create_task(one(index, station_id))
        return len(self.stations)

    async def connect_one(self, station_id: str) -> StationProtocol | None:
        """Connect one station and keep it; None (and counted) if that failed."""
        try:
            station = await connect_station(self.port, station_id, self.on_frame)
        except CONNECT_ERRORS as exc:
            self.connect_failures += 1
            # The server's answer, without the station's id ("HTTP/1.1 503 ...").
            kind = f"connect {type(exc).__name__}: {str(exc).removeprefix(station_id + ': ')}"
            self.connect_errors[kind] = self.connect_errors.get(kind, 0) + 1
            logger.debug("connect %s failed: %r", station_id, exc)
            return None
        self.stations.append(station)
        return station

    async def close_all(self, timeout_s: float = 30.0) -> None:
        for station in self.stations:
            station.close()
        waiting = [station.closed for station in self.stations]
        if waiting:
            await asyncio.wait(waiting, timeout=timeout_s)
            for station in self.stations:
                if not station.closed.done():
                    station.abort()
        self.stations = []

    @property
    def open_count(self) -> int:
        return sum(1 for station in self.stations if station.is_open)

    # -- boot ---------------------------------------------------------------------------------

    async def boot(self, station: StationProtocol, timeout_s: float) -> tuple[str, float]:
        """Send a BootNotification; its answer's status ("error" for a CALLERROR) and interval."""
        message_id = station.call("BootNotification", boot_payload())
        waiter: asyncio.Future[tuple[str, float]] = asyncio.get_running_loop().create_future()
        self._boots[(station.station_id, message_id)] = waiter

        def closed(_: object) -> None:  # the connection closed before the answer came
            if not waiter.done():
                waiter.set_result(("closed", 0.0))

        station.closed.add_done_callback(closed)
        try:
            return await asyncio.wait_for(waiter, timeout_s)
        except TimeoutError:
            return "timeout", 0.0
        finally:
            station.closed.remove_done_callback(closed)
            self._boots.pop((station.station_id, message_id), None)

    async def boot_all(self, timeout_s: float = 60.0) -> dict[str, int]:
        """Boot every open station at once; counts of the answers' statuses."""
        statuses = await asyncio.gather(*(self.boot(s, timeout_s) for s in self.stations))
        counts: dict[str, int] = {}
        for status, _interval in statuses:
            counts[status] = counts.get(status, 0) + 1
        return counts

    # -- open-loop load -----------------------------------------------------------------------

    async def run_schedule(
        self, start_at: float, rate_per_s: float, duration_s: float, mix: str, drain_s: float = 10.0
    ) -> LoadResult:
        """Send CALLs round-robin over the stations at a fixed rate from ``start_at`` (epoch)."""
        result = self._result = LoadResult()
        kinds = LOAD_MIXES[mix]
        stations = [station for station in self.stations if station.is_open]
        total = int(rate_per_s * duration_s)
        if not stations or total == 0:
            return result
        # Epoch -> this process's perf_counter, once: the schedule is kept in perf_counter.
        origin = time.perf_counter() + (start_at - time.time())
        interval = 1.0 / rate_per_s
        sequence = itertools.count()
        while (index := next(sequence)) < total:
            due = origin + index * interval
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
                now = time.perf_counter()
            result.max_send_lag_ms = max(result.max_send_lag_ms, (now - due) * 1000)
            station = stations[index % len(stations)]
            self._send_load(station, kinds[index % len(kinds)], 1 + index % 4, due)
            result.sent += 1
        deadline = time.perf_counter() + drain_s
        # The protocol updates the counters: poll them.
        while result.answered + result.errors < result.sent and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        self._result = None
        return result

    def _send_load(
        self, station: StationProtocol, kind: CallKind, evse_id: int, due: float
    ) -> None:
        station.sequence += 1
        message_id = str(station.sequence)
        station.pending[message_id] = due
        station.send_text(self._frames.call(message_id, kind, evse_id))

    # -- closed-loop load ---------------------------------------------------------------------

    async def run_closed(
        self, start_at: float, duration_s: float, mix: str, drain_s: float = 10.0
    ) -> LoadResult:
        """From ``start_at`` (epoch) for ``duration_s``: every station sends its next CALL as
        soon as the last one was answered (one outstanding CALL per station)."""
        result = self._result = LoadResult()
        stations = [station for station in self.stations if station.is_open]
        if not stations:
            return result
        await asyncio.sleep(max(0.0, start_at - time.time()))
        loop = ClosedLoop(LOAD_MIXES[mix], time.perf_counter() + duration_s)
        self._closed_loop = loop
        for station in stations:
            self._send_closed(station, loop, result)
        await asyncio.sleep(duration_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(loop.drained.wait(), drain_s)
        self._closed_loop = self._result = None
        return result

    def _send_closed(self, station: StationProtocol, loop: ClosedLoop, result: LoadResult) -> None:
        kind = loop.kinds[station.sequence % len(loop.kinds)]
        self._send_load(station, kind, 1 + station.sequence % 4, time.perf_counter())
        result.sent += 1

    def _next_closed(self, station: StationProtocol, result: LoadResult) -> None:
        loop = self._closed_loop
        if loop is None:
            return
        if time.perf_counter() < loop.ends_at:
            self._send_closed(station, loop, result)
        elif result.answered + result.errors >= result.sent:
            loop.drained.set()

    # -- frames -------------------------------------------------------------------------------

    def on_frame(self, station: StationProtocol, message: list[Any]) -> None:
        kind = message[0]
        if kind == CALL:
            self._on_command(station, message)
            return
        message_id = message[1]
        sent = station.pending.pop(message_id, None)
        boot = self._boots.get((station.station_id, message_id))
        if boot is not None and not boot.done():
            if kind == CALL_RESULT:
                boot.set_result((message[2].get("status", "?"), message[2].get("interval", 0)))
            else:
                boot.set_result(("error", 0.0))
            return
        if sent is None or self._result is None:
            return
        if kind == CALL_RESULT:
            self._result.answered += 1
            self._result.last_answer_at = time.time()
            self._result.latencies_ms.append((time.perf_counter() - sent) * 1000)
        else:
            self._result.errors += 1
        self._next_closed(station, self._result)

    def _on_command(self, station: StationProtocol, message: list[Any]) -> None:
        arrival = CommandArrival(station.station_id, message[1], message[2], time.time())
        self.commands.append(arrival)
        station.send_json([CALL_RESULT, message[1], {"status": "Accepted"}])
        if self.on_command is not None:
            self.on_command(arrival)
