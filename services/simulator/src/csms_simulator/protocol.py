"""OCPP-J for one station: outgoing CALLs queued one at a time, answers correlated.

OCPP 2.0.1 Part 4 §4.1.1 (1.6 OCPP-J §4.1.1): a station has at most one CALL of its
own outstanding; the rest wait in order. Until the CSMS accepted the BootNotification
only BootNotification goes out (2.0.1 B02.FR.01). While offline, transaction-related
messages are kept (1.6 §4.7, 2.0.1 E12) and replayed in order; the others are dropped.
"""

import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from csms_ocpp import Call, CallError, CallResult, FrameError, OcppVersion, encode, parse_frame
from csms_ocpp.frames import Frame, JsonObject
from csms_ocpp.schemas import validate
from csms_simulator.clock import Timer, Timers
from csms_simulator.stats import FleetStats

logger = logging.getLogger(__name__)

TIMEOUT = "Timeout"
DROPPED = "Dropped"  # lost with the connection, or not sent because offline
BOOT = "BootNotification"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a CALL ended: its CALLRESULT payload, or why there is none."""

    payload: JsonObject | None = None
    error: str | None = None  # the CALLERROR code, TIMEOUT or DROPPED

    @property
    def ok(self) -> bool:
        return self.payload is not None


OnResult = Callable[[Outcome], None]


@dataclass(slots=True)
class PendingCall:
    action: str
    build: Callable[[], JsonObject]  # the payload is made when sent (1.6 ids known late)
    on_result: OnResult | None = None
    queueable: bool = False
    created_offline: bool = False
    message_id: str = ""
    sent_at: float = 0.0
    timer: Timer | None = field(default=None, repr=False)

    def resolve(self, outcome: Outcome) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.on_result is not None:
            self.on_result(outcome)


class Protocol:
    def __init__(
        self,
        version: OcppVersion,
        timers: Timers,
        stats: FleetStats,
        *,
        call_timeout_s: float,
        validate_outgoing: bool = False,
    ) -> None:
        self.version = version
        self.timers = timers
        self.stats = stats
        self.call_timeout_s = call_timeout_s  # simulated seconds
        self.validate_outgoing = validate_outgoing
        self.outbox: list[str] = []
        self.queue: deque[PendingCall] = deque()
        self.in_flight: PendingCall | None = None
        self.connected = False
        self.ready = False  # connected and booted
        # While a CSMS CALL is being answered, our own CALLs wait: the answer goes first.
        self.answering = False
        self._ids = itertools.count(1)

    def call(
        self,
        action: str,
        build: Callable[[], JsonObject],
        on_result: OnResult | None = None,
        *,
        queueable: bool = False,
    ) -> None:
        """Send a CALL when its turn comes; ``on_result`` gets its outcome."""
        pending = PendingCall(action, build, on_result, queueable, not self.ready)
        if action == BOOT:
            self.queue.appendleft(pending)
        elif not self.ready and not queueable:
            self.stats.dropped_offline += 1
            pending.resolve(Outcome(error=DROPPED))
            return
        else:
            self.queue.append(pending)
        self._pump()

    def queued(self, action: str | None = None) -> int:
        return sum(action in (None, pending.action) for pending in self.queue)

    def connection_opened(self) -> None:
        self.connected = True

    def boot_accepted(self) -> None:
        self.ready = True
        self._pump()

    def connection_lost(self) -> None:
        """Keep what must survive an outage; fail the rest."""
        self.connected = self.ready = self.answering = False
        self.outbox.clear()
        waiting = list(self.queue)
        in_flight, self.in_flight = self.in_flight, None
        if in_flight is not None:
            if in_flight.timer is not None:
                in_flight.timer.cancel()
            # No answer came: it may never have arrived, so a kept message is sent again.
            waiting.insert(0, in_flight)
        self.queue = deque(pending for pending in waiting if pending.queueable)
        # Callbacks may queue new calls: resolve only once the queue is consistent.
        for pending in waiting:
            if not pending.queueable:
                pending.resolve(Outcome(error=DROPPED))

    def _pump(self) -> None:
        if self.in_flight is not None or self.answering or not self.connected or not self.queue:
            return
        if not self.ready and self.queue[0].action != BOOT:
            return
        pending = self.queue.popleft()
        pending.message_id = str(next(self._ids))
        payload = pending.build()
        self._check(pending.action, payload, response=False)
        self.outbox.append(encode(Call(pending.message_id, pending.action, payload)).decode())
        pending.sent_at = time.perf_counter()
        pending.timer = self.timers.after(self.call_timeout_s, lambda: self._expire(pending))
        self.in_flight = pending
        self.stats.sent(pending.action)
        if pending.created_offline and pending.action != BOOT:
            self.stats.replayed += 1

    def _expire(self, pending: PendingCall) -> None:
        if self.in_flight is not pending:
            return
        self.in_flight = None
        self.stats.timeout(pending.action)
        pending.timer = None
        pending.resolve(Outcome(error=TIMEOUT))
        self._pump()

    def receive(self, raw: str | bytes) -> Call | None:
        """Take one frame from the CSMS; a CALL is returned for the station to answer."""
        self.stats.frames_in += 1
        frame = parse_frame(raw, self.version)
        if isinstance(frame, FrameError):
            self.stats.protocol_errors += 1
            self.stats.errors[f"frame:{frame.code}"] += 1
            if frame.answerable:
                self.send(frame.to_call_error(self.version))
            return None
        if isinstance(frame, Call):
            self.stats.incoming[frame.action] += 1
            self.answering = True
            return frame
        if isinstance(frame, CallResult | CallError):
            self._settle(frame)
        return None  # a 2.1 SEND or CALLRESULTERROR from the CSMS needs no answer

    def _settle(self, frame: CallResult | CallError) -> None:
        pending = self.in_flight
        if pending is None or pending.message_id != frame.message_id:
            self.stats.protocol_errors += 1
            self.stats.errors["answer:unknown-message-id"] += 1
            return
        self.in_flight = None
        if isinstance(frame, CallResult):
            self.stats.answered(pending.action, time.perf_counter() - pending.sent_at)
            pending.resolve(Outcome(payload=frame.payload))
        else:
            self.stats.call_error(pending.action, frame.code)
            pending.resolve(Outcome(error=frame.code))
        self._pump()

    def answer(self, call: Call, result: JsonObject | CallError) -> None:
        if isinstance(result, CallError):
            self.send(result)
        else:
            self._check(call.action, result, response=True)
            self.send(CallResult(call.message_id, result))
        self.answering = False
        self._pump()

    def send(self, frame: Frame) -> None:
        if self.connected:
            self.outbox.append(encode(frame).decode())
            self.stats.frames_out += 1

    def _check(self, action: str, payload: JsonObject, *, response: bool) -> None:
        if not self.validate_outgoing:
            return
        violation = validate(self.version, action, payload, response=response)
        if violation is not None:
            self.stats.invalid_outgoing += 1
            self.stats.errors[f"invalid:{action}"] += 1
            logger.warning("invalid outgoing %s: %s", action, violation.description)
