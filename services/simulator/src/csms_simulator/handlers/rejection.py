"""Schema-driven minimal payloads: the rejection for an action we do not implement,
and (in tests) the smallest valid request of any action."""

from typing import Any

from csms_ocpp import OcppVersion
from csms_ocpp.actions import now_iso
from csms_ocpp.frames import JsonObject
from csms_ocpp.schemas import validator

# The enum value a refusal uses, in order of preference.
REFUSALS = (
    "NotSupported",
    "NotImplemented",
    "Rejected",
    "NotFound",
    "Unknown",
    "Failed",
    "UnknownVendorId",
)


def rejection(version: OcppVersion, action: str) -> JsonObject:
    """The smallest response to ``action`` that says no."""
    return minimal_payload(version, action, response=True, prefer=REFUSALS)


def minimal_payload(
    version: OcppVersion, action: str, *, response: bool, prefer: tuple[str, ...] = ()
) -> JsonObject:
    schema = validator(version, action, response).schema
    assert isinstance(schema, dict)  # noqa: S101 - OCPP schemas are objects
    payload = _instance(schema, schema, prefer)
    assert isinstance(payload, dict)  # noqa: S101
    return payload


def _instance(schema: dict[str, Any], root: dict[str, Any], prefer: tuple[str, ...]) -> Any:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _instance(root["definitions"][name], root, prefer)
    if "enum" in schema:
        return next((value for value in prefer if value in schema["enum"]), schema["enum"][0])
    kind = schema.get("type", "object")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: _instance(properties[name], root, prefer) for name in schema.get("required", [])
        }
    if kind == "array":
        return [_instance(schema["items"], root, prefer)] * max(1, schema.get("minItems", 0))
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1)
        return int(low) if kind == "integer" else float(low)
    return False if kind == "boolean" else None


def _string(schema: dict[str, Any]) -> str:
    if schema.get("format") == "date-time":
        return now_iso()
    if schema.get("format") == "uri":
        return "https://example.invalid/x"
    return "x" * max(1, int(schema.get("minLength", 1)))
