"""Process plumbing shared by every ``csms`` sub-command: signals and the HTTP server."""

import asyncio
import logging
import signal
from collections.abc import Generator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

logger = logging.getLogger(__name__)


def stop_on_signals(stopping: asyncio.Event) -> None:
    """SIGTERM / SIGINT: begin a graceful shutdown (stop accepting, drain, then exit)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, signum, stopping)


def _on_signal(signum: int, stopping: asyncio.Event) -> None:
    logger.info("received %s: shutting down", signal.Signals(signum).name)
    stopping.set()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: our ``stopping`` event decides."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve_api(app: FastAPI, host: str, port: int, stopping: asyncio.Event) -> None:
    """Serve ``app`` until ``stopping`` is set."""
    server = _Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve(), name=f"http {host}:{port}")
    stop_waiter = asyncio.create_task(stopping.wait(), name="await stop")
    await asyncio.wait({serving, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stop_waiter.cancel()
    await serving
