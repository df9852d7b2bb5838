"""docs/asyncapi.yaml documents every topic, and its examples conform to its own schemas."""

from typing import Any

import pytest

from csms_core import topics
from csms_core.envelope import Envelope
from tests import asyncapi_check

DOCUMENT = asyncapi_check.document()
MESSAGES: dict[str, dict[str, Any]] = DOCUMENT["components"]["messages"]
_validator = asyncapi_check.validator


def _examples() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (name, str(example.get("name", index)), example)
        for name, message in MESSAGES.items()
        for index, example in enumerate(message.get("examples", []))
    ]


def test_it_is_an_asyncapi_3_document() -> None:
    assert DOCUMENT["asyncapi"].startswith("3.")
    assert DOCUMENT["servers"]["kafka"]["protocol"] == "kafka"


def test_every_topic_has_a_channel() -> None:
    addresses = {channel["address"] for channel in DOCUMENT["channels"].values()}
    assert set(topics.ALL) <= addresses


def test_every_channel_is_on_the_kafka_server_and_names_its_topic() -> None:
    for name, channel in DOCUMENT["channels"].items():
        assert channel["servers"] == [{"$ref": "#/servers/kafka"}], name
        assert channel["bindings"]["kafka"]["topic"] == channel["address"], name


def test_every_message_is_keyed_by_station_and_carries_traceparent() -> None:
    traits = DOCUMENT["components"]["messageTraits"]
    assert traits["StationKeyed"]["bindings"]["kafka"]["key"] == {
        "$ref": "#/components/schemas/StationId"
    }
    assert "traceparent" in DOCUMENT["components"]["schemas"]["Headers"]["required"]
    # Only the audit trail has records about no station (key and station_id empty).
    station_or_none = {"$ref": "#/components/messageTraits/StationKeyedOrNone"}
    for name, message in MESSAGES.items():
        trait = (
            station_or_none
            if name == "AuditRecorded"
            else {"$ref": "#/components/messageTraits/StationKeyed"}
        )
        assert message["traits"] == [trait], name
    for trait in traits.values():
        assert trait["headers"] == {"$ref": "#/components/schemas/Headers"}


def test_every_message_has_an_example() -> None:
    for name, message in MESSAGES.items():
        assert message.get("examples"), f"{name} has no example"


@pytest.mark.parametrize(
    ("message", "example"),
    [(message, example) for message, _, example in _examples()],
    ids=[f"{message}-{label}" for message, label, _ in _examples()],
)
def test_example_conforms_to_its_message(message: str, example: dict[str, Any]) -> None:
    _validator(f"/components/messages/{message}/payload").validate(example["payload"])
    _validator("/components/schemas/Headers").validate(example["headers"])
    key = _validator(asyncapi_check.key_pointer(message))
    key.validate(example["payload"]["station_id"])


@pytest.mark.parametrize(
    ("message", "example"),
    [(message, example) for message, _, example in _examples()],
    ids=[f"{message}-{label}" for message, label, _ in _examples()],
)
def test_example_is_an_envelope_the_code_reads(message: str, example: dict[str, Any]) -> None:
    envelope = Envelope.model_validate(example["payload"])
    assert envelope.type == MESSAGES[message]["name"]


def test_envelope_schema_matches_the_envelope_model() -> None:
    schema = DOCUMENT["components"]["schemas"]["Envelope"]
    assert set(schema["properties"]) == set(Envelope.model_fields)
    assert set(schema["required"]) == set(Envelope.model_fields)


def test_every_event_type_has_a_message() -> None:
    types = DOCUMENT["components"]["schemas"]["Envelope"]["properties"]["type"]["enum"]
    assert sorted(types) == sorted(message["name"] for message in MESSAGES.values())


def test_a_wrong_example_is_refused() -> None:
    """The check above has teeth: a payload missing a required field fails."""
    payload = dict(MESSAGES["OcppCall"]["examples"][0]["payload"])
    payload["data"] = {k: v for k, v in payload["data"].items() if k != "owner"}
    errors = list(_validator("/components/messages/OcppCall/payload").iter_errors(payload))
    assert errors


def test_every_channel_carries_exactly_the_event_types_its_topic_is_bound_to() -> None:
    channels = {channel["address"]: channel for channel in DOCUMENT["channels"].values()}
    for topic in topics.ALL:
        refs = [message["$ref"] for message in channels[topic]["messages"].values()]
        names = {MESSAGES[ref.rsplit("/", 1)[-1]]["name"] for ref in refs}
        assert names == set(topic.models), topic


@pytest.mark.parametrize(
    ("message", "example"),
    [(message, example) for message, _, example in _examples()],
    ids=[f"{message}-{label}" for message, label, _ in _examples()],
)
def test_example_is_read_by_its_topics_model(message: str, example: dict[str, Any]) -> None:
    """The documented example is what the code's model of that event type reads."""
    channel = next(
        channel
        for channel in DOCUMENT["channels"].values()
        if {"$ref": f"#/components/messages/{message}"} in channel["messages"].values()
    )
    topic = topics.BY_NAME[channel["address"]]
    event = topic.parse_object(example["payload"])
    assert event.type == MESSAGES[message]["name"]
