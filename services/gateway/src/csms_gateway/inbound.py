"""A station's CALLs: check, store durably, then answer (ARCHITECTURE.md "gateway").

The answer never precedes the durable write: a station that got its
CALLRESULT never loses that message. Calls that need a decision wait for the
owning service's ``CallAnswer``, with a documented fallback when none comes.
"""

import asyncio
import logging
from datetime import datetime
from typing import Any

from csms_core import topics
from csms_core.bus import PublishError
from csms_core.router import CallAnswer
from csms_core.telemetry import MessageSampling, continued_span
from csms_gateway import events
from csms_gateway.events import ConnectionInfo, EventPublisher
from csms_ocpp import schemas
from csms_ocpp.actions import Owner, gateway_response, is_station_initiated, now_iso, owner
from csms_ocpp.errors import ErrorCode, error_code, parse_error_code
from csms_ocpp.frames import Call, CallError, CallResult, Send
from csms_ocpp.versions import OcppVersion

logger = logging.getLogger(__name__)

Answer = CallResult | CallError


def check_call(info: ConnectionInfo, call: Call | Send) -> CallError | None:
    """The CALLERROR a station CALL deserves before it is stored, if any."""
    version = info.version
    if not schemas.has_schema(version, call.action):
        # OCPP 2.0.1 Part 4 §4.3 / 1.6 OCPP-J §4.2.3: an action we do not know.
        return _error(call, ErrorCode.NOT_IMPLEMENTED, version, f"unknown action {call.action}")
    if not is_station_initiated(version, call.action):
        text = f"{call.action} is sent by the CSMS, not by a charging station"
        return _error(call, ErrorCode.NOT_SUPPORTED, version, text)
    violation = schemas.validate(version, call.action, call.payload, lenient=info.lenient)
    if violation is None:
        return None
    return CallError(
        call.message_id,
        error_code(violation.code, version),
        violation.description,
        violation.details,
    )


def fallback(version: OcppVersion, call: Call) -> Answer:
    """The answer when the owning service decided nothing within the decision timeout."""
    if call.action == "BootNotification":
        # Pending: the station stays connected and boots again after ``interval`` seconds.
        return CallResult(
            call.message_id, {"status": "Pending", "currentTime": now_iso(), "interval": 30}
        )
    if call.action == "Authorize":
        if version is OcppVersion.V16:
            return CallResult(call.message_id, {"idTagInfo": {"status": "Invalid"}})
        return CallResult(call.message_id, {"idTokenInfo": {"status": "Unknown"}})
    return _error(call, ErrorCode.INTERNAL_ERROR, version, "no decision in time")


def answer_frame(version: OcppVersion, call: Call, answer: CallAnswer) -> Answer:
    """The frame for a service's ``CallAnswer``; a non-conforming payload is our bug."""
    if answer.error_code is not None:
        code = parse_error_code(answer.error_code)
        wire = error_code(code, version) if code is not None else answer.error_code
        return CallError(call.message_id, wire, answer.error_description)
    payload = answer.payload if answer.payload is not None else {}
    violation = schemas.validate(version, call.action, payload, response=True)
    if violation is None:
        return CallResult(call.message_id, payload)
    logger.error(
        "service answer to %s breaks the response schema: %s",
        call.action,
        violation.description,
        extra={"station_id": answer.station_id, "message_id": call.message_id},
    )
    return _error(call, ErrorCode.INTERNAL_ERROR, version, "the CSMS produced an invalid answer")


def _error(call: Call | Send, code: ErrorCode, version: OcppVersion, text: str) -> CallError:
    return CallError(call.message_id, error_code(code, version), text)


class InboundCalls:
    """Answers one connection's CALLs; the connection feeds them in order, one at a time."""

    def __init__(
        self,
        info: ConnectionInfo,
        publisher: EventPublisher,
        decision_timeout_s: float,
        sampling: MessageSampling | None = None,
    ) -> None:
        self._info = info
        self._publisher = publisher
        self._decision_timeout_s = decision_timeout_s
        self._sampling = sampling if sampling is not None else MessageSampling()
        self._decisions: dict[str, asyncio.Future[CallAnswer]] = {}

    async def answer(self, call: Call | Send, received_at: datetime) -> Answer | None:
        """The frame to send back (None for a 2.1 SEND, which is never answered)."""
        refusal = check_call(self._info, call)
        if refusal is not None:
            if isinstance(call, Send):
                logger.warning("dropping invalid SEND: %s", refusal.description, extra=self._log)
                return None
            return refusal
        decided_by = owner(self._info.version, call.action, call.payload)
        if isinstance(call, Send):
            await self._publish_send(call, decided_by, received_at)
            return None
        return await self._store_then_answer(call, decided_by, received_at)

    def resolve(self, answer: CallAnswer) -> bool:
        """Hand a service's answer to the CALL waiting for it; False if none waits."""
        waiter = self._decisions.get(answer.message_id)
        if waiter is None or waiter.done():
            return False
        waiter.set_result(answer)
        return True

    async def _store_then_answer(
        self, call: Call, decided_by: Owner, received_at: datetime
    ) -> Answer:
        # Wait for the answer from before the write: a fast service may answer at once.
        waiter: asyncio.Future[CallAnswer] | None = None
        if decided_by not in (Owner.GATEWAY, Owner.NOBODY):
            waiter = self._decisions[call.message_id] = asyncio.get_running_loop().create_future()
        try:
            await self._publish(call, decided_by, received_at)
            return await self._decide(call, decided_by, waiter)
        except PublishError:
            logger.exception("could not store %s", call.action, extra=self._log)
            text = "could not store the message; retry"
            return _error(call, ErrorCode.INTERNAL_ERROR, self._info.version, text)
        finally:
            self._decisions.pop(call.message_id, None)

    async def _decide(
        self, call: Call, decided_by: Owner, waiter: asyncio.Future[CallAnswer] | None
    ) -> Answer:
        version = self._info.version
        if decided_by is Owner.GATEWAY:
            return CallResult(call.message_id, gateway_response(call.action))
        if waiter is None:
            text = f"no service handles {call.action} yet"
            return _error(call, ErrorCode.NOT_SUPPORTED, version, text)
        try:
            answer = await asyncio.wait_for(waiter, self._decision_timeout_s)
        except TimeoutError:
            logger.warning("no decision for %s in time", call.action, extra=self._log)
            return fallback(version, call)
        # The answer came back through Redis: continue the trace it carries (the last hop).
        carrier = {"traceparent": answer.traceparent} if answer.traceparent else {}
        attributes = {"csms.station_id": self._info.station_id, "ocpp.message_id": call.message_id}
        with continued_span(f"answer {call.action}", carrier, **attributes):
            return answer_frame(version, call, answer)

    async def _publish(self, call: Call | Send, decided_by: Owner, received_at: datetime) -> None:
        event = events.call_received(self._info, call, decided_by, received_at)
        attributes: dict[str, Any] = {
            "csms.station_id": self._info.station_id,
            "ocpp.action": call.action,
            "ocpp.message_id": call.message_id,
        }
        with self._sampling.span(f"ocpp {call.action}", **attributes):
            await self._publisher.publish(topics.OCPP_INBOUND, event)

    async def _publish_send(self, send: Send, decided_by: Owner, received_at: datetime) -> None:
        try:
            await self._publish(send, decided_by, received_at)
        except PublishError:
            logger.exception("could not store SEND %s", send.action, extra=self._log)

    @property
    def _log(self) -> dict[str, str]:
        return self._info.log
