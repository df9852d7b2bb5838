"""CALLERROR codes, which differ between OCPP 1.6 and 2.x.

OCPP 1.6 (OCPP-J §4.2.3) spells ``FormationViolation`` and the misspelt
``OccurenceConstraintViolation``; OCPP 2.x (Part 4 §4.3) renamed them and added
``RpcFrameworkError``, ``MessageTypeNotSupported`` and ``SecurityError``.
"""

from enum import StrEnum

from csms_ocpp.versions import OcppVersion


class ErrorCode(StrEnum):
    """Version-neutral names of the CALLERROR codes."""

    FORMAT_VIOLATION = "FormatViolation"
    GENERIC_ERROR = "GenericError"
    INTERNAL_ERROR = "InternalError"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    PROTOCOL_ERROR = "ProtocolError"
    RPC_FRAMEWORK_ERROR = "RpcFrameworkError"
    SECURITY_ERROR = "SecurityError"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"


_V16_SPELLING: dict[ErrorCode, str] = {
    ErrorCode.FORMAT_VIOLATION: "FormationViolation",
    ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION: "OccurenceConstraintViolation",
    # 1.6 has neither: the nearest 1.6 codes for a frame that is not a valid RPC.
    ErrorCode.RPC_FRAMEWORK_ERROR: "FormationViolation",
    ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED: "FormationViolation",
}


def error_code(code: ErrorCode, version: OcppVersion) -> str:
    """The code as it goes on the wire for ``version``."""
    if version is OcppVersion.V16:
        return _V16_SPELLING.get(code, code.value)
    return code.value


_FROM_V16_SPELLING = {
    "FormationViolation": ErrorCode.FORMAT_VIOLATION,
    "OccurenceConstraintViolation": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
}


def parse_error_code(wire: str) -> ErrorCode | None:
    """Read a code a station sent (either spelling); None if it is unknown."""
    if wire in _FROM_V16_SPELLING:
        return _FROM_V16_SPELLING[wire]
    try:
        return ErrorCode(wire)
    except ValueError:
        return None
