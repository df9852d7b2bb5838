"""The bare reference: a minimal ``websockets`` server that parses each frame and answers it.

What a gateway's figures are divided by: the same WebSocket library, the same
event loop (``--loop``: the benchmarks pass the gateway's, uvloop by default), the same
client load, and none of the gateway's work (validation,
events, Kafka, Redis, metrics, traces). Each CALL is parsed (``orjson``) and
answered with a fixed CALLRESULT for its action; CALLRESULTs and CALLERRORs are
parsed and dropped. One process, like one gateway replica.

    uv run python -m bench.bare --port 0    # prints {"port": N, "pid": P} and serves
"""

import argparse
import asyncio
import signal
import sys

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from bench.fleet import raise_file_limit
from csms_core import loop
from csms_core.loop import DEFAULT_LOOP, LOOPS

SUBPROTOCOLS = [Subprotocol(name) for name in ("ocpp2.1", "ocpp2.0.1", "ocpp1.6")]
# A fixed answer per action (what the fleet's boot and load expect to read).
_FIXED: dict[str, bytes] = {
    "BootNotification": orjson.dumps(
        {"status": "Accepted", "currentTime": "2026-01-01T00:00:00.000Z", "interval": 300}
    ),
    "Heartbeat": orjson.dumps({"currentTime": "2026-01-01T00:00:00.000Z"}),
}
_EMPTY = b"{}"


def answer(message: str | bytes) -> bytes | None:
    """The CALLRESULT for a CALL (None for anything else)."""
    frame = orjson.loads(message)
    if not isinstance(frame, list) or len(frame) != 4 or frame[0] != 2:
        return None
    payload = _FIXED.get(frame[2], _EMPTY)
    return b"[3," + orjson.dumps(frame[1]) + b"," + payload + b"]"


async def _respond(websocket: ServerConnection) -> None:
    try:
        async for message in websocket:
            reply = answer(message)
            if reply is not None:
                await websocket.send(reply, text=True)
    except ConnectionClosed:
        pass


async def serve_forever(host: str, port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        _respond,
        host,
        port,
        subprotocols=SUBPROTOCOLS,
        max_size=4 * 65536,
        ping_interval=30,
        ping_timeout=30,
    ) as server:
        bound = server.sockets[0].getsockname()[1]
        sys.stdout.buffer.write(orjson.dumps({"port": bound}) + b"\n")
        sys.stdout.flush()
        await stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--loop", default=DEFAULT_LOOP, choices=LOOPS)
    args = parser.parse_args()
    raise_file_limit()
    loop.run(serve_forever(args.host, args.port), args.loop)


if __name__ == "__main__":
    main()
