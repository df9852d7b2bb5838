"""A minimal OCPP-J WebSocket client for load generation: one asyncio Protocol per station.

The ``websockets`` client costs a task, buffers and a keepalive per connection;
tens of thousands of idle stations in one client process need less. This client
does only what RFC 6455 requires of a client: the opening handshake, masked
text frames, answering pings and the closing handshake. Frames are masked with
a fixed zero key (RFC 6455 §5.3 asks for an unpredictable key against proxy
cache poisoning, which does not exist on loopback), so masking costs nothing.
"""

import asyncio
import base64
import os
import struct
import time
from collections.abc import Callable
from typing import Any

import orjson

OPCODE_TEXT = 0x1
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA
_ZERO_MASK = b"\x00\x00\x00\x00"

FrameHandler = Callable[["StationProtocol", list[Any]], None]


class HandshakeFailed(ConnectionError):
    """The server did not upgrade the connection to a WebSocket."""


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A final, masked client frame (RFC 6455 §5.2)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + _ZERO_MASK + payload


class StationProtocol(asyncio.Protocol):
    """One station's connection; ``on_frame`` gets every decoded OCPP-J message."""

    def __init__(self, station_id: str, path: str, subprotocol: str, on_frame: FrameHandler):
        self.station_id = station_id
        self.on_frame = on_frame
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._request = _upgrade_request(path, subprotocol)
        self._buffer = bytearray()
        self._upgraded = False
        # Per-station state the load generator keeps: message id -> send time, counters.
        self.pending: dict[str, float] = {}
        self.sequence = 0

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded and not self._read_handshake():
            return
        self._read_frames()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or HandshakeFailed("connection closed in handshake"))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- sending ------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._upgraded and self.transport is not None and not self.closed.done()

    def send_json(self, message: list[Any]) -> None:
        self.send_text(orjson.dumps(message))

    def send_text(self, text: bytes) -> None:
        """Send one text message of already-encoded JSON."""
        if self.transport is not None:
            self.transport.write(encode_frame(OPCODE_TEXT, text))

    def call(self, action: str, payload: dict[str, Any]) -> str:
        """Send a CALL; its send time is kept under its message id."""
        self.sequence += 1
        message_id = str(self.sequence)
        self.pending[message_id] = time.perf_counter()
        self.send_json([2, message_id, action, payload])
        return message_id

    def close(self) -> None:
        """Start the closing handshake (1000, normal closure); the server closes the TCP side."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(OPCODE_CLOSE, struct.pack("!H", 1000)))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # -- reading ------------------------------------------------------------------------------

    def _read_handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self._buffer[:end])
        del self._buffer[: end + 4]
        # ``opened`` is cancelled if the caller gave up waiting (its connect timeout).
        if not head.startswith(b"HTTP/1.1 101") or self.opened.done():
            status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            if not self.opened.done():
                self.opened.set_exception(HandshakeFailed(f"{self.station_id}: {status}"))
            if self.transport is not None:
                self.transport.close()
            return False
        self._upgraded = True
        self.opened.set_result(None)
        return True

    def _read_frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    return
                (length,), offset = struct.unpack_from("!H", buffer, 2), 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                (length,), offset = struct.unpack_from("!Q", buffer, 2), 10
            if len(buffer) < offset + length:
                return
            payload = bytes(buffer[offset : offset + length])
            del buffer[: offset + length]
            self._on_frame(opcode, payload)

    def _on_frame(self, opcode: int, payload: bytes) -> None:
        if opcode == OPCODE_TEXT:
            self.on_frame(self, orjson.loads(payload))
        elif opcode == OPCODE_PING and self.transport is not None:
            self.transport.write(encode_frame(OPCODE_PONG, payload))
        elif opcode == OPCODE_CLOSE and self.transport is not None:
            self.transport.write(encode_frame(OPCODE_CLOSE, payload[:2]))
            self.transport.close()


def _upgrade_request(path: str, subprotocol: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {subprotocol}\r\n"
        "\r\n"
    ).encode()


async def connect_station(
    port: int,
    station_id: str,
    on_frame: FrameHandler,
    *,
    subprotocol: str = "ocpp2.0.1",
    timeout_s: float = 60.0,
) -> StationProtocol:
    """A station connected to ws://127.0.0.1:{port}/ocpp/{station_id}, handshake done."""
    loop = asyncio.get_running_loop()
    path = f"/ocpp/{station_id}"
    _transport, protocol = await asyncio.wait_for(
        loop.create_connection(
            lambda: StationProtocol(station_id, path, subprotocol, on_frame), "127.0.0.1", port
        ),
        timeout_s,
    )
    await asyncio.wait_for(protocol.opened, timeout_s)
    return protocol
