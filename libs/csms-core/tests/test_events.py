"""The typed event contract: one model per event type, each bound to one topic."""

from datetime import UTC, datetime
from typing import Any
from uuid import RFC_4122, UUID

import orjson
import pytest

from csms_core import topics
from csms_core.envelope import Envelope, new_event_id
from csms_core.events import (
    ConnectorStatusChanged,
    ConnectorStatusChangedData,
    DeadLetter,
    InboundCall,
    InvalidEvent,
    MeterSample,
    MeterValues,
    MeterValuesData,
    OcppCall,
    OcppSend,
    SessionUpdated,
    SessionUpdatedData,
    Topic,
    UnknownEventType,
    topic_of,
)
from csms_core.events.ocpp import encode_inbound
from csms_core.events.stations import ConnectorStatus, encode_connector_status_changed
from csms_core.events.topic import type_name

AT = datetime(2025, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)


def updated(at: datetime = AT, **overrides: Any) -> SessionUpdated:
    data = SessionUpdatedData(
        session_id="s-1",
        transaction_id="tx-1",
        evse_id=1,
        energy_wh=1500.0,
        power_w=None,
        updated_at=at,
        **overrides,
    )
    return SessionUpdated(id="e-1", time=AT, source="csms/sessions", station_id="CP-1", data=data)


def record(value: object) -> bytes:
    return orjson.dumps(value)


def test_every_event_type_is_on_exactly_one_topic() -> None:
    seen: dict[str, str] = {}
    for topic in topics.ALL:
        assert topic.models, f"{topic} has no models"
        for event_type, model in topic.models.items():
            assert type_name(model) == event_type
            assert event_type not in seen, f"{event_type} on {seen.get(event_type)} and {topic}"
            seen[event_type] = topic
            assert topic_of(model) is topic
    assert {topic.name: topic for topic in topics.ALL} == topics.BY_NAME


def test_a_topic_is_its_name() -> None:
    assert topics.SESSIONS == "csms.sessions"
    assert "tenant." + topics.SESSIONS == "tenant.csms.sessions"
    names: dict[str, int] = {topics.SESSIONS: 1}
    assert names["csms.sessions"] == 1


def test_decode_gives_the_model_of_the_records_type() -> None:
    event = updated(AT.replace(microsecond=123000), current_a=16.0)
    decoded = topics.SESSIONS.parse(event.to_bytes())
    assert isinstance(decoded, SessionUpdated)
    assert decoded == event
    # OCPP times go out in milliseconds: that is what a consumer reads back.
    again = topics.SESSIONS.parse(updated().to_bytes())
    assert isinstance(again, SessionUpdated)
    assert again.data.updated_at == event.data.updated_at


def test_times_and_unset_optional_fields_are_written_as_the_contract_says() -> None:
    data = orjson.loads(updated().to_bytes())["data"]
    assert data["updated_at"] == "2025-01-01T10:00:00.123Z"  # OCPP's own form
    assert "current_a" not in data  # optional, not nullable: left out
    assert "soc_percent" not in data
    assert data["power_w"] is None  # required and nullable: written as null
    sample = MeterSample(timestamp=AT, measurand="Power.Active.Import", value=7.0, unit="W")
    meter = MeterValues(
        source="csms/sessions",
        station_id="CP-1",
        data=MeterValuesData(evse_id=1, samples=[sample]),
    )
    assert orjson.loads(meter.to_bytes())["data"] == {
        "evse_id": 1,
        "samples": [
            {
                "timestamp": "2025-01-01T10:00:00.123456+00:00",
                "measurand": "Power.Active.Import",
                "value": 7.0,
                "unit": "W",
            }
        ],
        "late": False,
    }


def test_a_field_a_newer_producer_added_is_ignored() -> None:
    event = updated(AT.replace(microsecond=0))
    value = orjson.loads(event.to_bytes())
    value["data"]["tariff_id"] = "T-1"
    assert topics.SESSIONS.parse(record(value)) == event


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "csms.sessions: the record is not JSON"),
        (b"[1, 2]", "csms.sessions record:"),
        ({"type": "session.updated", "station_id": "CP-1"}, "source: Field required"),
        ({"type": "session.updated", "data": {"session_id": 7}}, "data.session_id:"),
    ],
)
def test_a_bad_record_is_invalid_with_the_reason(value: object, reason: str) -> None:
    raw = value if isinstance(value, bytes) else record(value)
    with pytest.raises(InvalidEvent) as refused:
        topics.SESSIONS.parse(raw)
    assert reason in str(refused.value)


def test_an_event_type_the_topic_does_not_know_is_unknown_not_invalid() -> None:
    value = orjson.loads(updated().to_bytes()) | {"type": "session.paused"}
    with pytest.raises(UnknownEventType, match=r"no event type 'session\.paused'"):
        topics.SESSIONS.parse(record(value))


def test_a_site_load_event_is_checked_by_its_model() -> None:
    base = {"type": "site.load.measured", "source": "ems", "station_id": "meter-1"}
    good = topics.SITE_LOAD.parse(record(base | {"data": {"site_id": "s", "load_a": [1, 2, 3]}}))
    assert good.data.per_phase_a(230, 3) == [1, 2, 3]
    for data, reason in [
        ({"load_a": 5}, "needs a site_id"),
        ({"site_id": "s", "load_a": -5}, "a load is not negative"),
        ({"site_id": "s", "load_a": 5, "load_kw": 3}, "exactly one of load_a and load_kw"),
    ]:
        with pytest.raises(InvalidEvent, match=reason):
            topics.SITE_LOAD.parse(record(base | {"data": data}))


def test_an_untyped_topic_reads_any_envelope() -> None:
    anything = Topic("test.anything", Envelope)
    event = Envelope(type="whatever", source="test", station_id="CP-1", data={"n": 1})
    assert anything.parse(event.to_bytes()) == event
    assert anything.models == {}


def test_a_dead_letter_carries_the_event_it_gave_up_on() -> None:
    event = Envelope(type="x", source="test", station_id="CP-1", data={"n": 1})
    letter = topics.DEAD_LETTER.parse(
        record(
            {
                "type": "csms.dead-letter",
                "source": "csms/g",
                "station_id": "CP-1",
                "data": {
                    "group": "g",
                    "topic": "t",
                    "partition": 0,
                    "offset": 3,
                    "error": "E()",
                    "event": event.model_dump(mode="json"),
                },
            }
        )
    )
    assert isinstance(letter, DeadLetter)
    assert letter.data.event == event
    assert "raw" not in orjson.loads(letter.to_bytes())["data"]


@pytest.mark.parametrize("microsecond", [0, 123456])
@pytest.mark.parametrize("kind", [OcppCall, OcppSend])
def test_the_gateways_own_inbound_bytes_are_the_models_bytes(
    kind: type[OcppCall] | type[OcppSend], microsecond: int
) -> None:
    """The gateway writes each CALL's record itself (no model per frame): the same bytes."""
    at = AT.replace(microsecond=microsecond)
    fields: dict[str, Any] = {
        "gateway_id": "gw-1",
        "connection_id": "c-1",
        "action": "MeterValues",
        "message_id": "m-1",
        "payload": {"evseId": 1, "meterValue": [{"timestamp": "2025-01-01T10:00:00Z"}]},
        "received_at": at,
        "owner": "gateway",
    }
    envelope: dict[str, Any] = {
        "source": "csms/gateway/gw-1",
        "station_id": "CP-1",
        "ocpp_version": "2.0.1",
    }
    encoded = encode_inbound(kind, id="e-1", time=at, **envelope, **fields)
    model = kind(id="e-1", time=at, **envelope, data=InboundCall(**fields))
    assert encoded.value == model.to_bytes() == model.model_dump_json().encode()
    assert encoded.station_id == "CP-1"
    decoded = topics.OCPP_INBOUND.parse(encoded.value)
    assert type(decoded) is kind
    assert decoded.data.payload == fields["payload"]


@pytest.mark.parametrize("microsecond", [0, 123456])
@pytest.mark.parametrize(
    ("status", "error_code", "ocpp_version"),
    [
        ("Available", None, "2.0.1"),
        ("Occupied", "NoError", "1.6"),
        ("Reserved", None, None),
        ("Unavailable", None, "2.1"),
        ("Faulted", "GroundFailure", "1.6"),
    ],
)
def test_the_sessions_own_status_bytes_are_the_models_bytes(
    status: ConnectorStatus, error_code: str | None, ocpp_version: str | None, microsecond: int
) -> None:
    """The sessions service writes each connector status event itself (no model per
    report): the same bytes as the model's, read back as that model by its topic."""
    at = AT.replace(microsecond=microsecond)
    reported = datetime(2025, 1, 1, 9, 59, 59, microsecond, tzinfo=UTC)
    envelope: dict[str, Any] = {
        "id": "e-1.0",
        "source": "csms/sessions",
        "station_id": "CP-1",
        "ocpp_version": ocpp_version,
    }
    fields: dict[str, Any] = {
        "evse_id": 2,
        "connector_id": 1,
        "status": status,
        "ocpp_status": "Charging" if status == "Occupied" else status,
        "error_code": error_code,
        "timestamp": reported,
    }
    encoded = encode_connector_status_changed(time=at, **envelope, **fields)
    model = ConnectorStatusChanged(time=at, **envelope, data=ConnectorStatusChangedData(**fields))
    assert encoded.value == model.to_bytes() == model.model_dump_json().encode()
    assert encoded.station_id == "CP-1"
    decoded = topic_of(ConnectorStatusChanged).parse(encoded.value)
    assert decoded == model


def test_a_status_event_without_a_time_zone_is_refused_as_the_model_refuses_it() -> None:
    naive = datetime(2025, 1, 1, 10)  # noqa: DTZ001 - the case under test
    fields: dict[str, Any] = {
        "evse_id": 1,
        "connector_id": 1,
        "status": "Available",
        "ocpp_status": "Available",
        "error_code": None,
        "timestamp": naive,
    }
    with pytest.raises(ValueError, match="time zone"):
        encode_connector_status_changed(
            id="e-1.0", source="csms/sessions", station_id="CP-1", ocpp_version=None, **fields
        )
    with pytest.raises(ValueError, match="timezone"):
        ConnectorStatusChangedData(**fields)


def test_new_event_ids_are_version_4_uuids_and_differ() -> None:
    ids = [new_event_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    for event_id in ids[:50]:
        parsed = UUID(hex=event_id)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, RFC_4122, event_id)
