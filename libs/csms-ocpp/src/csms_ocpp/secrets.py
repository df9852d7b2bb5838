"""Which values of a CSMS-initiated call are station credentials, and their redaction.

The credential a station authenticates with is set as configuration: 1.6
``ChangeConfiguration`` of ``AuthorizationKey`` (security whitepaper), 2.x ``SetVariables``
of ``SecurityCtrlr.BasicAuthPassword`` (2.0.1 A01/A02). Such a value is never written
to an event, a log or a REST answer: ``redact`` replaces it with ``REDACTED``.
"""

from typing import Any

REDACTED = "***"
SECRET_KEYS_16 = frozenset({"AuthorizationKey"})
SECRET_VARIABLES = frozenset({("SecurityCtrlr", "BasicAuthPassword")})


def is_secret_key(key: str) -> bool:
    """A 1.6 configuration key that holds a credential."""
    return key in SECRET_KEYS_16


def is_secret_variable(component: str, variable: str) -> bool:
    """A 2.x device model variable that holds a credential."""
    return (component, variable) in SECRET_VARIABLES


def redact(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with every credential replaced (a copy; the same object if none)."""
    if action == "ChangeConfiguration" and is_secret_key(str(payload.get("key", ""))):
        return {**payload, "value": REDACTED}
    if action == "SetVariables":
        items = payload.get("setVariableData")
        if isinstance(items, list) and any(_secret_item(item) for item in items):
            return {
                **payload,
                "setVariableData": [
                    {**item, "attributeValue": REDACTED} if _secret_item(item) else item
                    for item in items
                ],
            }
    return payload


def _secret_item(item: object) -> bool:
    if not isinstance(item, dict):
        return False
    component, variable = item.get("component"), item.get("variable")
    if not isinstance(component, dict) or not isinstance(variable, dict):
        return False
    return is_secret_variable(str(component.get("name", "")), str(variable.get("name", "")))
