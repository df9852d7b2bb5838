"""Tracing, metrics and logs.

Traces follow one station message gateway → Kafka → service → Redis → gateway:
the W3C ``traceparent`` rides in Kafka record headers and in router messages,
and each hop continues the trace it carries. Export is configured by the
standard OpenTelemetry environment variables; without an exporter spans are
still created, so trace ids appear in logs and events.
"""

import json
import logging
import os
import random
import re
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from opentelemetry import baggage, context, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from csms_core.bus.base import Delivery

tracer = trace.get_tracer("csms")
_random = random.Random()  # noqa: S311 - ids of unrecorded traces, not a secret


def setup_tracing(service_name: str, *, new_trace_ratio: float = 1.0) -> None:
    """Install a tracer provider for this process (idempotent), exporting as configured.

    The standard variables decide: ``OTEL_TRACES_EXPORTER`` = ``otlp`` (OTLP over HTTP to
    ``OTEL_EXPORTER_OTLP_ENDPOINT``), ``console`` or ``none``; with an endpoint set and no
    exporter named, OTLP is used. ``new_trace_ratio`` is the share of the records
    published outside any trace (``record_trace_headers``) whose new trace is recorded.
    """
    global _new_traces
    _new_traces = MessageSampling(new_trace_ratio)
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    exporter = _exporter_from_environment()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


def _exporter_from_environment() -> SpanExporter | None:
    default = "otlp" if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "none"
    name = os.environ.get("OTEL_TRACES_EXPORTER", default).strip().lower()
    if name == "otlp":
        return OTLPSpanExporter()
    if name == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    return None


def current_trace_headers() -> dict[str, str]:
    """The W3C trace context of the current span, as headers to carry along.

    With the default propagators (trace context and baggage), no baggage and no trace
    state, the header is written here: what ``propagate.inject`` writes then, in a
    fraction of its time (every station CALL carries one).
    """
    if _default_propagators(propagate.get_global_textmap()) and not baggage.get_all():
        span = trace.get_current_span()
        if type(span) is CarriedSpan:  # a consumed record's unsampled trace, as it came
            return {"traceparent": span.traceparent}
        span_context = span.get_span_context()
        if not span_context.is_valid:
            return {}
        if not span_context.trace_state:
            return {
                "traceparent": f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
                f"-{span_context.trace_flags:02x}"
            }
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@lru_cache(maxsize=4)
def _default_propagators(textmap: TextMapPropagator) -> bool:
    return isinstance(textmap, CompositePropagator) and [
        type(propagator) for propagator in getattr(textmap, "_propagators", ())
    ] == [TraceContextTextMapPropagator, W3CBaggagePropagator]


def record_trace_headers(topic: str) -> dict[str, str]:
    """The headers of a record: the current trace context, or a new trace if there is none.

    Every record carries a ``traceparent`` (docs/integrators.md), also one produced
    outside any span (a connection closing, a dead letter): it then starts a trace of
    its own, whose root is a short ``publish`` span when a tracer is installed and the
    trace is sampled (``setup_tracing``'s ``new_trace_ratio``); otherwise its
    ``traceparent`` has flags 00 and nothing is recorded.
    """
    headers = current_trace_headers()
    if "traceparent" in headers:
        return headers
    if not _new_traces.sampled():
        # Not recorded: no SDK span to start and end (a reconnect storm publishes two
        # connection events per station outside any trace; the span was 6 % of the
        # gateway's CPU in it at ratio 0.01).
        return unsampled_trace_headers()
    with tracer.start_as_current_span(f"publish {topic}", kind=trace.SpanKind.PRODUCER):
        headers = current_trace_headers()
    if "traceparent" not in headers:  # no tracer installed: an id of our own, not sampled
        headers |= unsampled_trace_headers()
    return headers


@contextmanager
def continued_span(name: str, carrier: dict[str, str], **attributes: Any) -> Iterator[trace.Span]:
    """A span that continues the trace carried in ``carrier`` (e.g. a traceparent header)."""
    parent = propagate.extract(carrier)
    token = context.attach(parent)
    try:
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            yield span
    finally:
        context.detach(token)


class MessageSampling:
    """Which station messages start a recorded trace: a share ``ratio`` of them (0..1).

    The trace of a message that is not sampled is still there: it has ids, its
    ``traceparent`` (flags 00) travels on, and every hop after it records nothing
    (the SDK's parent-based sampler follows the flag). Only the spans are saved:
    an SDK span costs about 50 µs of CPU, about a quarter of a gateway's work on a CALL.
    """

    def __init__(self, ratio: float = 1.0) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"a sample ratio is between 0 and 1, not {ratio}")
        self.ratio = ratio

    def sampled(self) -> bool:
        """Whether the next station message is recorded (drawn anew for each)."""
        return self.ratio >= 1.0 or _random.random() < self.ratio

    @contextmanager
    def span(self, name: str, **attributes: Any) -> Iterator[trace.Span]:
        """The span of one station message: a new trace, recorded when sampled."""
        if self.sampled():
            with continued_span(name, {}, **attributes) as span:
                yield span
            return
        unrecorded = new_unsampled_span()
        token = context.attach(trace.set_span_in_context(unrecorded, context.Context()))
        try:
            yield unrecorded
        finally:
            context.detach(token)


# The sampling of the traces ``record_trace_headers`` starts (``setup_tracing``).
_new_traces = MessageSampling()


def new_unsampled_span() -> NonRecordingSpan:
    """The span of a new trace nobody records (flags 00): it has ids, and what is sent on
    inside it carries them (``current_trace_headers``)."""
    span_context = SpanContext(
        trace_id=_random.getrandbits(128) or 1,
        span_id=_random.getrandbits(64) or 1,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.DEFAULT),
    )
    return NonRecordingSpan(span_context)


def unsampled_trace_headers() -> dict[str, str]:
    """The headers of a record that starts a new trace nobody records (flags 00): what
    ``MessageSampling.span`` makes current for an unsampled message, for a producer that
    only carries the trace on and so needs no span and no context of it (the gateway's
    station CALLs: a few microseconds each)."""
    trace_id, span_id = _random.getrandbits(128) or 1, _random.getrandbits(64) or 1
    return {"traceparent": f"00-{trace_id:032x}-{span_id:016x}-00"}


def traced_delivery(delivery: "Delivery", group: str) -> "DeliveryTrace":
    """The consumer's span of one record, continuing the trace its headers carry.

    A record of a trace that is not sampled (flags 00) gets no SDK span, as the SDK's
    parent-based sampler would record none: its trace context goes on as it came, for
    a fraction of the cost (every consumed record has one).
    """
    return DeliveryTrace(delivery, group)


class DeliveryTrace:
    """``traced_delivery``'s context manager (a class, not a generator: a batch enters one
    per record, and an unsampled one costs a header check and a context switch)."""

    __slots__ = ("_delivery", "_group", "_span", "_token")

    def __init__(self, delivery: "Delivery", group: str) -> None:
        self._delivery = delivery
        self._group = group
        self._token: object | None = None
        self._span: AbstractContextManager[trace.Span] | None = None

    def __enter__(self) -> trace.Span:
        delivery = self._delivery
        traceparent = delivery.headers.get("traceparent", "")
        if _is_unsampled(traceparent):
            carried = CarriedSpan(traceparent)
            self._token = context.attach(trace.set_span_in_context(carried, context.Context()))
            return carried
        self._span = continued_span(
            f"consume {delivery.topic}",
            delivery.headers,
            **{
                "messaging.system": "kafka",
                "messaging.destination.name": delivery.topic,
                "messaging.consumer.group.name": self._group,
                "csms.station_id": delivery.key,
                "messaging.destination.partition.id": str(delivery.partition),
                "messaging.kafka.offset": delivery.offset,
            },
        )
        return self._span.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._token is not None:
            context.detach(self._token)  # type: ignore[arg-type]
        elif self._span is not None:
            self._span.__exit__(exc_type, exc, traceback)


# A W3C traceparent of version 00 whose flags say "not sampled" (lower-case hex only).
_UNSAMPLED = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00")
_NO_TRACE_ID, _NO_SPAN_ID = "0" * 32, "0" * 16


def _is_unsampled(traceparent: str) -> bool:
    """Whether ``traceparent`` is a valid W3C traceparent (version 00) of an unsampled trace."""
    return (
        _UNSAMPLED.fullmatch(traceparent) is not None
        and traceparent[3:35] != _NO_TRACE_ID
        and traceparent[36:52] != _NO_SPAN_ID
    )


class CarriedSpan(NonRecordingSpan):
    """The span of a consumed record's unsampled trace, carried on as it came: its header
    is kept as it is (what ``current_trace_headers`` gives inside it) and read into a span
    context only if someone asks for one (a log line's trace id)."""

    def __init__(self, traceparent: str) -> None:
        super().__init__(INVALID_SPAN_CONTEXT)
        self.traceparent = traceparent
        self._parsed: SpanContext | None = None

    def get_span_context(self) -> SpanContext:
        if self._parsed is None:
            self._parsed = SpanContext(
                trace_id=int(self.traceparent[3:35], 16),
                span_id=int(self.traceparent[36:52], 16),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.DEFAULT),
            )
        return self._parsed


def trace_id_of(traceparent: str) -> str:
    """The trace id inside a W3C traceparent header value."""
    return traceparent.split("-")[1] if traceparent.count("-") == 3 else ""


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current trace id and any ``extra`` fields."""

    # uvicorn repeats its message with terminal colours in ``color_message``: not a field.
    _standard = frozenset(logging.makeLogRecord({}).__dict__) | {
        "message",
        "asctime",
        "color_message",
    }

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
        entry.update({k: v for k, v in record.__dict__.items() if k not in self._standard})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class HumanFormatter(logging.Formatter):
    """One readable line per record for a terminal: time, level, logger, message, then
    any ``extra`` fields as ``key=value`` (the same fields the JSON lines carry)."""

    _standard = JsonFormatter._standard

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        # One line per record: a message of several lines (an Alembic revision's whole
        # docstring, say) is folded; only a traceback goes below the line.
        record.message = " ".join(part.strip() for part in record.message.splitlines())
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{key}={value}" for key, value in record.__dict__.items() if key not in self._standard
        ]
        if not extras:
            return line
        first, newline, rest = line.partition("\n")  # a traceback stays below the line
        return f"{first}  {' '.join(extras)}{newline}{rest}"


def use_json_lines(json_lines: bool | None, stream: TextIO) -> bool:
    """JSON lines unless told otherwise, or unless ``stream`` is a terminal (a person reads
    it); containers and log shippers get JSON by default."""
    if json_lines is not None:
        return json_lines
    return not (hasattr(stream, "isatty") and stream.isatty())


def setup_logging(level: str = "INFO", *, json_lines: bool | None = None) -> bool:
    """Log to stderr, as JSON lines or readable lines (``use_json_lines``); returns which."""
    as_json = use_json_lines(json_lines, sys.stderr)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if as_json else HumanFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # A line per client request or metadata refresh drowns what matters.
    for chatty in ("aiokafka", "httpx"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    return as_json
