"""Billing's periodic checks (running costs, prepaid limits): one step per tick until stopped."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


async def every(
    stopping: asyncio.Event, tick_s: float, step: Callable[[], Awaitable[int]], what: str
) -> None:
    """Run ``step`` every ``tick_s`` until ``stopping`` is set; a failing step (a database
    outage) is logged as ``what`` not done and tried again at the next tick."""
    while not stopping.is_set():
        try:
            await step()
        except Exception as exc:  # noqa: BLE001 - a database outage: tried again
            logger.warning("%s: %r", what, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), tick_s)
