"""Which REST requests record a trace: FastAPI's request telemetry sampled as station messages are.

FastAPI records a server span (and a span per dependency, endpoint and serialization) for
every request, whatever the trace sample ratio: at the default sampler every one is
recorded, about a third of a command request's time in ``csms sessions``. Here a request is
recorded as its caller decided, or, when the caller decided nothing, at
``CSMS_TRACE_SAMPLE_RATIO`` (the share the gateway records of station messages):

- a ``traceparent`` that is sampled (flags 01): recorded, a child of the caller's span;
- a ``traceparent`` that is not sampled (flags 00): no span; its trace (and baggage) is the
  request's context, so what the request sends on (a command, an event) carries it;
- none (or an invalid one): a new trace, recorded with the probability of the ratio;
  otherwise no span, and a new unsampled trace id is the request's context.

A request FastAPI does not record costs what it would without telemetry.
"""

from collections.abc import MutableMapping
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context, propagate, trace
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.types import ASGIApp, Receive, Scope, Send

from csms_core.telemetry import MessageSampling, new_unsampled_span

# Where the decision to record nothing waits, in the request's scope, for UnsampledContext.
_UNSAMPLED_KEY = "csms.unsampled_trace"


class TraceSampling(BaseSettings):
    """The share of traces a process starts that it records (``CSMS_TRACE_SAMPLE_RATIO``)."""

    model_config = SettingsConfigDict(env_prefix="CSMS_", extra="ignore")

    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)


class RequestSampling:
    """FastAPI's ``exclude`` hook: True (no telemetry) for a request whose trace is not recorded."""

    def __init__(self, ratio: float) -> None:
        self._sampling = MessageSampling(ratio)

    def __call__(self, scope: MutableMapping[str, Any]) -> bool:
        if scope.get("type") not in ("http", "websocket"):
            return False
        carrier = _trace_headers(scope)
        if "traceparent" in carrier:
            parent = trace.get_current_span(propagate.extract(carrier)).get_span_context()
            if parent.is_valid:
                if parent.trace_flags.sampled:
                    return False
                scope[_UNSAMPLED_KEY] = carrier
                return True
        if self._sampling.sampled():
            return False
        scope[_UNSAMPLED_KEY] = None
        return True


class UnsampledContext:
    """Makes an unrecorded request's trace current while it is served (ASGI middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _UNSAMPLED_KEY not in scope:
            await self.app(scope, receive, send)
            return
        carrier: dict[str, str] | None = scope.pop(_UNSAMPLED_KEY)
        # On top of what FastAPI made current (its own telemetry marked absent for this one).
        current = (
            propagate.extract(carrier, context=context.get_current())
            if carrier is not None
            else trace.set_span_in_context(new_unsampled_span())
        )
        token = context.attach(current)
        try:
            await self.app(scope, receive, send)
        finally:
            context.detach(token)


def request_sampling(ratio: float | None = None) -> TelemetryConfig:
    """FastAPI's telemetry configuration that records requests at ``ratio`` (default:
    ``CSMS_TRACE_SAMPLE_RATIO``); the app adds ``UnsampledContext`` as its outermost
    middleware, so an unrecorded request's trace is current for all the others (the audit
    trail writes its trace id)."""
    sampling = RequestSampling(TraceSampling().trace_sample_ratio if ratio is None else ratio)
    return {"exclude": sampling}


def _trace_headers(scope: MutableMapping[str, Any]) -> dict[str, str]:
    """The request's trace context headers (``traceparent``, ``tracestate``, ``baggage``)."""
    carrier: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        if name in (b"traceparent", b"tracestate", b"baggage"):
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            carrier[key] = f"{carrier[key]},{text}" if key in carrier else text
    return carrier
