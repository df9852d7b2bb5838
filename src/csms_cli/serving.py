"""The HTTP server of every ``csms`` sub-command that serves a REST API (uvicorn)."""

import asyncio
import socket
from collections.abc import Generator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import configure_mappers
from starlette.types import Message, Scope

from csms_api.limits import RequestLimits


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: our ``stopping`` event decides."""

    def __init__(self, config: uvicorn.Config, listening: asyncio.Event | None) -> None:
        super().__init__(config)
        self._listening = listening

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._listening is not None:
            self._listening.set()


_UNSAMPLED_TRACEPARENT = f"00-{'1' * 32}-{'1' * 16}-00".encode()


async def warm_app(app: FastAPI) -> None:
    """One request through ``app`` in this process before it serves (``GET /healthz``, open,
    503 while starting): Starlette builds its middleware stack on the first request, and
    what that request imports (anyio's asyncio backend: compiled from source where no
    bytecode is cached) would otherwise be paid by the first client's (issue 10). Its trace
    is unsampled: it records no span. The ORM's mappers are configured here too (its first
    query would)."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"warm-up"), (b"traceparent", _UNSAMPLED_TRACEPARENT)],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    await app(scope, receive, send)
    configure_mappers()


async def serve_api(
    app: FastAPI,
    host: str,
    port: int,
    stopping: asyncio.Event,
    *,
    listening: asyncio.Event | None = None,
) -> None:
    """Serve ``app`` until ``stopping`` is set; ``listening`` is set once it accepts."""
    await warm_app(app)
    limits = RequestLimits()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # Behind these peers (a reverse proxy) the client is the one X-Forwarded-For names:
        # the rate limit is per client, not per proxy (csms_api.limits).
        forwarded_allow_ips=limits.trusted_proxies,
        # Connections and requests at once; beyond, 503 (uvicorn).
        limit_concurrency=limits.max_concurrent_requests,
    )
    server = _Server(config, listening)
    serving = asyncio.create_task(server.serve(), name=f"http {host}:{port}")
    stop_waiter = asyncio.create_task(stopping.wait(), name="await stop")
    await asyncio.wait({serving, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stop_waiter.cancel()
    await serving
