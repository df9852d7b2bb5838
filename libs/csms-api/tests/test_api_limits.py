"""Request limits as an abuser meets them: a body past the limit (declared or chunked), a
route with a limit of its own, a streamed route, a client that floods (429 with
Retry-After, other clients unaffected, health checks never limited)."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from csms_api.app import create_service_app
from csms_api.auth import Authenticator, AuthSettings, OperatorDep
from csms_api.limits import RequestLimits, TokenBuckets, body_limit
from csms_core.db import session_factory
from tests.kits.api import bare_database, bearer_headers

LIMIT = 64 * 1024


class Note(BaseModel):
    text: str


def _routes() -> APIRouter:
    router = APIRouter()

    @router.post("/notes")
    async def add_note(caller: OperatorDep, note: Note) -> dict[str, int]:
        """A JSON body: the default limit."""
        return {"length": len(note.text)}

    @router.post("/big-notes")
    @body_limit(4 * LIMIT)
    async def add_big_note(caller: OperatorDep, note: Note) -> dict[str, int]:
        """A JSON body with a limit of its own."""
        return {"length": len(note.text)}

    @router.post("/stream")
    async def stream(request: Request) -> dict[str, int]:
        """Reads its body as a stream (and would bound it itself, as firmware uploads do)."""
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    return router


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with bare_database(tmp_path / "api.db") as engine:
        yield engine


def _app(engine: AsyncEngine, limits: RequestLimits) -> FastAPI:
    return create_service_app(
        "limits test",
        routers=[_routes()],
        authenticator=Authenticator(AuthSettings(), session_factory(engine)),
        ready=lambda: True,
        limits=limits,
    )


def _client(app: FastAPI, headers: dict[str, str], address: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    headers = {"content-type": "application/json", **headers}
    return httpx.AsyncClient(transport=transport, base_url="http://csms", headers=headers)


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = _app(engine, RequestLimits(max_body_bytes=LIMIT, rate_burst=1000))
    async with _client(app, await bearer_headers(engine)) as client:
        yield client


def _note(size: int) -> bytes:
    return b'{"text": "' + b"x" * size + b'"}'


def _chunks(total: int, chunk: int = 16 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * chunk
        sent += chunk


async def test_a_body_within_the_limit_is_served(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/notes", content=_note(LIMIT - 100))
    assert response.status_code == 200
    assert response.json() == {"length": LIMIT - 100}


async def test_a_declared_body_past_the_limit_is_413_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/notes", content=_note(LIMIT + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:csms:problem:body-too-large"
    assert body["detail"] == f"the request body exceeds {LIMIT} bytes"


async def test_a_chunked_body_past_the_limit_is_413(client: httpx.AsyncClient) -> None:
    """No Content-Length: the body is counted as it arrives."""

    async def body() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for chunk in _chunks(4 * LIMIT):
            yield chunk

    response = await client.post("/api/v1/notes", content=body())
    assert response.status_code == 413
    assert response.json()["type"] == "urn:csms:problem:body-too-large"


async def test_a_body_past_the_limit_is_413_before_authentication(
    engine: AsyncEngine,
) -> None:
    """Nobody makes the server read a huge body: not even without a token."""
    app = _app(engine, RequestLimits(max_body_bytes=LIMIT))
    async with _client(app, {}) as anonymous:
        response = await anonymous.post("/api/v1/notes", content=_note(2 * LIMIT))
    assert response.status_code == 413


async def test_a_route_with_its_own_limit_takes_more_and_no_more(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/api/v1/big-notes", content=_note(2 * LIMIT))).status_code == 200
    assert (await client.post("/api/v1/big-notes", content=_note(5 * LIMIT))).status_code == 413


async def test_a_streamed_route_bounds_its_body_itself(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/stream", content=b"".join(_chunks(3 * LIMIT)))
    assert response.status_code == 200
    assert response.json() == {"size": 3 * LIMIT}


async def test_a_flooding_client_gets_429_with_retry_after(engine: AsyncEngine) -> None:
    app = _app(engine, RequestLimits(rate_per_s=0.5, rate_burst=3))
    headers = await bearer_headers(engine)
    async with _client(app, headers) as flooder, _client(app, headers, "10.0.0.2") as other:
        statuses = [(await flooder.get("/metrics")).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        refused = await flooder.get("/metrics")
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:csms:problem:rate-limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 2
        # Another client is not held back, and health checks are never limited.
        assert (await other.get("/metrics")).status_code == 200
        assert (await flooder.get("/healthz")).status_code == 200
        assert (await flooder.get("/readyz")).status_code == 200


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    buckets = TokenBuckets(rate_per_s=2.0, burst=2, capacity=100)
    assert [buckets.take("a", now=0.0) for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("a", now=0.0) == pytest.approx(0.5)
    assert buckets.take("a", now=0.5) == 0.0  # one token back after half a second
    assert buckets.take("a", now=100.0) == 0.0  # long idle: back to the burst, not beyond
    assert buckets.take("a", now=100.0) == 0.0
    assert buckets.take("a", now=100.0) > 0


def test_buckets_forget_the_least_recently_seen_clients_past_their_capacity() -> None:
    buckets = TokenBuckets(rate_per_s=1.0, burst=1, capacity=100)
    assert buckets.take("first", now=0.0) == 0.0
    for n in range(100):
        buckets.take(f"client-{n}", now=0.0)
    # "first" was forgotten: it starts again with a full bucket (memory stays bounded).
    assert buckets.take("first", now=0.0) == 0.0
    assert buckets.take("client-99", now=0.0) > 0
