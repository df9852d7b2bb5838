"""One station connection: the read loop, the inbound call worker and the command worker.

OCPP 2.0.1 Part 4 §4.1.1 / 1.6 OCPP-J §4.1.1: at most one outstanding CALL per
direction. The station may send a CALL while we wait for its answer to ours
(and vice versa), so reading never waits on either worker: inbound CALLs go to
one queue, answered in the order received; our commands go to another, sent
one at a time.
"""

import asyncio
import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import uuid4

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import State

from csms_core.calls import AnswerDirectory
from csms_core.router import CallAnswer, CommandOutcome, CommandResult, StationCommand
from csms_core.telemetry import MessageSampling, continued_span
from csms_gateway import commands
from csms_gateway.admission import Refusal, RefusalReason
from csms_gateway.commands import CommandReporter
from csms_gateway.direct import StationSocket
from csms_gateway.events import ConnectionInfo, EventPublisher
from csms_gateway.flow import ACCEPTED, BOOT, BootGate, RateBucket
from csms_gateway.inbound import InboundCalls, Later
from csms_gateway.metrics import GatewayMetrics
from csms_gateway.settings import GatewaySettings
from csms_ocpp.errors import ErrorCode, error_code
from csms_ocpp.frames import (
    MAX_MESSAGE_ID_LENGTH,
    UNREADABLE_MESSAGE_ID,
    Call,
    CallError,
    CallResult,
    CallResultError,
    Frame,
    FrameError,
    MessageType,
    Send,
    encode,
    parse_frame,
)
from csms_ocpp.schemas import has_schema
from csms_ocpp.versions import PREFERENCE

logger = logging.getLogger(__name__)

# Reads ``[2, "id"`` from the head of a frame too large to parse in full.
_FRAME_HEAD = re.compile(rf'\s*\[\s*(\d+)\s*,\s*"([^"\\]{{1,{MAX_MESSAGE_ID_LENGTH}}})"')
_ANSWER_TYPES = {MessageType.CALL_RESULT, MessageType.CALL_ERROR, MessageType.CALL_RESULT_ERROR}

StationAnswer = CallResult | CallError


class StationConnection:
    """Serves one WebSocket until it closes; never raises out of a frame's handling."""

    def __init__(
        self,
        websocket: ServerConnection,
        info: ConnectionInfo,
        *,
        settings: GatewaySettings,
        publisher: EventPublisher,
        reporter: CommandReporter,
        metrics: GatewayMetrics,
        sampling: MessageSampling | None = None,
        registration: str | None = ACCEPTED,
        on_flood: Callable[[Refusal], None] | None = None,
        directory: AnswerDirectory | None = None,
    ) -> None:
        self.websocket = websocket
        self.info = info
        self._settings = settings
        self._reporter = reporter
        self._metrics = metrics
        self.gate = BootGate(registration)
        self._bucket = (
            RateBucket(settings.station_rate_per_s, settings.station_rate_burst)
            if settings.station_rate_per_s > 0
            else None
        )
        self._over_rate = 0  # CALLs refused for the rate in a row
        self._flooded = False  # cut off for flooding: nothing more gets through
        self._on_flood = on_flood
        self._room: asyncio.Future[None] | None = None  # done once the inbound queue has room
        self._calls = InboundCalls(
            info, publisher, settings.decision_timeout_s, sampling, directory
        )
        # Idle connections are most of a gateway's: their workers run only while there is
        # work (a task and an asyncio.Queue cost kilobytes each), one at a time per list.
        self._inbound: list[tuple[Call | Send, datetime, Later | None]] = []
        self._commands: list[StationCommand] = []
        self._tasks: asyncio.TaskGroup | None = None
        self._answering: asyncio.Task[None] | None = None
        # The CALL answered from its record's acknowledgement (``_answer_soon``), while
        # that is in flight: the queue waits behind it.
        self._soon: Call | None = None
        self._commanding: asyncio.Task[None] | None = None
        self._closing: tuple[int, str] | None = None
        self._closer: asyncio.Task[None] | None = None
        self._outstanding: tuple[str, asyncio.Future[StationAnswer | None]] | None = None
        self._gone = False
        # True while the read loop waits for the library's next message: only then may a
        # message read directly (``_take``) be handled, in the order received.
        self._read_idle = False

    @property
    def queued_calls(self) -> int:
        """CALLs waiting behind the one being answered (at most ``max_inbound_queue``)."""
        return len(self._inbound)

    # -- lifecycle ----------------------------------------------------------------------------

    async def serve(self) -> None:
        """Read until the WebSocket closes, then fail whatever can no longer be delivered."""
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                if self._closing is not None:
                    self._start_closing(*self._closing)
                websocket = self.websocket
                if isinstance(websocket, StationSocket):
                    websocket.direct_max = min(self._settings.max_frame_bytes, _DIRECT_MAX)
                    websocket.sink = self._take
                try:
                    await self._read()
                finally:
                    if isinstance(websocket, StationSocket):
                        websocket.sink = None
                    self._stop_commands()
                    for worker in (self._answering, self._closer):
                        if worker is not None:
                            worker.cancel()
        finally:
            self._tasks = None

    def request_close(self, code: int, reason: str) -> None:
        """Ask the connection to close (superseded, or the gateway shuts down)."""
        if self._closing is not None:
            return
        self._closing = (code, reason)
        if self._tasks is not None:
            self._start_closing(code, reason)

    def _start_closing(self, code: int, reason: str) -> None:
        assert self._tasks is not None  # noqa: S101 - only called while serving
        self._closer = self._tasks.create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        logger.info("closing connection: %s %s", code, reason, extra=self.info.log)
        await self.websocket.close(code, reason)

    # -- reading ------------------------------------------------------------------------------

    async def _read(self) -> None:
        recv = self.websocket.recv
        try:
            while True:
                self._read_idle = True
                try:
                    message = await recv()
                finally:
                    self._read_idle = False
                try:
                    await self._on_message(message)
                except Exception:
                    logger.exception("frame handling failed", extra=self.info.log)
        except ConnectionClosed:
            pass

    def _take(self, text: str) -> bool:
        """``_on_message``'s common case for a text message read directly from the socket
        (``direct.StationSocket``), in the transport's callback: a CALL the gate and the
        bucket let through with room in the queue, or an answer to our command. False
        (nothing done, nothing kept): the library's path reads it and ``_on_message``
        handles it, as every message while that path has one in hand."""
        if not self._read_idle:
            return False
        try:
            frame = parse_frame(text, self.info.version)
            if isinstance(frame, Call | Send):
                if len(self._inbound) + 1 >= self._settings.max_inbound_queue:
                    return False
                if not self._passes(frame):
                    return False
                self._count_in(frame)
                self._queue(frame)
            elif isinstance(frame, CallResult | CallError):
                self._count_in(frame)
                self._on_answer(frame)
            else:
                return False
        except Exception:
            logger.exception("frame handling failed", extra=self.info.log)
        return True

    async def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            # OCPP-J §3: every frame is a text message.
            logger.warning("binary WebSocket message ignored", extra=self.info.log)
            await self._refuse(UNREADABLE_MESSAGE_ID, ErrorCode.FORMAT_VIOLATION, "binary frame")
            return
        if len(message) > self._settings.max_frame_bytes and (
            len(message.encode()) > self._settings.max_frame_bytes
        ):
            await self._on_oversized(message)
            return
        frame = parse_frame(message, self.info.version)
        self._count_in(frame)
        await self._dispatch(frame)

    async def _on_oversized(self, message: str) -> None:
        head = _FRAME_HEAD.match(message[:100])
        limit = self._settings.max_frame_bytes
        if head is not None and int(head.group(1)) in _ANSWER_TYPES:
            logger.warning("answer frame exceeds %d bytes dropped", limit, extra=self.info.log)
            return
        message_id = head.group(2) if head is not None else UNREADABLE_MESSAGE_ID
        await self._refuse(message_id, ErrorCode.FORMAT_VIOLATION, f"frame exceeds {limit} bytes")

    async def _dispatch(self, frame: Frame | FrameError) -> None:
        if isinstance(frame, FrameError):
            await self._on_bad_frame(frame)
        elif isinstance(frame, Call | Send):
            if not self._passes(frame) and not await self._lets_through(frame):
                return
            self._queue(frame)
            if len(self._inbound) >= self._settings.max_inbound_queue:
                await self._wait_for_room()
        elif isinstance(frame, CallResultError):
            logger.warning(
                "station could not process our answer to %s: %s %s",
                frame.message_id,
                frame.code,
                frame.description,
                extra=self.info.log,
            )
        else:
            self._on_answer(frame)

    def _queue(self, call: Call | Send) -> None:
        received_at = datetime.now(UTC)
        later: Later | None = None
        if (
            self._answering is None
            and self._soon is None
            and self._tasks is not None
            and isinstance(call, Call)
            and not self.websocket.protocol.extensions  # else the answer needs the library
        ):
            later = self._answer_soon(call, received_at)
            if later is None:
                return
        self._inbound.append((call, received_at, later))
        if self._answering is None and self._soon is None and self._tasks is not None:
            self._answering = self._tasks.create_task(self._answer_calls())

    def _answer_soon(self, call: Call, received_at: datetime) -> Later | None:
        """The common CALL answered without the worker: refused at once, or answered from
        its record's acknowledgement (a callback); what it returns goes to the worker."""
        try:
            soon = self._calls.answer_soon(call, received_at)
        except Exception:
            logger.exception("handling %s failed", call.action, extra=self.info.log)
            soon = _internal_error(call)
        if isinstance(soon, Later):
            return soon
        if isinstance(soon, asyncio.Future):
            self._soon = call
            soon.add_done_callback(self._acknowledged)
        else:
            self._reply(call, soon)
        return None

    def _acknowledged(self, acknowledged: "asyncio.Future[Any]") -> None:
        call, self._soon = self._soon, None
        if call is None:  # pragma: no cover - one callback per answer_soon future
            return
        try:
            answer = self._calls.answered(call, acknowledged)
        except Exception:
            logger.exception("handling %s failed", call.action, extra=self.info.log)
            answer = _internal_error(call)
        self._reply(call, answer)
        if self._inbound and self._answering is None and self._tasks is not None:
            self._answering = self._tasks.create_task(self._answer_calls())

    def _reply(self, call: Call, answer: CallResult | CallError) -> None:
        """Send the answer now if it can be written at once; else the worker sends it
        first (the queue waits behind it, in order)."""
        if call.action == BOOT and isinstance(answer, CallResult):
            self.gate.booted(answer.payload.get("status"))
        if write_text(self.websocket, encode(answer)):
            self._count_out(answer)
        elif self._tasks is not None and self._answering is None:
            self._answering = self._tasks.create_task(self._answer_calls(answer))
        else:
            logger.info("could not send: connection closed", extra=self.info.log)

    async def _on_bad_frame(self, error: FrameError) -> None:
        logger.warning("bad frame: %s", error.description, extra=self.info.log)
        if error.answerable:
            await self.send(error.to_call_error(self.info.version))

    def _on_answer(self, answer: StationAnswer) -> None:
        outstanding = self._outstanding
        if outstanding is None or outstanding[0] != answer.message_id or outstanding[1].done():
            logger.warning(
                "answer to unknown or expired call %s dropped",
                answer.message_id,
                extra=self.info.log,
            )
            return
        outstanding[1].set_result(answer)

    # -- what gets through ---------------------------------------------------------------------

    def _passes(self, call: Call | Send) -> bool:
        """``_lets_through``'s common case without a coroutine: the gate open and a token in
        the bucket (taken). False: ``_lets_through`` decides, and answers what it stops (a
        token is taken once either way: a failed ``take`` takes none)."""
        if self._flooded or not self.gate.admits(call.action):
            return False
        if self._bucket is not None and not self._bucket.take():
            return False
        self._over_rate = 0
        return True

    async def _lets_through(self, call: Call | Send) -> bool:
        """The rate limit, then the boot gate; a CALL stopped here is answered, never stored.
        Once cut off for flooding, nothing more is answered or stored while it closes."""
        if self._flooded:
            return False
        if self._bucket is not None and not self._bucket.take():
            await self._over_the_rate(call)
            return False
        self._over_rate = 0
        if self.gate.admits(call.action):
            return True
        if isinstance(call, Call):
            status = self.gate.status or "not booted"
            text = f"{call.action} refused: the station's registration is {status}; boot first"
            await self._refuse(call.message_id, ErrorCode.SECURITY_ERROR, text)
        return False

    async def _over_the_rate(self, call: Call | Send) -> None:
        self._over_rate += 1
        settings = self._settings
        if self._over_rate == settings.station_flood_close_after:
            self._cut_off()
        elif self._over_rate < settings.station_flood_close_after and isinstance(call, Call):
            text = f"over the rate limit of {settings.station_rate_per_s:g} messages per second"
            await self._refuse(call.message_id, ErrorCode.GENERIC_ERROR, text)

    def _cut_off(self) -> None:
        """The station keeps flooding: close the connection (RFC 6455 1008)."""
        info = self.info
        logger.warning("station keeps flooding: closing the connection", extra=info.log)
        self._flooded = True
        self._metrics.flood_cutoffs.inc()
        self.request_close(CloseCode.POLICY_VIOLATION, "message rate limit exceeded")
        if self._on_flood is not None:
            self._on_flood(
                Refusal(
                    station_id=info.station_id,
                    reason=RefusalReason.FLOODING,
                    status=CloseCode.POLICY_VIOLATION,
                    detail=(
                        f"{self._over_rate} CALLs in a row over the rate limit of "
                        f"{self._settings.station_rate_per_s:g}/s"
                    ),
                    remote_address=info.remote_address,
                    offered_profile=info.security_profile,
                    ocpp_version=info.version.number,
                )
            )

    async def _wait_for_room(self) -> None:
        """Stop reading until the answer worker has room in the inbound queue again, or the
        connection is lost (then reading ends at once)."""
        room = self._room = asyncio.get_running_loop().create_future()
        lost = self.websocket.connection_lost_waiter
        lost.add_done_callback(self._make_room)
        try:
            await room
        finally:
            lost.remove_done_callback(self._make_room)
            self._room = None

    def _make_room(self, _: object = None) -> None:
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    # -- inbound calls ------------------------------------------------------------------------

    async def _answer_calls(self, first: Frame | None = None) -> None:
        """Answer the queued CALLs in order (``first``: an answer to send before them);
        the worker ends when none is left."""
        try:
            if first is not None:
                await self.send(first)
            while self._inbound:
                call, received_at, later = self._inbound.pop(0)
                if len(self._inbound) < self._settings.max_inbound_queue:
                    self._make_room()
                await self._answer(call, received_at, later)
        finally:
            self._answering = None
            self._make_room()

    async def _answer(self, call: Call | Send, received_at: datetime, later: Later | None) -> None:
        try:
            answer = await self._calls.answer(call, received_at, later)
        except Exception:
            logger.exception("handling %s failed", call.action, extra=self.info.log)
            answer = _internal_error(call)
        if answer is None:
            return
        if call.action == BOOT and isinstance(answer, CallResult):
            self.gate.booted(answer.payload.get("status"))
        await self.send(answer)

    def deliver_answer(self, answer: CallAnswer) -> bool:
        """A service's answer to one of this connection's CALLs."""
        return self._calls.resolve(answer)

    # -- commands (CSMS-initiated calls) ------------------------------------------------------

    def submit(self, command: StationCommand) -> bool:
        """Queue a command; False once the connection is gone (the caller answers OFFLINE)."""
        if self._gone or self._tasks is None:
            return False
        self._commands.append(command)
        if self._commanding is None:
            self._commanding = self._tasks.create_task(self._run_commands())
        return True

    def _stop_commands(self) -> None:
        self._gone = True
        if self._outstanding is not None and not self._outstanding[1].done():
            self._outstanding[1].set_result(None)

    async def _run_commands(self) -> None:
        """Send the queued commands one at a time; once the connection is gone, each is
        reported offline. The worker ends when none is left."""
        try:
            while self._commands:
                command = self._commands.pop(0)
                started = time.monotonic()
                try:
                    outcome = await self._execute(command, started)
                except Exception:
                    logger.exception("command %s failed", command.action, extra=self.info.log)
                    outcome = commands.result(
                        command, CommandOutcome.TIMEOUT, started, error_description="gateway error"
                    )
                await self._reporter.report(command, outcome, self.info)
        finally:
            self._commanding = None

    async def _execute(self, command: StationCommand, started: float) -> CommandResult:
        if self._gone:
            return self._offline(command)
        refused = commands.refusal(self.info.version, command, started)
        if refused is not None:
            return refused
        if command.action == "TriggerMessage":
            self.gate.asked(str(command.payload.get("requestedMessage", "")))
        carrier = {"traceparent": command.traceparent} if command.traceparent else {}
        attributes: dict[str, Any] = {
            "csms.station_id": self.info.station_id,
            "ocpp.action": command.action,
        }
        with continued_span(f"ocpp command {command.action}", carrier, **attributes):
            try:
                answer = await self._call(command)
            except TimeoutError:
                return commands.result(
                    command, CommandOutcome.TIMEOUT, started, error_description="no answer in time"
                )
        if answer is None:
            return self._offline(command)
        return commands.outcome_of(self.info, command, answer, started)

    async def _call(self, command: StationCommand) -> StationAnswer | None:
        """Send the CALL and wait for its answer; None if the connection closed first.

        Raises ``TimeoutError`` when the command's deadline passes without an answer.
        """
        message_id = command.command_id
        if not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
            message_id = uuid4().hex
        waiter: asyncio.Future[StationAnswer | None] = asyncio.get_running_loop().create_future()
        self._outstanding = (message_id, waiter)
        try:
            if not await self.send(Call(message_id, command.action, command.payload)):
                return None
            return await asyncio.wait_for(waiter, max(0.0, command.deadline - time.time()))
        finally:
            self._outstanding = None

    def _offline(self, command: StationCommand) -> CommandResult:
        return commands.result(
            command,
            CommandOutcome.OFFLINE,
            time.monotonic(),
            error_description="the connection closed",
        )

    # -- writing ------------------------------------------------------------------------------

    async def send(self, frame: Frame) -> bool:
        """Send one frame as a text message; False if the connection is closed."""
        data = encode(frame)
        if not write_text(self.websocket, data):
            try:
                await self.websocket.send(data, text=True)
            except ConnectionClosed:
                logger.info("could not send: connection closed", extra=self.info.log)
                return False
        self._count_out(frame)
        return True

    async def _refuse(self, message_id: str, code: ErrorCode, text: str) -> None:
        await self.send(CallError(message_id, error_code(code, self.info.version), text))

    def _count_in(self, frame: Frame | FrameError) -> None:
        if isinstance(frame, FrameError):
            self._metrics.frame_received("invalid", "").inc()
            return
        action = frame.action if isinstance(frame, Call | Send) else ""
        self._metrics.frame_received(type(frame).__name__, _known(action)).inc()

    def _count_out(self, frame: Frame) -> None:
        if isinstance(frame, CallError):
            self._metrics.call_error_sent(frame.code).inc()
        action = frame.action if isinstance(frame, Call | Send) else ""
        self._metrics.frame_sent(type(frame).__name__, action).inc()


# RFC 6455 §5.2: FIN set, opcode 1 (text); a server's frames are not masked.
_TEXT_FIN = 0x81
_DIRECT_MAX = 0xFFFF  # the 16-bit length form; longer messages go through the library


def write_text(websocket: ServerConnection, data: bytes) -> bool:
    """Write one unfragmented text message to the transport, as ``websockets`` would frame
    it, without its per-message machinery (an async context manager, a frame object, its
    serializer, a drain check: a fifth of a gateway's CPU per CALL); False where the library
    must send it instead: the connection not open, a fragmented message or other output
    of the library pending, an extension (permessage-deflate) negotiated, the write buffer
    above its limit (the library then waits for it to drain), or a long message.

    It writes what ``ServerConnection.send(data, text=True)`` writes in that state (tested
    byte for byte), so the library's state (closing, keepalive pings) stays its own."""
    protocol = websocket.protocol
    length = len(data)
    if (
        length > _DIRECT_MAX
        or protocol.state is not State.OPEN
        or protocol.extensions
        or protocol.writes
        or protocol.expect_continuation_frame
        or websocket.send_in_progress is not None
        or websocket.paused
        or websocket.transport.is_closing()
    ):
        return False
    if length < 126:
        header = bytes((_TEXT_FIN, length))
    else:
        header = bytes((_TEXT_FIN, 126, length >> 8, length & 0xFF))
    websocket.transport.write(header + data)
    return True


def _internal_error(call: Call | Send) -> CallError:
    return CallError(
        call.message_id, ErrorCode.INTERNAL_ERROR.value, "the CSMS failed to process this message"
    )


@lru_cache(maxsize=512)
def _known(action: str) -> str:
    """Bound the metric label set: a station may send any action name (cached: every frame)."""
    if not action or any(has_schema(version, action) for version in PREFERENCE):
        return action
    return "unknown"
