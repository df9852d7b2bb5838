"""Process plumbing shared by every ``csms`` sub-command: signals and the HTTP server."""

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Generator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from csms_api.limits import RequestLimits

logger = logging.getLogger(__name__)


# Young objects collected once this many were allocated (CPython's default: 700). A
# consumer's batch holds thousands of objects for a few milliseconds; at 700 they survive
# into the old generation, whose full collections (300,000 objects: 0.2-0.4 s each,
# measured in `csms sessions` under bench.event_lag) took a third of its time.
YOUNG_GC_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect young objects less often, and never scan what start-up made (modules,
    schemas, models): it lives as long as the process."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, middle, old)


def stop_on_signals(stopping: asyncio.Event) -> None:
    """SIGTERM / SIGINT: begin a graceful shutdown (stop accepting, drain, then exit)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, signum, stopping)


def _on_signal(signum: int, stopping: asyncio.Event) -> None:
    logger.info("received %s: shutting down", signal.Signals(signum).name)
    stopping.set()


async def all_set_unless(events: list[asyncio.Event], stopping: asyncio.Event) -> bool:
    """Wait until every event is set (True), or until ``stopping`` is (False)."""

    async def every() -> None:
        for event in events:
            await event.wait()

    waiters = [
        asyncio.create_task(every(), name="await start-up"),
        asyncio.create_task(stopping.wait(), name="await stop"),
    ]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return all(event.is_set() for event in events)


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


async def serve_api(
    app: FastAPI,
    host: str,
    port: int,
    stopping: asyncio.Event,
    *,
    listening: asyncio.Event | None = None,
) -> None:
    """Serve ``app`` until ``stopping`` is set; ``listening`` is set once it accepts."""
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
