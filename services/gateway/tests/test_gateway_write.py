"""The gateway's own writing of a text message (``connection.write_text``): the frames
``websockets`` would write, and the library's way wherever its state says so."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Frame, Opcode

from csms_gateway.connection import write_text

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def pair(
    handler: Handler, *, compression: str | None = None
) -> AsyncIterator[ClientConnection]:
    """A real server running ``handler`` on its one connection, and the client of it."""
    async with (
        serve(handler, "127.0.0.1", 0, compression=compression, max_size=None) as server,
        connect(
            f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}",
            compression=compression,
            max_size=None,
        ) as client,
    ):
        yield client


LENGTHS = [0, 1, 125, 126, 127, 1000, 65535]


def test_the_bytes_are_the_librarys_frame() -> None:
    """Header and payload as websockets' own serializer writes an unmasked text frame."""
    for length in LENGTHS:
        data = b"x" * length
        library = Frame(Opcode.TEXT, data).serialize(mask=False, extensions=[])
        if length < 126:
            ours = bytes((0x81, length)) + data
        else:
            ours = bytes((0x81, 126, length >> 8, length & 0xFF)) + data
        assert ours == library, length


async def test_messages_of_every_length_form_arrive_whole() -> None:
    written: list[bool] = []

    async def handler(websocket: ServerConnection) -> None:
        for length in [*LENGTHS, 65536, 200_000]:
            text = (b"%d:" % length + b"y" * length)[:length]  # exactly ``length`` bytes
            if not write_text(websocket, text):
                await websocket.send(text, text=True)
                written.append(False)
            else:
                written.append(True)
        await websocket.wait_closed()

    async with pair(handler) as client:
        for length in [*LENGTHS, 65536, 200_000]:
            message = await client.recv()
            assert isinstance(message, str)  # a text frame
            assert message == (f"{length}:" + "y" * length)[:length]
    # The 16-bit length form is written here, longer messages by the library.
    assert written == [True] * len(LENGTHS) + [False, False]


async def test_the_library_writes_where_an_extension_was_negotiated() -> None:
    direct: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def handler(websocket: ServerConnection) -> None:
        direct.set_result(write_text(websocket, b'[3,"a",{}]'))
        await websocket.send(b'[3,"b",{}]', text=True)
        await websocket.wait_closed()

    async with pair(handler, compression="deflate") as client:
        assert await client.recv() == '[3,"b",{}]'  # nothing written before it
    assert await direct is False


@pytest.mark.parametrize("stage", ["closing", "closed"])
async def test_nothing_is_written_once_the_connection_closes(stage: str) -> None:
    direct: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def handler(websocket: ServerConnection) -> None:
        if stage == "closing":
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(websocket.close())
                await asyncio.sleep(0)  # the close frame sent, its answer not yet read
                direct.set_result(write_text(websocket, b'[3,"late",{}]'))
        else:
            await websocket.wait_closed()
            direct.set_result(write_text(websocket, b'[3,"late",{}]'))

    async with pair(handler) as client:
        if stage == "closed":
            await client.close()
        else:
            await client.wait_closed()
    assert await direct is False
