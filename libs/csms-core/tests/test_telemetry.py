"""Trace context carried between hops, and the JSON log line."""

import json
import logging

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from csms_core.telemetry import (
    JsonFormatter,
    MessageSampling,
    continued_span,
    current_trace_headers,
    setup_tracing,
    trace_id_of,
    tracer,
)


@pytest.fixture(autouse=True)
def tracing() -> None:
    setup_tracing("csms-core-tests")


def test_no_headers_outside_a_span() -> None:
    assert current_trace_headers() == {}


def test_the_next_hop_continues_the_trace() -> None:
    with tracer.start_as_current_span("gateway receive") as gateway_span:
        headers = current_trace_headers()
    sent = gateway_span.get_span_context()

    with continued_span("sessions handle", headers, **{"csms.station_id": "CP-001"}) as span:
        received = span.get_span_context()
        assert current_trace_headers()["traceparent"].split("-")[1] == f"{sent.trace_id:032x}"

    assert list(headers) == ["traceparent"]
    assert trace_id_of(headers["traceparent"]) == f"{sent.trace_id:032x}"
    assert received.trace_id == sent.trace_id
    assert received.span_id != sent.span_id
    assert isinstance(span, ReadableSpan)
    assert span.parent is not None
    assert span.parent.span_id == sent.span_id
    assert span.attributes == {"csms.station_id": "CP-001"}


def test_without_a_carried_trace_a_new_one_starts() -> None:
    with continued_span("sessions handle", {}) as span:
        assert span.get_span_context().is_valid
    assert isinstance(span, ReadableSpan)
    assert span.parent is None


@pytest.mark.parametrize("value", ["", "garbage", "00-abc"])
def test_trace_id_of_something_else_is_empty(value: str) -> None:
    assert trace_id_of(value) == ""


def log_record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "csms.gateway", "levelname": "INFO", "msg": message})
    record.__dict__.update(extra)
    return record


def test_json_log_line_carries_the_trace_id_and_extra_fields() -> None:
    with tracer.start_as_current_span("gateway receive") as span:
        line = JsonFormatter().format(log_record("station connected", station_id="CP-001"))

    entry = json.loads(line)
    assert entry.pop("time").endswith("+00:00")
    assert entry == {
        "level": "INFO",
        "logger": "csms.gateway",
        "message": "station connected",
        "trace_id": f"{span.get_span_context().trace_id:032x}",
        "station_id": "CP-001",
    }


def test_json_log_line_outside_a_span_has_no_trace_id() -> None:
    entry = json.loads(JsonFormatter().format(log_record("idle")))
    assert "trace_id" not in entry
    assert entry["message"] == "idle"


def test_a_sampled_station_message_is_recorded_and_carried() -> None:
    with MessageSampling(1.0).span("ocpp Heartbeat", **{"ocpp.action": "Heartbeat"}) as span:
        headers = current_trace_headers()
    assert span.is_recording() is False  # ended
    assert isinstance(span, ReadableSpan)
    assert span.attributes == {"ocpp.action": "Heartbeat"}
    assert int(headers["traceparent"].rsplit("-", 1)[1], 16) & 1  # sampled
    assert trace_id_of(headers["traceparent"]) == f"{span.get_span_context().trace_id:032x}"


def test_an_unsampled_station_message_has_a_trace_that_records_nothing() -> None:
    with MessageSampling(0.0).span("ocpp Heartbeat") as span:
        headers = current_trace_headers()
        # The next hop continues the trace, and (parent-based) records nothing either.
        with continued_span("consume ocpp.inbound", headers) as next_hop:
            assert not next_hop.is_recording()
    assert not isinstance(span, ReadableSpan)
    context = span.get_span_context()
    assert context.is_valid and not context.trace_flags.sampled
    assert headers == {"traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-00"}
    assert next_hop.get_span_context().trace_id == context.trace_id
    assert current_trace_headers() == {}  # the message's context is gone after it


def test_a_share_of_station_messages_is_sampled() -> None:
    sampling = MessageSampling(0.25)
    recorded = 0
    for _ in range(2000):
        with sampling.span("ocpp Heartbeat") as span:
            recorded += span.get_span_context().trace_flags.sampled
    assert 400 <= recorded <= 600


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_a_sample_ratio_outside_0_to_1_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        MessageSampling(ratio)
