"""CALLERROR codes as each version spells them on the wire."""

import pytest

from csms_ocpp.errors import ErrorCode, error_code, parse_error_code
from csms_ocpp.versions import OcppVersion

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21

# (code, OCPP 1.6 spelling; OCPP-J 1.6 §4.2.3) - 2.0.1 and 2.1 spell every code as its name.
SPELLINGS = [
    (ErrorCode.FORMAT_VIOLATION, "FormationViolation"),
    (ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, "OccurenceConstraintViolation"),
    (ErrorCode.RPC_FRAMEWORK_ERROR, "FormationViolation"),
    (ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED, "FormationViolation"),
    (ErrorCode.GENERIC_ERROR, "GenericError"),
    (ErrorCode.INTERNAL_ERROR, "InternalError"),
    (ErrorCode.NOT_IMPLEMENTED, "NotImplemented"),
    (ErrorCode.NOT_SUPPORTED, "NotSupported"),
    (ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "PropertyConstraintViolation"),
    (ErrorCode.PROTOCOL_ERROR, "ProtocolError"),
    (ErrorCode.SECURITY_ERROR, "SecurityError"),
    (ErrorCode.TYPE_CONSTRAINT_VIOLATION, "TypeConstraintViolation"),
]


def test_every_code_has_a_spelling() -> None:
    assert {code for code, _ in SPELLINGS} == set(ErrorCode)


@pytest.mark.parametrize(("code", "v16_spelling"), SPELLINGS)
def test_error_code_spelling_per_version(code: ErrorCode, v16_spelling: str) -> None:
    assert error_code(code, V16) == v16_spelling
    assert error_code(code, V201) == code.value
    assert error_code(code, V21) == code.value


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        ("FormationViolation", ErrorCode.FORMAT_VIOLATION),
        ("FormatViolation", ErrorCode.FORMAT_VIOLATION),
        ("OccurenceConstraintViolation", ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
        ("OccurrenceConstraintViolation", ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
        ("RpcFrameworkError", ErrorCode.RPC_FRAMEWORK_ERROR),
        ("NotImplemented", ErrorCode.NOT_IMPLEMENTED),
        ("notimplemented", None),
        ("VendorSpecificError", None),
        ("", None),
    ],
)
def test_parse_error_code_reads_either_spelling(wire: str, code: ErrorCode | None) -> None:
    assert parse_error_code(wire) is code
