"""A station's text messages taken straight from the bytes the transport hands over.

``websockets`` reads a message through a chain made for every case: the bytes go into a
stream reader, a generator parses a ``Frame`` out of them, the frame goes into a queue,
the queue wakes the reading task, which decodes it (a tenth of a gateway's CPU per CALL
in a closed-loop profile, besides waking a task per message). Most of what a station
sends is one small text message per TCP segment: ``StationSocket.data_received`` reads
that common case itself and hands the text to the connection's ``sink`` at once, in the
same callback; every other case goes to the library unchanged, byte for byte.

``direct_text`` takes a chunk only when it is exactly one complete frame that is FIN,
opcode text, none of RSV1-3 set, masked (RFC 6455 §5.1: a client's frames are), with the
7- or 16-bit length form and a payload within ``direct_max`` bytes (at most the
library's ``max_size``), of valid UTF-8; and only while the library has nothing of its
own in progress: the connection open, no extension negotiated, no fragmented message
begun, no partial frame buffered, no message queued for the reading task. Everything
else (control frames: ping, pong, close; fragments; binary; unmasked; too large -> the
library's 1009; invalid UTF-8 -> its 1007; two frames in one chunk; a frame split over
two chunks) the library parses as it always did. The sink may refuse a text as well
(it could not handle it without waiting): the chunk then goes to the library too, which
queues it for the reading task; the sink keeps nothing of a text it refused.
"""

from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.protocol import Protocol, State

try:  # the library's C unmasking, as its own parser uses it
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a build without the extension
    from websockets.utils import apply_mask

# RFC 6455 §5.2: FIN set, RSV1-3 clear, opcode 1 (text); the mask bit of the second byte.
_TEXT_FIN = 0x81
_MASKED = 0x80
_LENGTH_16 = 126


class StationSocket(ServerConnection):
    """The library's server connection, with the common text message read directly."""

    # Takes one text message read directly; False: the library's path must read it.
    sink: Callable[[str], bool] | None = None
    # The largest payload read directly (set below the library's max_size by the owner).
    direct_max: int = 0

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is not None and not self.recv_messages.frames.queue:
            text = direct_text(self.protocol, data, self.direct_max)
            if text is not None and sink(text):
                return
        super().data_received(data)


def direct_text(protocol: Protocol, data: bytes, limit: int) -> str | None:
    """The text of ``data`` when it is exactly one frame ``protocol`` would turn into one
    text message with no other effect, its payload at most ``limit`` bytes; None wherever
    the library must parse it."""
    size = len(data)
    if size < 6 or data[0] != _TEXT_FIN:
        return None
    second = data[1]
    if not second & _MASKED:
        return None
    length = second & 0x7F
    if length < _LENGTH_16:
        start = 6
    elif length == _LENGTH_16 and size >= 8:
        length = (data[2] << 8) | data[3]
        start = 8
    else:  # the 64-bit length form, or a header cut short
        return None
    if start + length != size or length > limit:
        return None
    if (
        protocol.state is not State.OPEN
        or protocol.extensions
        or protocol.current_size is not None
        or protocol.reader.buffer
        or (protocol.max_message_size is not None and length > protocol.max_message_size)
    ):
        return None
    payload = apply_mask(data[start:], data[start - 4 : start])
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return None
