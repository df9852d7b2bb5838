"""Process plumbing shared by every ``csms`` sub-command: signals, start-up waits, the
garbage collector (the HTTP server is ``csms_cli.serving``: the gateway serves none)."""

import asyncio
import gc
import logging
import signal

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
