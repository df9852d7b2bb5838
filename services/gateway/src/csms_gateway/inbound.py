"""A station's CALLs: check, store durably, then answer (ARCHITECTURE.md "gateway").

The answer never precedes the durable write: a station that got its
CALLRESULT never loses that message. Who answers is routed from the services'
declarations (``AnswerDirectory``): a CALL that needs a decision waits for its
owner's ``CallAnswer`` and for the parts of its contributors, all within the
decision timeout, and gets their merged answer (docs/architecture.md "Composed
answers"), with a documented fallback when the owner's does not come.
"""

import asyncio
import logging
from datetime import datetime
from enum import Enum
from typing import Any

from csms_core import topics
from csms_core.bus import PublishError
from csms_core.calls import GATEWAY, NOBODY, AnswerDirectory, Routing, table_of
from csms_core.router import CallAnswer
from csms_core.telemetry import MessageSampling, continued_span, unsampled_trace_headers
from csms_gateway import events
from csms_gateway.answers import (
    FALLBACKS,
    Answer,
    PendingAnswer,
    answer_frame,
    compose,
    error,
    fallback,
)
from csms_gateway.events import ConnectionInfo, EventPublisher
from csms_ocpp import schemas
from csms_ocpp.actions import gateway_response, is_station_initiated
from csms_ocpp.errors import ErrorCode, error_code
from csms_ocpp.frames import Call, CallError, CallResult, Send

logger = logging.getLogger(__name__)


def check_call(info: ConnectionInfo, call: Call | Send) -> CallError | None:
    """The CALLERROR a station CALL deserves before it is stored, if any."""
    version = info.version
    if not schemas.has_schema(version, call.action):
        # OCPP 2.0.1 Part 4 §4.3 / 1.6 OCPP-J §4.2.3: an action we do not know.
        return error(call, ErrorCode.NOT_IMPLEMENTED, version, f"unknown action {call.action}")
    if not is_station_initiated(version, call.action):
        text = f"{call.action} is sent by the CSMS, not by a charging station"
        return error(call, ErrorCode.NOT_SUPPORTED, version, text)
    violation = schemas.validate(version, call.action, call.payload, lenient=info.lenient)
    if violation is None:
        return None
    return CallError(
        call.message_id,
        error_code(violation.code, version),
        violation.description,
        violation.details,
    )


class Later(Enum):
    """Why ``InboundCalls.answer_soon`` left a CALL to ``answer``."""

    SAMPLED = "sampled"  # its trace is recorded (nothing checked yet)
    CHECKED = "checked"  # valid, and not the gateway's alone to answer now (not sampled)


class InboundCalls:
    """Answers one connection's CALLs; the connection feeds them in order, one at a time."""

    def __init__(
        self,
        info: ConnectionInfo,
        publisher: EventPublisher,
        decision_timeout_s: float,
        sampling: MessageSampling | None = None,
        directory: AnswerDirectory | None = None,
    ) -> None:
        self._info = info
        self._publisher = publisher
        self._decision_timeout_s = decision_timeout_s
        self._sampling = sampling if sampling is not None else MessageSampling()
        self._directory = directory
        self._pending: dict[str, PendingAnswer] = {}

    async def answer(
        self, call: Call | Send, received_at: datetime, later: Later | None = None
    ) -> Answer | None:
        """The frame to send back (None for a 2.1 SEND, which is never answered); ``later``:
        what ``answer_soon`` left to this coroutine."""
        refusal = None if later is Later.CHECKED else check_call(self._info, call)
        if refusal is not None:
            if isinstance(call, Send):
                logger.warning("dropping invalid SEND: %s", refusal.description, extra=self._log)
                return None
            return refusal
        routing = await self._route(call)
        if isinstance(call, Send):
            await self._publish_send(call, routing, received_at)
            return None
        sampled = None if later is None else later is Later.SAMPLED
        return await self._store_then_answer(call, routing, received_at, sampled)

    def answer_soon(
        self, call: Call, received_at: datetime
    ) -> "Answer | asyncio.Future[Any] | Later":
        """``answer``'s common case without a coroutine: the CALLERROR the CALL deserves,
        or, for one the gateway answers itself with no part waited for, the future of its
        record's acknowledgement (``answered`` makes the answer of it once done). A
        ``Later``: ``answer`` must handle it (a party's part is waited for, nobody in the
        table decides it, its trace is recorded: the span lasts until the record is
        durable, or the bus appends only in a coroutine)."""
        if self._sampling.sampled():
            return Later.SAMPLED
        refusal = check_call(self._info, call)
        if refusal is not None:
            return refusal
        if self._directory is None:
            return Later.CHECKED
        routing = self._directory.table.route(self._info.version.number, call.action, call.payload)
        if routing.owner != GATEWAY or routing.contributors:
            return Later.CHECKED
        event = events.call_received(self._info, call, routing, received_at)
        try:
            acknowledged = self._publisher.publish_soon(
                topics.OCPP_INBOUND, event, unsampled_trace_headers()
            )
        except PublishError as exc:
            return self._not_stored(call, exc)
        return Later.CHECKED if acknowledged is None else acknowledged

    def answered(self, call: Call, acknowledged: "asyncio.Future[Any]") -> Answer:
        """The answer to ``answer_soon``'s CALL once its record's future is done."""
        failure = asyncio.CancelledError() if acknowledged.cancelled() else acknowledged.exception()
        if failure is not None:
            return self._not_stored(call, failure)
        return CallResult(call.message_id, gateway_response(call.action))

    def _not_stored(self, call: Call, failure: BaseException) -> Answer:
        logger.error("could not store %s", call.action, exc_info=failure, extra=self._log)
        text = "could not store the message; retry"
        return error(call, ErrorCode.INTERNAL_ERROR, self._info.version, text)

    async def _route(self, call: Call | Send) -> Routing:
        version = self._info.version.number
        if self._directory is None:  # no directory: no party is known to be alive
            return table_of([]).route(version, call.action, call.payload)
        # The table as it stands (no coroutine for most CALLs); the directory when nobody
        # in it decides this one (it is read again first).
        routing = self._directory.table.route(version, call.action, call.payload)
        if routing.owner != NOBODY:
            return routing
        return await self._directory.route(version, call.action, call.payload)

    def resolve(self, answer: CallAnswer) -> bool:
        """Hand a service's part of an answer to the CALL waiting for it; False if none waits
        (or not for that party)."""
        pending = self._pending.get(answer.message_id)
        return pending is not None and pending.add(answer)

    async def _store_then_answer(
        self, call: Call, routing: Routing, received_at: datetime, sampled: bool | None
    ) -> Answer:
        # Wait for the answer from before the write: a fast service may answer at once.
        pending: PendingAnswer | None = None
        if routing.waits:
            pending = self._pending[call.message_id] = PendingAnswer(routing)
        try:
            await self._publish(call, routing, received_at, sampled)
            return await self._decide(call, routing, pending)
        except PublishError:
            logger.exception("could not store %s", call.action, extra=self._log)
            text = "could not store the message; retry"
            return error(call, ErrorCode.INTERNAL_ERROR, self._info.version, text)
        finally:
            self._pending.pop(call.message_id, None)

    async def _decide(self, call: Call, routing: Routing, pending: PendingAnswer | None) -> Answer:
        version = self._info.version
        if pending is None:
            if routing.owner == GATEWAY:
                return CallResult(call.message_id, gateway_response(call.action))
            if call.action in FALLBACKS:
                logger.warning("nobody decides %s now: fallback", call.action, extra=self._log)
                return fallback(version, call)
            text = f"no service handles {call.action} yet"
            return error(call, ErrorCode.NOT_SUPPORTED, version, text)
        await pending.wait(self._decision_timeout_s)
        if pending.late:
            logger.warning(
                "parts of the answer to %s came too late: %s",
                call.action,
                pending.late,
                extra=self._log,
            )
        decided: Answer
        if routing.owner == GATEWAY:
            decided = CallResult(call.message_id, gateway_response(call.action))
        elif pending.decision is None:
            logger.warning("no decision for %s in time", call.action, extra=self._log)
            return fallback(version, call)
        else:
            decided = self._owners(call, pending.decision)
        if isinstance(decided, CallError):
            return decided
        parts = list(pending.parts.values())
        return compose(version, call, decided.payload, parts, routing.contributors)

    def _owners(self, call: Call, decision: CallAnswer) -> Answer:
        """The owner's answer; it came back through Redis: continue the trace it carries
        (the last hop)."""
        carrier = {"traceparent": decision.traceparent} if decision.traceparent else {}
        attributes = {"csms.station_id": self._info.station_id, "ocpp.message_id": call.message_id}
        with continued_span(f"answer {call.action}", carrier, **attributes):
            return answer_frame(self._info.version, call, decision)

    async def _publish(
        self,
        call: Call | Send,
        routing: Routing,
        received_at: datetime,
        sampled: bool | None = None,
    ) -> None:
        event = events.call_received(self._info, call, routing, received_at)
        if sampled is None:
            sampled = self._sampling.sampled()
        if not sampled:
            # A trace nobody records: its record carries the new trace on (flags 00), and
            # no span or context is made for it (nothing in between would read them).
            headers = unsampled_trace_headers()
            await self._publisher.publish(topics.OCPP_INBOUND, event, headers=headers)
            return
        attributes: dict[str, Any] = {
            "csms.station_id": self._info.station_id,
            "ocpp.action": call.action,
            "ocpp.message_id": call.message_id,
        }
        with continued_span(f"ocpp {call.action}", {}, **attributes):
            await self._publisher.publish(topics.OCPP_INBOUND, event)

    async def _publish_send(self, send: Send, routing: Routing, received_at: datetime) -> None:
        try:
            await self._publish(send, routing, received_at)
        except PublishError:
            logger.exception("could not store SEND %s", send.action, extra=self._log)

    @property
    def _log(self) -> dict[str, str]:
        return self._info.log
