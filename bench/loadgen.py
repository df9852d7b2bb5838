"""A load-generator process: one Fleet, driven by JSON lines on stdin, reporting on stdout.

Started by ``bench.harness.Workers``; a benchmark spreads its stations over several of
these so that no client process runs into the per-process file limit or one core.

Commands (one JSON object per line):
  {"cmd": "connect", "rate": 500}                      -> {"event": "connected", ...}
  {"cmd": "boot"}                                      -> {"event": "booted", "statuses": {...}}
  {"cmd": "load", "start_at": EPOCH, "rate": R, "duration": S, "mix": "mixed"}
                                                       -> {"event": "loaded", ...}
  {"cmd": "closed", "start_at": EPOCH, "duration": S, "mix": "meter10"}
                                                       -> {"event": "loaded", ...} (closed loop)
  {"cmd": "storm", "timeout": S, "reconnect": B}       -> {"event": "stormed", ...}
  {"cmd": "close"}                                     -> {"event": "closed"}
  {"cmd": "exit"}
"""

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson

from bench.fleet import Fleet, raise_file_limit


def emit(event: str, **fields: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps({"event": event, **fields}) + b"\n")
    sys.stdout.flush()


async def storm(fleet: Fleet, timeout_s: float, reconnect: bool) -> dict[str, Any]:
    """All stations boot at once (after dropping and reopening their connections if
    ``reconnect``) until each is Accepted.

    A station whose boot is not Accepted (the gateway's Pending fallback, an error)
    boots again after the interval the answer gave (OCPP 2.0.1 B02.FR.01), on the same
    connection, or on a new one if that one closed.
    """
    held = {} if reconnect else {station.station_id: station for station in fleet.stations}
    if reconnect:
        await fleet.close_all()
    started = time.time()
    deadline = started + timeout_s
    accepted_at: list[float] = []
    attempts = 0
    outcomes: dict[str, int] = {}  # the attempts' outcomes: answers' statuses, connect errors
    fleet.connect_errors = {}

    async def until_accepted(station_id: str) -> None:
        nonlocal attempts
        station = held.get(station_id)
        while time.time() < deadline:
            attempts += 1
            interval = 1.0
            if station is None or not station.is_open:
                station = await fleet.connect_one(station_id)
            if station is not None:
                status, interval = await fleet.boot(station, max(0.1, deadline - time.time()))
                outcomes[status] = outcomes.get(status, 0) + 1
                if status == "Accepted":
                    accepted_at.append(time.time())
                    return
            await asyncio.sleep(min(max(interval, 1.0), max(0.0, deadline - time.time())))

    async with asyncio.TaskGroup() as tasks:
        for station_id in fleet.station_ids:
            tasks.create_task(until_accepted(station_id))
    return {
        "started_at": started,
        "accepted_at": accepted_at,
        "attempts": attempts,
        "outcomes": {**outcomes, **fleet.connect_errors},
        "stations": len(fleet.station_ids),
    }


async def serve(fleet: Fleet) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = orjson.loads(line)
        match command["cmd"]:
            case "connect":
                opened = await fleet.connect_all(command.get("rate", 500.0))
                emit("connected", open=opened, failed=fleet.connect_failures)
            case "boot":
                emit("booted", statuses=await fleet.boot_all(command.get("timeout", 60.0)))
            case "load":
                result = await fleet.run_schedule(
                    command["start_at"], command["rate"], command["duration"], command["mix"]
                )
                emit("loaded", **result.__dict__)
            case "closed":
                result = await fleet.run_closed(
                    command["start_at"], command["duration"], command["mix"]
                )
                emit("loaded", **result.__dict__)
            case "storm":
                stormed = await storm(fleet, command["timeout"], command["reconnect"])
                emit("stormed", **stormed)
            case "close":
                await fleet.close_all()
                emit("closed")
            case "exit":
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    raise_file_limit()
    fleet = Fleet(args.port, args.prefix, args.first, args.count)
    asyncio.run(serve(fleet))


if __name__ == "__main__":
    main()
