"""Validation of payloads against the official OCPP JSON schemas shipped by the ``ocpp`` package.

A schema violation maps to the CALLERROR code the spec names for it
(OCPP 2.0.1 Part 4 §4.3; 1.6 OCPP-J §4.2.3):
missing required field → OccurrenceConstraintViolation, wrong JSON type or an
over-long string (CiString/identifierString are data types) → TypeConstraintViolation,
a value outside an enum/pattern/range/format → PropertyConstraintViolation,
a property the schema does not define → FormatViolation.

Every payload first meets a compiled validator (``jsonschema-rs``, built once per
action and direction); one that passes it is valid. One that does not, or one the
compiled validator cannot judge exactly as ``jsonschema`` does (``multipleOf`` on
floats), is checked again by ``jsonschema`` itself, which names the violation, so
the verdicts and CALLERRORs are those of ``jsonschema`` (tested side by side in
``tests/test_schemas_compiled.py``).
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import FormatChecker, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from csms_ocpp.errors import ErrorCode
from csms_ocpp.versions import OcppVersion

logger = logging.getLogger(__name__)

_CODE_BY_KEYWORD: dict[str, ErrorCode] = {
    "required": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "maxLength": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "additionalProperties": ErrorCode.FORMAT_VIOLATION,
}
# Violations a station marked lenient may commit: logged, then accepted.
LENIENT_KEYWORDS = frozenset({"additionalProperties", "maxLength", "format"})

_format_checker = FormatChecker(formats=())


def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time: a date, "T", a time and an offset (OCPP 2.0.1 Part 2 §2.1.x dateTime)."""
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    return "T" in value.upper() and parsed.tzinfo is not None


_format_checker.checks("date-time", raises=ValueError)(_is_date_time)


def _is_date_time_compiled(value: str) -> bool:
    """``_is_date_time`` for the compiled validator (which wants a verdict, not a raise)."""
    try:
        return _is_date_time(value)
    except ValueError:
        return False


# Formats the compiled validator checks: ours, and no others (as ``_format_checker``).
_COMPILED_FORMATS = {"date-time": _is_date_time_compiled, "uri": lambda _value: True}
# Keywords whose float arithmetic differs between the two validators (0.3 is no
# multipleOf 0.1 for ``jsonschema``): schemas using them are checked by ``jsonschema`` only.
_NOT_COMPILED_KEYWORDS = (b'"multipleOf"',)


@dataclass(frozen=True, slots=True)
class Violation:
    """Why a payload does not conform to its schema."""

    code: ErrorCode
    description: str
    details: dict[str, Any] = field(default_factory=dict)


class UnknownAction(LookupError):
    """There is no schema for this action in this version."""


@cache
def known_actions(version: OcppVersion) -> frozenset[str]:
    """Every action the version's official schemas define (read once from the package)."""
    names = set()
    for resource in _schema_directory(version).iterdir():
        stem = resource.name.removesuffix(".json")
        if stem != resource.name:
            names.add(stem.removesuffix("Response").removesuffix("Request"))
    return frozenset(names)


def _schema_directory(version: OcppVersion) -> Traversable:
    """The official schemas of ``version`` in the ``ocpp`` package, found from its root:
    ``resources.files("ocpp.v201.schemas")`` would import ``ocpp.v201``, its message classes
    and enums (75-225 ms per version, paid by the first message of each version a process
    validates: a station's first CALL, a REST command's first request)."""
    return resources.files("ocpp").joinpath(f"v{version.number.replace('.', '')}", "schemas")


def _schema_file(version: OcppVersion, action: str, response: bool) -> str:
    if version is OcppVersion.V16:
        return f"{action}Response.json" if response else f"{action}.json"
    suffix = "Response" if response else "Request"
    return f"{action}{suffix}.json"


@cache
def _schema_text(version: OcppVersion, action: str, response: bool) -> bytes:
    """The official schema file of one action's request or response."""
    # The name comes from the station: only a known action may become a file name
    # (``../`` and an absolute path would otherwise open any .json on the host).
    if action not in known_actions(version):
        raise UnknownAction(f"{action} is not an OCPP {version.number} message")
    directory = _schema_directory(version)
    resource = directory.joinpath(_schema_file(version, action, response))
    if not resource.is_file():
        # OCPP 2.1 SEND messages (e.g. NotifyPeriodicEventStream) have a bare schema name.
        resource = directory.joinpath(f"{action}.json")
        if response or not resource.is_file():
            raise UnknownAction(f"{action} is not an OCPP {version.number} message")
    return resource.read_bytes().removeprefix(b"\xef\xbb\xbf")


@cache
def validator(version: OcppVersion, action: str, response: bool = False) -> Validator:
    """The ``jsonschema`` validator of one action's request or response schema."""
    schema = orjson.loads(_schema_text(version, action, response))
    validator_class = validator_for(schema)
    return validator_class(schema, format_checker=_format_checker)


@cache
def compiled_validator(
    version: OcppVersion, action: str, response: bool = False
) -> jsonschema_rs.Validator | None:
    """The compiled (Rust) validator of one schema; None where only ``jsonschema`` judges."""
    text = _schema_text(version, action, response)
    if any(keyword in text for keyword in _NOT_COMPILED_KEYWORDS):
        return None
    return jsonschema_rs.validator_for(
        orjson.loads(text), validate_formats=True, formats=_COMPILED_FORMATS
    )


def _passes_compiled(version: OcppVersion, action: str, response: bool, payload: Any) -> bool:
    compiled = compiled_validator(version, action, response)
    if compiled is None:
        return False
    try:
        return compiled.is_valid(payload)
    except ValueError:  # a value it cannot hold (e.g. an integer past 64 bits): jsonschema judges
        return False


def has_schema(version: OcppVersion, action: str, response: bool = False) -> bool:
    if action not in known_actions(version):  # before any lookup: a set membership
        return False
    try:
        validator(version, action, response)
    except UnknownAction:
        return False
    return True


def validate(
    version: OcppVersion,
    action: str,
    payload: Mapping[str, Any],
    *,
    response: bool = False,
    lenient: bool = False,
) -> Violation | None:
    """Check ``payload``; return the violation that counts most, or None if it conforms.

    When several rules are broken the structural one is reported first, in the
    order of ``_PRIORITY``, so the same bad payload always gets the same code.
    """
    if _passes_compiled(version, action, response, payload):
        return None
    counted = []
    for error in validator(version, action, response).iter_errors(payload):
        if lenient and error.validator in LENIENT_KEYWORDS:
            logger.warning(
                "lenient: accepting %s %s despite %s at %s",
                action,
                "response" if response else "request",
                error.message,
                error.json_path,
            )
            continue
        counted.append(_violation(error))
    return min(counted, key=lambda violation: _PRIORITY.index(violation.code), default=None)


_PRIORITY = (
    ErrorCode.FORMAT_VIOLATION,
    ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
)


def _violation(error: ValidationError) -> Violation:
    keyword = str(error.validator)
    code = _CODE_BY_KEYWORD.get(keyword, ErrorCode.PROPERTY_CONSTRAINT_VIOLATION)
    return Violation(
        code,
        f"{error.json_path}: {error.message}"[:500],
        {"path": error.json_path, "keyword": keyword},
    )
