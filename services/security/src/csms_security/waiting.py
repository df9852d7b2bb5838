"""Waiting for work or for the end, whichever comes first (background loops stop promptly)."""

import asyncio
from typing import TypeVar

T = TypeVar("T")


async def next_item(
    queue: "asyncio.Queue[T]", stopping: asyncio.Event, timeout_s: float
) -> T | None:
    """The next item of ``queue``; None after ``timeout_s`` or once ``stopping`` is set."""
    getter = asyncio.create_task(queue.get())
    stopper = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait(
            {getter, stopper}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopper.cancel()
        if not getter.done():
            getter.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    return None


async def woken(wake: asyncio.Event, stopping: asyncio.Event, timeout_s: float) -> None:
    """Return when ``wake`` or ``stopping`` is set, or after ``timeout_s``."""
    waiters = {asyncio.create_task(wake.wait()), asyncio.create_task(stopping.wait())}
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
