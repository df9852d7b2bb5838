"""OCPP-J for the CSMS: versions, frames, error codes, schema validation and action catalogue."""

from csms_ocpp.errors import ErrorCode, error_code
from csms_ocpp.frames import (
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
from csms_ocpp.versions import OcppVersion

__all__ = [
    "Call",
    "CallError",
    "CallResult",
    "CallResultError",
    "ErrorCode",
    "Frame",
    "FrameError",
    "MessageType",
    "OcppVersion",
    "Send",
    "encode",
    "error_code",
    "parse_frame",
]
