"""The one task that runs a station: connect, move frames, run timers, reconnect.

Between two frames the task runs the station's due timers, and it waits for the next
frame only until the next timer is due, so heartbeats, meter values and sessions of a
station need no task of their own.
"""

import asyncio
import base64
import logging
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from csms_simulator.offline import Backoff, plan_outages
from csms_simulator.station import Disconnect, Station

logger = logging.getLogger(__name__)

OPEN_TIMEOUT_S = 30.0
_CONNECT_ERRORS = (OSError, TimeoutError, InvalidHandshake, ConnectionClosed)


def station_url(base_url: str, station_id: str) -> str:
    return f"{base_url.rstrip('/')}/{quote(station_id, safe='')}"


def basic_auth(station_id: str, password: str) -> str:
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return f"Basic {token}"


async def run_station(station: Station, base_url: str, start_delay: float = 0.0) -> None:
    """Run one station until cancelled; a bug in it is counted, never spread to the fleet."""
    try:
        await asyncio.sleep(start_delay)
        station.start()
        plan_outages(station)
        await _connect_forever(station, station_url(base_url, station.station_id))
    except Exception:
        logger.exception("station %s stopped on an error", station.station_id)
        station.stats.errors["station-crash"] += 1


async def _connect_forever(station: Station, url: str) -> None:
    config, stats = station.config, station.stats
    backoff = Backoff(config.reconnect_base, config.reconnect_cap, station.rng)
    headers = (
        {"Authorization": basic_auth(station.station_id, config.password)}
        if config.password
        else None
    )
    while True:
        stats.connect_attempts += 1
        try:
            websocket = await connect(
                url,
                subprotocols=[Subprotocol(station.version.value)],
                additional_headers=headers,
                open_timeout=OPEN_TIMEOUT_S,
                user_agent_header=None,
            )
        except _CONNECT_ERRORS as exc:
            stats.connect_failures += 1
            stats.errors[f"connect:{type(exc).__name__}"] += 1
            await _stay_offline(station, backoff.next_delay())
            continue
        disconnect = await _online(station, websocket, backoff)
        if disconnect is None:  # the CSMS or the network closed it
            await _stay_offline(station, backoff.next_delay())
        else:
            await _stay_offline(
                station, station.clock.real_delay(station.clock.now() + disconnect.offline_s)
            )


async def _online(
    station: Station, websocket: ClientConnection, backoff: Backoff
) -> Disconnect | None:
    if websocket.subprotocol != station.version.value:
        # The CSMS did not agree to our version (2.0.1 Part 4 §3.2): try again later.
        station.stats.errors["subprotocol-refused"] += 1
        await websocket.close()
        return None
    backoff.reset()
    station.connected()
    try:
        return await _exchange(station, websocket)
    except ConnectionClosed:
        return None
    finally:
        station.disconnected()
        await websocket.close()


async def _exchange(station: Station, websocket: ClientConnection) -> Disconnect:
    clock, timers, protocol = station.clock, station.timers, station.protocol
    while True:
        while protocol.outbox:
            frames, protocol.outbox = protocol.outbox, []
            for frame in frames:
                await websocket.send(frame)
        if station.disconnect_request is not None:
            return station.disconnect_request
        deadline = timers.next_deadline()
        wait = None if deadline is None else clock.real_delay(deadline)
        if wait is None or wait > 0:
            try:
                async with asyncio.timeout(wait):
                    raw = await websocket.recv()  # cancelling recv() loses nothing
            except TimeoutError:
                pass
            else:
                station.receive(raw)
        timers.run_due()


async def _stay_offline(station: Station, real_seconds: float) -> None:
    """Keep the station's timers running while it has no connection."""
    loop = asyncio.get_running_loop()
    until = loop.time() + real_seconds
    while (left := until - loop.time()) > 0:
        deadline = station.timers.next_deadline()
        wait = left if deadline is None else min(left, station.clock.real_delay(deadline))
        await asyncio.sleep(wait)
        station.timers.run_due()
