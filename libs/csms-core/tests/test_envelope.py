"""The event envelope: CloudEvents attributes plus the station, exactly as it goes on a topic."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from csms_core.envelope import Envelope
from csms_core.settings import Environment

BOOT_RECEIVED = Envelope(
    id="0f3c",
    type="ocpp.call.received",
    source="csms/gateway/gw-1",
    time=datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
    station_id="CP-001",
    ocpp_version="2.0.1",
    data={"action": "BootNotification", "payload": {"reason": "PowerUp"}},
)


def test_serialized_exactly_as_on_the_topic() -> None:
    assert orjson.loads(BOOT_RECEIVED.to_bytes()) == {
        "specversion": "1.0",
        "id": "0f3c",
        "type": "ocpp.call.received",
        "source": "csms/gateway/gw-1",
        "time": "2024-05-01T12:00:00.123000Z",
        "station_id": "CP-001",
        "ocpp_version": "2.0.1",
        "datacontenttype": "application/json",
        "data": {"action": "BootNotification", "payload": {"reason": "PowerUp"}},
    }


def test_round_trips_through_bytes() -> None:
    assert Envelope.from_bytes(BOOT_RECEIVED.to_bytes()) == BOOT_RECEIVED


def test_defaults_give_a_unique_id_and_the_current_utc_time() -> None:
    before = datetime.now(UTC)
    first = Envelope(type="csms.station-status", source="csms/sessions", station_id="CP-001")
    second = Envelope(type="csms.station-status", source="csms/sessions", station_id="CP-001")

    assert first.id != second.id
    assert len(first.id) == 32
    assert before <= first.time <= datetime.now(UTC)
    assert first.time.tzinfo is not None
    assert (first.specversion, first.datacontenttype) == ("1.0", "application/json")
    assert (first.ocpp_version, first.data) == (None, {})


def test_is_immutable() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        BOOT_RECEIVED.station_id = "CP-002"  # type: ignore[misc]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"{}",
        b'{"type":"t","source":"s"}',
        b'{"type":"t","source":"s","station_id":"CP-1","specversion":"0.3"}',
    ],
)
def test_anything_else_is_refused_as_a_value_error(raw: bytes) -> None:
    # The Kafka consumer skips a record on ValueError: it must not be any other exception.
    with pytest.raises(ValueError, match="validation error"):
        Envelope.from_bytes(raw)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"payload": {"meterValue": [{"timestamp": "2026-11-25T10:00:00Z", "value": 1234.5}]}},
        {"text": "Ladesäule € 😀", "nested": [1, 2.0, None, True, {"a": []}]},
        {"when": datetime(2026, 11, 25, 10, 0, tzinfo=UTC), "price": Decimal("0.35")},
        {"when": datetime(2026, 11, 25, 10, 0, 0, 1, tzinfo=timezone(timedelta(hours=2)))},
        {"big": 10**18, "negative": -1, "float": 1e-7, "kind": Environment.PRODUCTION},
    ],
)
@pytest.mark.parametrize("microsecond", [0, 123456])
def test_the_record_bytes_are_pydantics_json(data: dict[str, Any], microsecond: int) -> None:
    envelope = Envelope(
        type="ocpp.call",
        source="csms/gateway/gw-1",
        station_id="CP-1",
        time=datetime(2026, 11, 25, 10, 0, 0, microsecond, tzinfo=UTC),
        data=data,
    )
    assert envelope.to_bytes() == envelope.model_dump_json().encode()
    assert Envelope.from_bytes(envelope.to_bytes()) == Envelope.model_validate_json(
        envelope.model_dump_json()
    )
