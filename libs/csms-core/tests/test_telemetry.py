"""Trace context carried between hops, and the JSON log line."""

import io
import json
import logging
import re
import sys

import pytest
from opentelemetry import baggage, context, propagate
from opentelemetry.sdk.trace import ReadableSpan

from csms_core.bus import Delivery
from csms_core.settings import CommonSettings
from csms_core.telemetry import (
    HumanFormatter,
    JsonFormatter,
    MessageSampling,
    continued_span,
    current_trace_headers,
    record_trace_headers,
    setup_tracing,
    trace_id_of,
    traced_delivery,
    tracer,
    use_json_lines,
)


@pytest.fixture(autouse=True)
def tracing() -> None:
    setup_tracing("csms-core-tests")


def _record(headers: dict[str, str]) -> Delivery:
    return Delivery("ocpp.inbound", 3, 17, "CP-001", b"{}", headers)


def test_a_consumed_record_of_a_sampled_trace_gets_a_span_of_that_trace() -> None:
    with tracer.start_as_current_span("gateway receive") as gateway_span:
        headers = current_trace_headers()
    with traced_delivery(_record(headers), "csms-sessions") as span:
        carried = current_trace_headers()["traceparent"]
    assert isinstance(span, ReadableSpan)
    assert span.parent is not None
    assert span.parent.span_id == gateway_span.get_span_context().span_id
    assert span.attributes is not None
    assert span.attributes["messaging.kafka.offset"] == 17
    assert carried.split("-")[1] == headers["traceparent"].split("-")[1], (carried, headers)


def test_a_consumed_record_of_an_unsampled_trace_carries_it_on_and_records_nothing() -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    with traced_delivery(_record({"traceparent": traceparent}), "csms-sessions") as span:
        assert current_trace_headers() == {"traceparent": traceparent}
    assert not span.is_recording()
    assert not isinstance(span, ReadableSpan)
    # Its span context (a log line's trace id) is the one the header names.
    carried = span.get_span_context()
    assert (carried.trace_id, carried.span_id) == (
        0x0AF7651916CD43DD8448EB211C80319C,
        0xB7AD6B7169203331,
    )
    assert carried.is_valid
    assert carried.is_remote
    assert not carried.trace_flags.sampled


@pytest.mark.parametrize(
    "traceparent",
    [
        "",
        "garbage",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-00",
        "00-00000000000000000000000000000000-b7ad6b7169203331-00",
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-00",  # W3C: lower-case hex
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033_1-00",
        "01-x-y-00",
    ],
)
def test_a_consumed_record_without_a_valid_trace_starts_a_new_one(traceparent: str) -> None:
    with traced_delivery(_record({"traceparent": traceparent}), "csms-sessions") as span:
        assert span.get_span_context().is_valid
    assert isinstance(span, ReadableSpan)
    assert span.parent is None


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


def _flags(headers: dict[str, str]) -> int:
    return int(headers["traceparent"].rsplit("-", 1)[1], 16)


def test_a_record_outside_any_trace_starts_one_recorded_at_the_configured_ratio() -> None:
    setup_tracing("csms-core-tests", new_trace_ratio=1.0)
    assert _flags(record_trace_headers("station.connected")) & 1  # a recorded publish span
    setup_tracing("csms-core-tests", new_trace_ratio=0.0)
    headers = record_trace_headers("station.connected")
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00", headers["traceparent"]), headers
    assert trace_id_of(headers["traceparent"]) != "0" * 32
    assert record_trace_headers("station.connected") != headers  # a new trace each time
    setup_tracing("csms-core-tests", new_trace_ratio=0.25)
    recorded = sum(_flags(record_trace_headers("station.connected")) & 1 for _ in range(2000))
    assert 400 <= recorded <= 600


def test_a_record_inside_a_trace_carries_it_whatever_the_ratio() -> None:
    setup_tracing("csms-core-tests", new_trace_ratio=0.0)
    with tracer.start_as_current_span("gateway receive"):
        assert record_trace_headers("ocpp.inbound") == current_trace_headers()
        assert _flags(record_trace_headers("ocpp.inbound")) & 1


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_a_sample_ratio_outside_0_to_1_is_refused(ratio: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        MessageSampling(ratio)


class _Stream(io.StringIO):
    def __init__(self, *, terminal: bool) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


@pytest.mark.parametrize(
    ("configured", "terminal", "as_json"),
    [
        (None, True, False),  # a person at a terminal: readable lines
        (None, False, True),  # a container, a pipe, a log shipper: JSON
        (True, True, True),  # CSMS_LOG_JSON=true wins
        (False, False, False),  # CSMS_LOG_JSON=false wins
    ],
)
def test_json_lines_unless_a_terminal_or_told_otherwise(
    configured: bool | None, terminal: bool, as_json: bool
) -> None:
    assert use_json_lines(configured, _Stream(terminal=terminal)) is as_json


@pytest.mark.parametrize(("value", "parsed"), [(None, None), ("true", True), ("false", False)])
def test_csms_log_json_is_read_as_set_or_unset(
    value: str | None, parsed: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CSMS_LOG_JSON", raising=False)
    if value is not None:
        monkeypatch.setenv("CSMS_LOG_JSON", value)
    assert CommonSettings().log_json is parsed


def test_a_readable_line_has_time_level_logger_message_and_extra_fields() -> None:
    record = log_record("station connected", station_id="CP-001", color_message="\x1b[36m")
    line = HumanFormatter().format(record)
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d INFO    csms\.gateway: station connected  station_id=CP-001", line
    ), line


def test_a_message_of_several_lines_is_one_readable_line() -> None:
    record = log_record("Running upgrade -> 0001, the schema:\n  profiles, links\nevents")
    line = HumanFormatter().format(record)
    folded = "csms.gateway: Running upgrade -> 0001, the schema: profiles, links events"
    assert line.endswith(folded), line
    assert "\n" not in line


def _fail() -> None:
    raise RuntimeError("boom")


def test_a_readable_line_keeps_the_traceback_below_it() -> None:
    try:
        _fail()
    except RuntimeError:
        record = logging.makeLogRecord(
            {"name": "csms", "levelname": "ERROR", "msg": "failed", "exc_info": sys.exc_info()}
        )
    record.__dict__["station_id"] = "CP-9"
    first, *rest = HumanFormatter().format(record).splitlines()
    assert first.endswith("ERROR   csms: failed  station_id=CP-9")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "RuntimeError: boom"


def _injected() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_the_trace_headers_are_what_the_propagators_write(ratio: float) -> None:
    assert current_trace_headers() == _injected() == {}
    with MessageSampling(ratio).span("ocpp Heartbeat"):
        assert current_trace_headers() == _injected()
        with continued_span("next hop", current_trace_headers()):
            assert current_trace_headers() == _injected()
    remote = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    with continued_span("with trace state", {**remote, "tracestate": "vendor=1"}):
        assert current_trace_headers() == _injected()
        assert "tracestate" in current_trace_headers()
    with continued_span("with baggage", remote):
        token = context.attach(baggage.set_baggage("tenant", "a"))
        try:
            assert current_trace_headers() == _injected()
            assert "baggage" in current_trace_headers()
        finally:
            context.detach(token)
