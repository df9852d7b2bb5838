"""The gateway's own reading of a text message (``direct.direct_text`` and
``StationSocket``): exactly the message ``websockets`` would have read, and the
library's way for everything else (control frames, fragments, binary, too large,
invalid UTF-8, several or partial frames in one chunk, a message already queued)."""

import asyncio
import random
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State
from websockets.server import ServerProtocol
from websockets.utils import apply_mask

from csms_gateway.direct import StationSocket, direct_text

MAX_SIZE = 4096
LIMIT = 1024  # the gateway's frame limit, below the library's max_size


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    form: int | None = None,
    mask: bytes = b"\x12\x34\x56\x78",
) -> bytes:
    """A client's frame, byte by byte; ``form``: the length's encoding (7, 16 or 64 bit),
    the shortest by default (the library accepts the longer ones too)."""
    length = len(payload)
    if form is None:
        form = 7 if length < 126 else 16 if length < 65536 else 64
    head = bytes(((0x80 if fin else 0) | rsv << 4 | opcode,))
    bit = 0x80 if masked else 0
    if form == 7:
        head += bytes((bit | length,))
    elif form == 16:
        head += bytes((bit | 126,)) + struct.pack("!H", length)
    else:
        head += bytes((bit | 127,)) + struct.pack("!Q", length)
    if not masked:
        return head + payload
    return head + mask + apply_mask(payload, mask)


def library_reads(
    data: bytes, prefix: bytes = b""
) -> tuple[list[Event], list[bytes], State, Exception | None]:
    """What the library makes of ``data`` (after ``prefix``) on an open server connection:
    its events, what it writes back, its state, its parser error."""
    protocol = ServerProtocol(state=State.OPEN, max_size=MAX_SIZE)
    if prefix:
        protocol.receive_data(prefix)
        protocol.events_received()
        protocol.data_to_send()
    protocol.receive_data(data)
    return protocol.events_received(), protocol.data_to_send(), protocol.state, protocol.parser_exc


def ours(data: bytes, prefix: bytes = b"", limit: int = LIMIT) -> str | None:
    protocol = ServerProtocol(state=State.OPEN, max_size=MAX_SIZE)
    if prefix:
        protocol.receive_data(prefix)
        protocol.events_received()
    return direct_text(protocol, data, limit)


def assert_same_as_library(data: bytes, prefix: bytes = b"") -> str | None:
    """Whenever ``direct_text`` reads a message, the library reads exactly that one
    unfragmented text message from the same bytes, and nothing else happens."""
    text = ours(data, prefix)
    if text is not None:
        events, written, state, error = library_reads(data, prefix)
        assert error is None and written == [] and state is State.OPEN
        assert len(events) == 1
        event = events[0]
        assert isinstance(event, Frame)
        assert event.opcode is Opcode.TEXT and event.fin
        assert bytes(event.data).decode() == text
    return text


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 1000, LIMIT])
@pytest.mark.parametrize("form", [None, 16])
def test_a_whole_masked_text_frame_is_read_as_the_library_reads_it(
    length: int, form: int | None
) -> None:
    text = ("é" * length)[: length // 2] + "x" * (length - 2 * (length // 2))
    payload = text.encode()
    assert assert_same_as_library(frame(0x1, payload, form=form)) == text


def test_random_chunks_agree_with_the_library() -> None:
    """Chunks of every kind, valid or not: wherever ours reads a message, it is the
    library's; and it reads every whole valid small text frame."""
    rng = random.Random(20261202)
    read = 0
    for _ in range(3000):
        opcode = rng.choice([0x0, 0x1, 0x1, 0x1, 0x2, 0x3, 0x8, 0x9, 0xA, 0xB])
        length = rng.choice([0, 1, 5, 125, 126, 200, LIMIT, LIMIT + 1, MAX_SIZE + 1])
        if rng.random() < 0.2:
            payload = bytes(rng.randrange(256) for _ in range(length))
        else:
            payload = bytes(rng.choice(b'[]{}",:abc0123') for _ in range(length))
        fin = rng.random() < 0.85
        rsv = rng.choice([0, 0, 0, 0, 1, 2, 4])
        masked = rng.random() < 0.9
        form = rng.choice([None, None, None, 16, 64]) if length < 65536 else None
        data = frame(opcode, payload, fin=fin, rsv=rsv, masked=masked, form=form)
        cut = rng.random()
        if cut < 0.1:
            data = data[: rng.randrange(len(data))]
        elif cut < 0.2:
            data += frame(0x1, b"[2]")
        text = assert_same_as_library(data)
        common = (
            opcode == 0x1 and fin and not rsv and masked and form != 64 and length <= LIMIT
        ) and cut >= 0.2
        try:
            valid = payload.decode() is not None
        except UnicodeDecodeError:
            valid = False
        assert (text is not None) == (common and valid), (opcode, length, fin, rsv, masked)
        read += text is not None
    assert read > 100  # the common case came up often enough to mean something


@pytest.mark.parametrize(
    ("case", "data"),
    [
        ("binary", frame(0x2, b'[2,"a","Heartbeat",{}]')),
        ("continuation", frame(0x0, b"x")),
        ("fragment", frame(0x1, b"[2,", fin=False)),
        ("ping", frame(0x9, b"ping")),
        ("pong", frame(0xA, b"")),
        ("close", frame(0x8, struct.pack("!H", 1000))),
        ("rsv1", frame(0x1, b"[]", rsv=4)),
        ("unmasked", frame(0x1, b"[]", masked=False)),
        ("64-bit length", frame(0x1, b"[]", form=64)),
        ("invalid UTF-8", frame(0x1, b"[\xff]")),
        ("over the limit", frame(0x1, b"x" * (LIMIT + 1))),
        ("two frames", frame(0x1, b"[]") + frame(0x1, b"[]")),
        ("cut short", frame(0x1, b"[1,2,3]")[:-1]),
        ("header only", frame(0x1, b"x" * 200)[:3]),
    ],
)
def test_the_library_reads_every_other_chunk(case: str, data: bytes) -> None:
    assert ours(data) is None, case


def test_a_frame_over_max_size_is_the_librarys_1009() -> None:
    data = frame(0x1, b"x" * (MAX_SIZE + 1))
    assert ours(data, limit=MAX_SIZE * 2) is None
    _, written, state, _ = library_reads(data)
    assert state is State.CLOSING
    assert written[0][0] == 0x88  # a close frame (with a reason)
    assert written[0][2:4] == struct.pack("!H", 1009)


@pytest.mark.parametrize(
    ("case", "prefix"),
    [
        ("after a first fragment", frame(0x1, b"[2,", fin=False)),
        ("after half a frame", frame(0x1, b"[2,3]")[:4]),
        ("after a close", frame(0x8, struct.pack("!H", 1000))),
    ],
)
def test_the_library_reads_while_it_has_something_in_progress(case: str, prefix: bytes) -> None:
    data = frame(0x1, b'[2,"a","Heartbeat",{}]')
    assert ours(data) is not None  # alone it is the common case
    assert ours(data, prefix) is None, case


def test_the_library_reads_where_an_extension_was_negotiated() -> None:
    protocol = ServerProtocol(state=State.OPEN, max_size=MAX_SIZE)
    protocol.extensions = [PerMessageDeflate(False, False, 15, 15)]
    assert direct_text(protocol, frame(0x1, b"[]"), LIMIT) is None


def test_the_library_reads_once_the_connection_closes() -> None:
    protocol = ServerProtocol(state=State.OPEN, max_size=MAX_SIZE)
    protocol.send_close(1000)
    assert direct_text(protocol, frame(0x1, b"[]"), LIMIT) is None


# -- over a real connection ------------------------------------------------------------------

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def pair(handler: Handler) -> AsyncIterator[ClientConnection]:
    async with (
        serve(
            handler, "127.0.0.1", 0, create_connection=StationSocket, max_size=MAX_SIZE
        ) as server,
        connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", compression=None) as client,
    ):
        yield client


async def test_every_message_arrives_once_in_order_whichever_path() -> None:
    """The sink takes some, refuses others (those go to the library's queue, and what
    follows while one is queued too); the reader sees the rest, in order."""
    seen: list[tuple[str, str]] = []
    done = asyncio.Event()
    count = 200

    def sink(text: str) -> bool:
        if int(text) % 3 == 0:
            return False
        seen.append(("direct", text))
        return True

    async def handler(websocket: ServerConnection) -> None:
        assert isinstance(websocket, StationSocket)
        websocket.direct_max, websocket.sink = LIMIT, sink
        async for message in websocket:
            assert isinstance(message, str)
            seen.append(("library", message))
            if len(seen) == count:
                done.set()

    async with pair(handler) as client:
        for number in range(count):
            alone = number % 10 in (1, 2)  # in a segment of its own, nothing queued before
            if alone:
                await asyncio.sleep(0.005)
            await client.send(str(number))
            if alone:
                await asyncio.sleep(0.005)
        await asyncio.wait_for(done.wait(), 10)
    assert [text for _, text in seen] == [str(number) for number in range(count)]
    assert {"direct", "library"} <= {path for path, _ in seen}
    assert all(int(text) % 3 for path, text in seen if path == "direct")


async def test_control_frames_fragments_and_binary_go_the_librarys_way() -> None:
    direct: list[str] = []
    received: list[str | bytes] = []

    def sink(text: str) -> bool:
        if text == "last":
            return False
        direct.append(text)
        return True

    async def handler(websocket: ServerConnection) -> None:
        assert isinstance(websocket, StationSocket)
        websocket.direct_max, websocket.sink = LIMIT, sink
        async for message in websocket:
            received.append(message)
            if message == "last":
                await websocket.send("bye")

    async with pair(handler) as client:
        await asyncio.wait_for(await client.ping(), 5)  # the library's pong
        await client.send(["[2,", '"a"]'])  # fragmented
        await client.send(b"\x00\x01")
        await client.send("x" * (LIMIT + 1))  # over the direct limit, within max_size
        await asyncio.sleep(0.05)
        await client.send("last")
        assert await client.recv() == "bye"
    assert received == ['[2,"a"]', b"\x00\x01", "x" * (LIMIT + 1), "last"]
    assert direct == []


@pytest.mark.parametrize(
    ("case", "raw", "code"),
    [
        ("too large", frame(0x1, b"x" * (MAX_SIZE + 1)), 1009),
        ("invalid UTF-8", frame(0x1, b'[2,"\xff"]'), 1007),
        ("unmasked", frame(0x1, b"[]", masked=False), 1002),
    ],
)
async def test_a_bad_frame_closes_as_the_library_closes(case: str, raw: bytes, code: int) -> None:
    direct: list[str] = []

    def sink(text: str) -> bool:
        direct.append(text)
        return True

    async def handler(websocket: ServerConnection) -> None:
        assert isinstance(websocket, StationSocket)
        websocket.direct_max, websocket.sink = MAX_SIZE * 2, sink
        async for _ in websocket:  # the library decodes a text message here (1007)
            pass

    async with pair(handler) as client:
        client.transport.write(raw)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(client.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code, case
    assert direct == []
