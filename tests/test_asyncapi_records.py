"""The record checker the e2e clusters end with (tests.asyncapi_check) refuses wrong records.

Every e2e cluster's topics are read and checked against docs/asyncapi.yaml when
the cluster stops (``tests.cluster.retire_topics``); these tests show that check
can fail: a bad payload, a missing or malformed ``traceparent``, a key that is not
the station id, a type its channel does not carry, a topic with no channel.
"""

import asyncio
import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests import asyncapi_check, cluster
from tests.asyncapi_check import RecordChecker
from tests.cluster import Infra

PREFIX = "csms-check-x."
MESSAGES: dict[str, dict[str, Any]] = asyncapi_check.document()["components"]["messages"]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _example(message: str = "OcppCall") -> dict[str, Any]:
    documented = MESSAGES[message]["examples"][0]["payload"]
    payload: dict[str, Any] = orjson.loads(orjson.dumps(documented))
    return payload


def _errors(
    payload: dict[str, Any],
    *,
    topic: str = PREFIX + "ocpp.inbound",
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> list[str]:
    key = payload["station_id"].encode() if key is None else key
    headers = [("traceparent", TRACEPARENT.encode())] if headers is None else headers
    return RecordChecker(PREFIX).errors(topic, key, headers, orjson.dumps(payload))


def test_the_documented_example_passes() -> None:
    assert _errors(_example()) == []


def test_a_payload_missing_a_required_field_is_refused() -> None:
    payload = _example()
    del payload["data"]["owner"]
    document_error, model_error = _errors(payload)
    assert "/components/messages/OcppCall/payload" in document_error
    assert "'owner' is a required property" in document_error
    assert model_error.startswith("the code's model of ocpp.inbound refuses it")


def test_a_value_of_the_wrong_type_is_refused() -> None:
    payload = _example("ConnectionOpened")
    payload["data"]["security_profile"] = "two"
    errors = _errors(payload, topic=PREFIX + "ocpp.connections")
    assert any("/data/security_profile" in error for error in errors), errors


def test_a_record_without_traceparent_is_refused() -> None:
    (error,) = _errors(_example(), headers=[])
    assert "'traceparent' is a required property" in error


def test_a_malformed_traceparent_is_refused() -> None:
    (error,) = _errors(_example(), headers=[("traceparent", b"not-a-trace")])
    assert "/traceparent" in error and "does not match" in error


def test_a_key_other_than_the_station_id_is_refused() -> None:
    (error,) = _errors(_example(), key=b"ANOTHER")
    assert "the key 'ANOTHER' is not the envelope's station_id" in error


def test_a_type_its_channel_does_not_carry_is_refused() -> None:
    (error,) = _errors(_example("StationBooted"))  # on ocpp.inbound
    assert "type 'station.booted' is not a message of ocpp.inbound" in error


def test_a_value_that_is_not_json_is_refused() -> None:
    errors = RecordChecker(PREFIX).errors(
        PREFIX + "ocpp.inbound", b"CP-1", [("traceparent", TRACEPARENT.encode())], b"{"
    )
    assert errors and "not JSON" in errors[0]


def test_a_topic_without_a_channel_is_refused() -> None:
    (error,) = _errors(_example(), topic=PREFIX + "ocpp.nowhere")
    assert "'ocpp.nowhere' has no channel" in error


def test_the_report_fails_with_the_record_its_topic_and_the_error() -> None:
    bad = _example()
    del bad["data"]["owner"]
    records = [
        (PREFIX + "ocpp.inbound", 0, 0, b"CP-001", [("traceparent", TRACEPARENT.encode())], value)
        for value in (orjson.dumps(_example()), orjson.dumps(bad))
    ]
    report = asyncapi_check.check_records(PREFIX, records)
    assert report.records == 2 and len(report.findings) == 1
    with pytest.raises(AssertionError) as failure:
        report.raise_findings()
    text = str(failure.value)
    assert "1 of 2 records on csms-check-x.* disagree" in text
    assert "csms-check-x.ocpp.inbound[0]@0" in text
    assert bad["id"] in text and "'owner' is a required property" in text


def test_a_record_written_wrong_on_purpose_is_passed_over() -> None:
    bad = _example()
    bad["id"] = str(uuid.uuid4())
    del bad["data"]["owner"]
    asyncapi_check.expect_invalid(bad["id"])
    no_headers: list[tuple[str, bytes]] = []
    record = (PREFIX + "ocpp.inbound", 0, 0, b"CP-001", no_headers, orjson.dumps(bad))
    report = asyncapi_check.check_records(PREFIX, [record])
    assert report.records == 1 and report.findings == []


async def _write(bootstrap: str, prefix: str, records: list[tuple[bytes, bytes, bool]]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(prefix + "ocpp.inbound", 2, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value, traced in records:
            headers = [("traceparent", TRACEPARENT.encode())] if traced else []
            await producer.send_and_wait(prefix + "ocpp.inbound", value, key=key, headers=headers)
    finally:
        await producer.stop()


def test_retire_topics_fails_on_a_wrong_record_on_real_kafka(infra: Infra) -> None:
    """The same path the e2e clusters end with, on the real broker: read, check, delete."""
    prefix = f"csms-check-{uuid.uuid4().hex[:8]}."
    good, untraced = _example(), _example()
    untraced["id"] = str(uuid.uuid4())
    records = [(b"CP-001", orjson.dumps(good), True), (b"CP-001", orjson.dumps(untraced), False)]
    asyncio.run(_write(infra.kafka_bootstrap, prefix, records))
    with pytest.raises(AssertionError) as failure:
        asyncio.run(cluster.retire_topics(infra.kafka_bootstrap, prefix))
    text = str(failure.value)
    assert f"1 of 2 records on {prefix}* disagree" in text
    assert f"{prefix}ocpp.inbound[" in text and untraced["id"] in text
    assert "'traceparent' is a required property" in text


def test_a_record_the_codes_model_refuses_is_a_finding() -> None:
    """Past the document, the topic's own model (csms_core.topics) must read the record too."""
    payload = _example()
    del payload["data"]["owner"]
    (error,) = RecordChecker._model_errors("ocpp.inbound", orjson.dumps(payload))
    assert error.startswith("the code's model of ocpp.inbound refuses it: ")
    assert "owner" in error
    assert RecordChecker._model_errors("ocpp.inbound", orjson.dumps(_example())) == []


def test_an_audit_record_about_no_station_has_an_empty_key() -> None:
    """csms.audit: a REST call about no station (a site, a token) is keyed by ''."""
    payload = _example("AuditRecorded")
    payload["station_id"], payload["data"]["station_id"] = "", None
    assert _errors(payload, topic=PREFIX + "csms.audit", key=b"") == []


def test_an_empty_station_id_is_refused_outside_the_audit_trail() -> None:
    payload = _example()
    payload["station_id"] = ""
    errors = _errors(payload, key=b"")
    assert any("messageTraits/StationKeyed/bindings/kafka/key" in e for e in errors), errors
