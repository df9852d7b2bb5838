"""The typed messages say what the official schemas say: the same keys, the same required ones."""

from typing import Any

import pytest

from csms_ocpp import schemas
from csms_ocpp.messages import MESSAGES, Message, NoAnswer
from csms_ocpp.versions import OcppVersion


def _schema(version: str, action: str, response: bool) -> dict[str, Any]:
    schema = schemas.validator(OcppVersion.from_number(version), action, response=response).schema
    assert isinstance(schema, dict)
    return schema


def _keys(schema: dict[str, Any]) -> set[str]:
    return set(schema.get("properties", {})) - {"customData"}


CASES = [
    pytest.param(message, response, id=f"{message.action}-{'/'.join(message.versions)}-{side}")
    for message in MESSAGES
    for response, side in ((False, "request"), (True, "response"))
]


@pytest.mark.parametrize(("message", "response"), CASES)
def test_the_typed_payload_has_the_schemas_keys(message: Message[Any, Any], response: bool) -> None:
    typed = message.response if response else message.request
    if typed is NoAnswer:
        for version in message.versions:  # the gateway's own answer: nothing is required
            assert not _schema(version, message.action, response).get("required")
        return
    keys = set(typed.__annotations__)
    known = set().union(*(_keys(_schema(v, message.action, response)) for v in message.versions))
    assert keys == known, f"typed {sorted(keys)} vs schemas {sorted(known)}"


@pytest.mark.parametrize(("message", "response"), CASES)
def test_the_typed_payload_requires_what_every_schema_requires(
    message: Message[Any, Any], response: bool
) -> None:
    typed = message.response if response else message.request
    for version in message.versions:
        required = set(_schema(version, message.action, response).get("required", []))
        assert set(typed.__required_keys__) == required, version


def test_every_version_of_a_message_exists() -> None:
    for message in MESSAGES:
        for version in message.versions:
            assert schemas.has_schema(OcppVersion.from_number(version), message.action), message


def test_one_message_per_action_and_version() -> None:
    seen = [(message.action, version) for message in MESSAGES for version in message.versions]
    assert len(seen) == len(set(seen))
