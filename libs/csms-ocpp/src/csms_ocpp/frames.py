"""OCPP-J RPC framing (1.6 OCPP-J §4; 2.0.1 Part 4 §4; 2.1 Part 4 adds types 5 and 6).

A frame is a JSON array whose first element is the message type:
``[2, id, action, payload]`` CALL, ``[3, id, payload]`` CALLRESULT,
``[4, id, code, description, details]`` CALLERROR, and in 2.1
``[5, id, code, description, details]`` CALLRESULTERROR and
``[6, id, action, payload]`` SEND (no answer).

``parse_frame`` never raises: a frame it cannot accept comes back as a
``FrameError`` naming the CALLERROR to send, so a bad frame is a value.
"""

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import orjson

from csms_ocpp.errors import ErrorCode, error_code
from csms_ocpp.versions import OcppVersion

JsonObject = dict[str, Any]

# OCPP 2.0.1 Part 4 §4.2.1: the messageId is a string of at most 36 characters.
MAX_MESSAGE_ID_LENGTH = 36
# OCPP 2.0.1 Part 4 §4.3: a CALLERROR for a frame whose id cannot be read uses "-1".
UNREADABLE_MESSAGE_ID = "-1"


class MessageType(IntEnum):
    CALL = 2
    CALL_RESULT = 3
    CALL_ERROR = 4
    CALL_RESULT_ERROR = 5
    SEND = 6


@dataclass(frozen=True, slots=True)
class Call:
    message_id: str
    action: str
    payload: JsonObject

    def to_wire(self) -> list[Any]:
        return [MessageType.CALL, self.message_id, self.action, self.payload]


@dataclass(frozen=True, slots=True)
class Send:
    """OCPP 2.1 SEND: a CALL that expects no answer."""

    message_id: str
    action: str
    payload: JsonObject

    def to_wire(self) -> list[Any]:
        return [MessageType.SEND, self.message_id, self.action, self.payload]


@dataclass(frozen=True, slots=True)
class CallResult:
    message_id: str
    payload: JsonObject

    def to_wire(self) -> list[Any]:
        return [MessageType.CALL_RESULT, self.message_id, self.payload]


@dataclass(frozen=True, slots=True)
class CallError:
    message_id: str
    code: str
    description: str = ""
    details: JsonObject = field(default_factory=dict)

    def to_wire(self) -> list[Any]:
        return [MessageType.CALL_ERROR, self.message_id, self.code, self.description, self.details]


@dataclass(frozen=True, slots=True)
class CallResultError:
    """OCPP 2.1: the CSMS (or station) could not process a CALLRESULT it received."""

    message_id: str
    code: str
    description: str = ""
    details: JsonObject = field(default_factory=dict)

    def to_wire(self) -> list[Any]:
        return [
            MessageType.CALL_RESULT_ERROR,
            self.message_id,
            self.code,
            self.description,
            self.details,
        ]


Frame = Call | Send | CallResult | CallError | CallResultError


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame that could not be accepted, and the CALLERROR it deserves."""

    message_id: str
    code: ErrorCode
    description: str
    details: JsonObject = field(default_factory=dict)
    # False where the spec forbids answering (a bad CALLRESULT/CALLERROR is only logged).
    answerable: bool = True

    def to_call_error(self, version: OcppVersion) -> CallError:
        return CallError(
            self.message_id, error_code(self.code, version), self.description, self.details
        )


def encode(frame: Frame) -> bytes:
    """Serialize a frame to the UTF-8 JSON text sent on the WebSocket."""
    return orjson.dumps(frame.to_wire())


def _versions_types(version: OcppVersion) -> dict[int, MessageType]:
    types = [MessageType.CALL, MessageType.CALL_RESULT, MessageType.CALL_ERROR]
    if version is OcppVersion.V21:
        types += [MessageType.CALL_RESULT_ERROR, MessageType.SEND]
    return {int(message_type): message_type for message_type in types}


# The message types each version knows, by number (read for every frame).
_TYPES = {version: _versions_types(version) for version in OcppVersion}


def parse_frame(raw: str | bytes, version: OcppVersion) -> Frame | FrameError:
    """Decode one WebSocket text message into a frame, or the error to answer it with."""
    try:
        message = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return FrameError(
            UNREADABLE_MESSAGE_ID,
            ErrorCode.RPC_FRAMEWORK_ERROR if version.is_2x else ErrorCode.FORMAT_VIOLATION,
            "Frame is not valid JSON",
            {"cause": str(exc)},
        )
    if not isinstance(message, list) or len(message) < 3:
        return FrameError(
            UNREADABLE_MESSAGE_ID,
            ErrorCode.RPC_FRAMEWORK_ERROR,
            "Frame is not a JSON array of at least 3 elements",
        )
    message_type, message_id = message[0], message[1]
    if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        return FrameError(
            UNREADABLE_MESSAGE_ID,
            ErrorCode.RPC_FRAMEWORK_ERROR,
            f"messageId must be a string of 1 to {MAX_MESSAGE_ID_LENGTH} characters",
        )
    if not isinstance(message_type, int) or isinstance(message_type, bool):
        return FrameError(
            message_id, ErrorCode.RPC_FRAMEWORK_ERROR, "messageTypeId must be a number"
        )
    known = _TYPES[version].get(message_type)
    if known is None:
        return FrameError(
            message_id,
            ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
            f"Message type {message_type} is not supported in OCPP {version.number}",
        )
    return _parse_typed(known, message_id, message)


def _parse_typed(
    message_type: MessageType, message_id: str, message: list[Any]
) -> Frame | FrameError:
    if message_type in (MessageType.CALL, MessageType.SEND):
        return _parse_call(message_type, message_id, message)
    if message_type is MessageType.CALL_RESULT:
        if len(message) != 3 or not isinstance(message[2], dict):
            return FrameError(
                message_id,
                ErrorCode.PROTOCOL_ERROR,
                "CALLRESULT must be [3, id, {payload}]",
                answerable=False,
            )
        return CallResult(message_id, message[2])
    return _parse_error(message_type, message_id, message)


def _parse_call(
    message_type: MessageType, message_id: str, message: list[Any]
) -> Frame | FrameError:
    if len(message) != 4:
        return FrameError(
            message_id, ErrorCode.RPC_FRAMEWORK_ERROR, "CALL must be [2, id, action, {payload}]"
        )
    action, payload = message[2], message[3]
    if not isinstance(action, str) or not action:
        return FrameError(
            message_id, ErrorCode.RPC_FRAMEWORK_ERROR, "action must be a non-empty string"
        )
    if not isinstance(payload, dict):
        return FrameError(message_id, ErrorCode.FORMAT_VIOLATION, "payload must be a JSON object")
    frame_class = Call if message_type is MessageType.CALL else Send
    return frame_class(message_id, action, payload)


def _parse_error(
    message_type: MessageType, message_id: str, message: list[Any]
) -> Frame | FrameError:
    code, description = message[2], message[3] if len(message) > 3 else ""
    details = message[4] if len(message) > 4 else {}
    if (
        len(message) > 5
        or not isinstance(code, str)
        or not isinstance(description, str)
        or not isinstance(details, dict)
    ):
        return FrameError(
            message_id,
            ErrorCode.PROTOCOL_ERROR,
            "CALLERROR must be [4, id, code, description, {details}]",
            answerable=False,
        )
    frame_class = CallError if message_type is MessageType.CALL_ERROR else CallResultError
    return frame_class(message_id, code, description, details)
