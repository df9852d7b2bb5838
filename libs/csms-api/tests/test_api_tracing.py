"""REST request telemetry follows the trace sample ratio: an unsampled request records no
span and still carries a trace on; a caller's sampled ``traceparent`` is always honoured,
an unsampled one always followed."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

from csms_api.app import create_service_app
from csms_api.auth import Authenticator, AuthSettings, OperatorDep
from csms_api.tracing import TraceSampling
from csms_core.db import session_factory
from csms_core.telemetry import current_trace_headers
from tests.kits.api import bare_database, bearer_headers
from tests.kits.tracing import memory_exporter

SAMPLED_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED_PARENT = "00-1bf7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00"


def _routes() -> APIRouter:
    router = APIRouter()

    @router.get("/trace")
    async def what_goes_on(caller: OperatorDep) -> dict[str, str | bool]:
        """What a command sent from here carries, and whether this request is recorded."""
        return {
            "traceparent": current_trace_headers().get("traceparent", ""),
            "recording": trace.get_current_span().is_recording(),
        }

    return router


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return memory_exporter()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with bare_database(tmp_path / "api.db") as engine:
        yield engine


async def _client(engine: AsyncEngine, ratio: float) -> httpx.AsyncClient:
    app: FastAPI = create_service_app(
        "tracing test",
        routers=[_routes()],
        authenticator=Authenticator(AuthSettings(), session_factory(engine)),
        ready=lambda: True,
        trace_sample_ratio=ratio,
    )
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://csms",
        headers=await bearer_headers(engine),
    )


def _server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind == trace.SpanKind.SERVER]


def _parts(traceparent: str) -> list[str]:
    parts = traceparent.split("-")
    assert len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16, traceparent
    return parts


async def test_an_unsampled_request_records_no_span_and_still_carries_a_trace(
    engine: AsyncEngine, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    async with await _client(engine, ratio=0.0) as client:
        first = (await client.get("/api/v1/trace")).json()
        second = (await client.get("/api/v1/trace")).json()
    assert exporter.get_finished_spans() == ()
    assert first["recording"] is False
    # A trace of its own, not sampled: the next hop records nothing either.
    assert _parts(first["traceparent"])[3] == "00"
    assert _parts(first["traceparent"])[1] != _parts(second["traceparent"])[1]


async def test_a_sampled_traceparent_is_honoured_whatever_the_ratio(
    engine: AsyncEngine, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    async with await _client(engine, ratio=0.0) as client:
        body = (await client.get("/api/v1/trace", headers={"traceparent": SAMPLED_PARENT})).json()
    [span] = _server_spans(exporter)
    assert span.name == "GET /api/v1/trace"
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert format(span.context.trace_id, "032x") == _parts(SAMPLED_PARENT)[1]
    assert body["recording"] is True
    # What the request sends on continues the caller's trace, recorded.
    _, trace_id, _, flags = _parts(body["traceparent"])
    assert (trace_id, flags) == (_parts(SAMPLED_PARENT)[1], "01")


async def test_an_unsampled_traceparent_is_followed_at_a_ratio_of_one(
    engine: AsyncEngine, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    async with await _client(engine, ratio=1.0) as client:
        response = await client.get("/api/v1/trace", headers={"traceparent": UNSAMPLED_PARENT})
    assert response.status_code == 200
    assert exporter.get_finished_spans() == ()
    assert response.json() == {"traceparent": UNSAMPLED_PARENT, "recording": False}


async def test_a_request_without_a_traceparent_is_recorded_at_a_ratio_of_one(
    engine: AsyncEngine, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    async with await _client(engine, ratio=1.0) as client:
        body = (await client.get("/api/v1/trace")).json()
        invalid = (await client.get("/api/v1/trace", headers={"traceparent": "00-zz-yy-01"})).json()
    spans = _server_spans(exporter)
    assert [span.name for span in spans] == ["GET /api/v1/trace"] * 2
    assert all(span.parent is None for span in spans)  # new traces, the invalid one ignored
    assert body["recording"] is True and invalid["recording"] is True
    assert _parts(body["traceparent"])[1] == format(spans[0].context.trace_id, "032x")


async def test_a_share_of_requests_is_recorded_at_a_ratio_between(
    engine: AsyncEngine, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    async with await _client(engine, ratio=0.5) as client:
        bodies = [(await client.get("/api/v1/trace")).json() for _ in range(200)]
    recorded = [body for body in bodies if body["recording"]]
    assert len(_server_spans(exporter)) == len(recorded)
    # 200 draws at 0.5: outside 50..150 once in about 10^12 runs.
    assert 50 <= len(recorded) <= 150
    # The sampled bit (the SDK also sets W3C's random-trace-id bit on a trace it starts).
    assert {int(_parts(body["traceparent"])[3], 16) & 1 for body in recorded} == {1}
    assert {_parts(body["traceparent"])[3] for body in bodies if not body["recording"]} == {"00"}


async def test_an_unrecorded_request_is_still_authenticated(
    engine: AsyncEngine, exporter: InMemorySpanExporter
) -> None:
    async with await _client(engine, ratio=0.0) as client:
        response = await client.get("/api/v1/trace", headers={"authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_the_ratio_comes_from_csms_trace_sample_ratio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSMS_TRACE_SAMPLE_RATIO", "0.25")
    assert TraceSampling().trace_sample_ratio == 0.25
    monkeypatch.setenv("CSMS_TRACE_SAMPLE_RATIO", "1.5")
    with pytest.raises(ValueError, match="less than or equal to 1"):
        TraceSampling()
