"""Schema violations and the CALLERROR code each one earns (OCPP 2.0.1 Part 4 §4.3)."""

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator

from csms_ocpp import schemas
from csms_ocpp.errors import ErrorCode, error_code
from csms_ocpp.schemas import UnknownAction, Violation, validate
from csms_ocpp.versions import OcppVersion

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21

BOOT_V16: dict[str, Any] = {"chargePointVendor": "Acme", "chargePointModel": "Fast-1"}
BOOT_V2X: dict[str, Any] = {
    "reason": "PowerUp",
    "chargingStation": {"model": "Fast-1", "vendorName": "Acme"},
}
BOOT: dict[OcppVersion, dict[str, Any]] = {V16: BOOT_V16, V201: BOOT_V2X, V21: BOOT_V2X}


def boot(version: OcppVersion, **changes: Any) -> dict[str, Any]:
    """A valid BootNotification of ``version`` with top-level fields changed (None removes)."""
    payload = {**BOOT[version], **changes}
    return {name: value for name, value in payload.items() if value is not None}


@pytest.mark.parametrize("version", list(OcppVersion))
def test_a_valid_payload_passes(version: OcppVersion) -> None:
    assert validate(version, "BootNotification", boot(version)) is None
    assert validate(version, "BootNotification", boot(version), lenient=True) is None


# (version, action, payload, response?, violation)
VIOLATIONS: list[tuple[OcppVersion, str, dict[str, Any], bool, Violation]] = [
    (
        V16,
        "BootNotification",
        {"chargePointVendor": "Acme"},
        False,
        Violation(
            ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
            "$: 'chargePointModel' is a required property",
            {"path": "$", "keyword": "required"},
        ),
    ),
    (
        V201,
        "BootNotification",
        {"reason": "PowerUp"},
        False,
        Violation(
            ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
            "$: 'chargingStation' is a required property",
            {"path": "$", "keyword": "required"},
        ),
    ),
    (
        V21,
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": "Fast-1"}},
        False,
        Violation(
            ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
            "$.chargingStation: 'vendorName' is a required property",
            {"path": "$.chargingStation", "keyword": "required"},
        ),
    ),
    (
        V16,
        "BootNotification",
        {"chargePointVendor": "Acme", "chargePointModel": 5},
        False,
        Violation(
            ErrorCode.TYPE_CONSTRAINT_VIOLATION,
            "$.chargePointModel: 5 is not of type 'string'",
            {"path": "$.chargePointModel", "keyword": "type"},
        ),
    ),
    (
        V201,
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": "Fast-1"},
        False,
        Violation(
            ErrorCode.TYPE_CONSTRAINT_VIOLATION,
            "$.chargingStation: 'Fast-1' is not of type 'object'",
            {"path": "$.chargingStation", "keyword": "type"},
        ),
    ),
    (
        V16,
        "BootNotification",
        {"chargePointVendor": "A" * 21, "chargePointModel": "Fast-1"},
        False,
        Violation(
            ErrorCode.TYPE_CONSTRAINT_VIOLATION,
            f"$.chargePointVendor: '{'A' * 21}' is too long",
            {"path": "$.chargePointVendor", "keyword": "maxLength"},
        ),
    ),
    (
        V16,
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
        False,
        Violation(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
            "$.status: 'Sleeping' is not one of ['Available', 'Preparing', 'Charging', "
            "'SuspendedEVSE', 'SuspendedEV', 'Finishing', 'Reserved', 'Unavailable', 'Faulted']",
            {"path": "$.status", "keyword": "enum"},
        ),
    ),
    (
        V21,
        "BootNotification",
        {"reason": "Bored", "chargingStation": {"model": "Fast-1", "vendorName": "Acme"}},
        False,
        Violation(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
            "$.reason: 'Bored' is not one of ['ApplicationReset', 'FirmwareUpdate', 'LocalReset', "
            "'PowerUp', 'RemoteReset', 'ScheduledReset', 'Triggered', 'Unknown', 'Watchdog']",
            {"path": "$.reason", "keyword": "enum"},
        ),
    ),
    (
        V16,
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": "today"},
        False,
        Violation(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
            "$.timestamp: 'today' is not a 'date-time'",
            {"path": "$.timestamp", "keyword": "format"},
        ),
    ),
    (
        V201,
        "Heartbeat",
        {"currentTime": "2024-13-45T25:00:00Z"},
        True,
        Violation(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
            "$.currentTime: '2024-13-45T25:00:00Z' is not a 'date-time'",
            {"path": "$.currentTime", "keyword": "format"},
        ),
    ),
    (
        V16,
        "BootNotification",
        {**BOOT_V16, "colour": "red"},
        False,
        Violation(
            ErrorCode.FORMAT_VIOLATION,
            "$: Additional properties are not allowed ('colour' was unexpected)",
            {"path": "$", "keyword": "additionalProperties"},
        ),
    ),
    (
        V201,
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V", "colour": 1}},
        False,
        Violation(
            ErrorCode.FORMAT_VIOLATION,
            "$.chargingStation: Additional properties are not allowed ('colour' was unexpected)",
            {"path": "$.chargingStation", "keyword": "additionalProperties"},
        ),
    ),
    (
        V21,
        "NotifyPeriodicEventStream",
        {"id": 1, "pending": 0, "basetime": "2024-01-01T00:00:00Z", "data": []},
        False,
        Violation(
            ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
            "$.data: [] should be non-empty",
            {"path": "$.data", "keyword": "minItems"},
        ),
    ),
]


@pytest.mark.parametrize(("version", "action", "payload", "response", "violation"), VIOLATIONS)
def test_violation_and_its_code(
    version: OcppVersion,
    action: str,
    payload: dict[str, Any],
    response: bool,
    violation: Violation,
) -> None:
    assert validate(version, action, payload, response=response) == violation


@pytest.mark.parametrize(
    ("version", "payload", "wire_code"),
    [
        (V16, {"chargePointVendor": "Acme"}, "OccurenceConstraintViolation"),
        (V201, {"reason": "PowerUp"}, "OccurrenceConstraintViolation"),
        (V21, {"reason": "PowerUp"}, "OccurrenceConstraintViolation"),
        (V16, {**BOOT_V16, "colour": "red"}, "FormationViolation"),
        (V201, {**BOOT_V2X, "colour": "red"}, "FormatViolation"),
        (V21, {**BOOT_V2X, "colour": "red"}, "FormatViolation"),
        (V16, {**BOOT_V16, "chargePointModel": 1}, "TypeConstraintViolation"),
        (V201, {**BOOT_V2X, "reason": 1}, "TypeConstraintViolation"),
        (V21, {**BOOT_V2X, "reason": "Bored"}, "PropertyConstraintViolation"),
    ],
)
def test_wire_spelling_of_the_code(
    version: OcppVersion, payload: dict[str, Any], wire_code: str
) -> None:
    violation = validate(version, "BootNotification", payload)
    assert violation is not None
    assert error_code(violation.code, version) == wire_code


@pytest.mark.parametrize(
    ("keyword_schema", "instance", "code"),
    [
        ({"pattern": "^[0-9]+$"}, "abc", ErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
        ({"minimum": 0}, -1, ErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
        ({"maxItems": 1}, [1, 2], ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
        ({"maxLength": 2}, "abc", ErrorCode.TYPE_CONSTRAINT_VIOLATION),
    ],
)
def test_keywords_no_official_schema_exercises(
    keyword_schema: dict[str, Any], instance: object, code: ErrorCode
) -> None:
    # No OCPP schema uses "pattern"; the mapping still has to be right for one that will.
    (error,) = Draft6Validator(keyword_schema).iter_errors(instance)
    assert schemas._violation(error).code is code


def test_the_structural_violation_is_reported_first() -> None:
    payload = {"chargePointModel": 5, "colour": "red"}  # extra, missing and mistyped at once
    violation = validate(V16, "BootNotification", payload)
    assert violation is not None
    assert violation.code is ErrorCode.FORMAT_VIOLATION


@pytest.mark.parametrize(
    ("version", "action", "payload", "response"),
    [
        (V16, "BootNotification", {**BOOT_V16, "colour": "red"}, False),
        (V201, "BootNotification", {**BOOT_V2X, "colour": "red"}, False),
        (V21, "BootNotification", {**BOOT_V2X, "colour": "red"}, False),
        (V16, "BootNotification", {**BOOT_V16, "chargePointVendor": "A" * 21}, False),
        (V201, "Heartbeat", {"currentTime": "today"}, True),
    ],
)
def test_lenient_accepts_extra_properties_long_strings_and_bad_dates(
    version: OcppVersion,
    action: str,
    payload: dict[str, Any],
    response: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="csms_ocpp.schemas"):
        assert validate(version, action, payload, response=response, lenient=True) is None
    assert [record.message.split(" despite ")[0] for record in caplog.records] == [
        f"lenient: accepting {action} {'response' if response else 'request'}"
    ]


@pytest.mark.parametrize(
    ("version", "payload", "code"),
    [
        (V16, {"chargePointVendor": "Acme", "colour": "red"}, "OccurrenceConstraintViolation"),
        (V201, {"reason": "PowerUp", "colour": "red"}, "OccurrenceConstraintViolation"),
        (V21, {"reason": "PowerUp", "colour": "red"}, "OccurrenceConstraintViolation"),
        (V201, {**BOOT_V2X, "reason": "Bored", "colour": "red"}, "PropertyConstraintViolation"),
        (V16, {**BOOT_V16, "chargePointModel": 5, "colour": "red"}, "TypeConstraintViolation"),
    ],
)
def test_lenient_still_refuses_missing_wrong_and_mistyped_fields(
    version: OcppVersion, payload: dict[str, Any], code: str
) -> None:
    violation = validate(version, "BootNotification", payload, lenient=True)
    assert violation is not None
    assert violation.code == code


@pytest.mark.parametrize(
    ("version", "action", "response"),
    [
        (V16, "TransactionEvent", False),
        (V201, "StartTransaction", False),
        (V201, "NoSuchAction", False),
        (V21, "NotifyPeriodicEventStream", True),  # a SEND has no response
    ],
)
def test_unknown_action(version: OcppVersion, action: str, response: bool) -> None:
    assert not schemas.has_schema(version, action, response=response)
    with pytest.raises(UnknownAction, match=f"{action} is not an OCPP {version.number} message"):
        validate(version, action, {}, response=response)


@pytest.mark.parametrize("timestamp", ["2024-01-01", "2024-01-01T10:00:00", "yesterday"])
def test_date_time_must_be_rfc3339_with_offset(timestamp: str) -> None:
    violation = validate(OcppVersion.V201, "Heartbeat", {"currentTime": timestamp}, response=True)
    assert violation is not None
    assert violation.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert violation.details == {"path": "$.currentTime", "keyword": "format"}


@pytest.mark.parametrize("timestamp", ["2024-01-01T10:00:00Z", "2024-01-01T10:00:00.123+02:00"])
def test_date_time_with_offset_is_accepted(timestamp: str) -> None:
    payload = {"currentTime": timestamp}
    assert validate(OcppVersion.V201, "Heartbeat", payload, response=True) is None


@pytest.mark.parametrize("version", list(OcppVersion))
@pytest.mark.parametrize(
    "action",
    [
        "../../../../../../../../etc/os-release",
        "/usr/lib/python3/dist-packages/some",
        "../v16/schemas/BootNotification",
        "BootNotification/../../v16/schemas/Heartbeat",
        "",
    ],
)
def test_an_action_name_is_never_a_path(version: OcppVersion, action: str, tmp_path: Path) -> None:
    """A station naming a file by ``../`` learns nothing: no file is opened, no schema found."""
    planted = tmp_path / "planted.json"
    planted.write_text('{"type": "object"}')
    traversal = "../" * 20 + str(planted).lstrip("/").removesuffix(".json")
    for name in (action, traversal):
        assert not schemas.has_schema(version, name)
        assert not schemas.has_schema(version, name, response=True)
        with pytest.raises(schemas.UnknownAction):
            schemas.validator(version, name)


@pytest.mark.parametrize("version", list(OcppVersion))
def test_known_actions_are_the_versions_messages(version: OcppVersion) -> None:
    known = schemas.known_actions(version)
    assert {"BootNotification", "Heartbeat", "Authorize"} <= known
    assert all("/" not in name and "." not in name for name in known)
    assert all(schemas.has_schema(version, name) for name in sorted(known)[:20])


def test_reading_the_schemas_imports_none_of_the_ocpp_packages_message_classes() -> None:
    """The schema files are found from the ``ocpp`` package's root: importing ``ocpp.v201``
    and the others (their message classes and enums) cost a process 0.5 s of CPU, paid by
    its first message of each version (a REST command's first request: issue 10)."""
    check = (
        "import sys\n"
        "from csms_ocpp import schemas\n"
        "from csms_ocpp.versions import OcppVersion\n"
        "for version in OcppVersion:\n"
        "    assert schemas.validate(version, 'Heartbeat', {}) is None\n"
        "    assert schemas.validate(version, 'Heartbeat', {}, response=True) is not None\n"
        "print(sorted(name for name in sys.modules if name.startswith('ocpp.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
