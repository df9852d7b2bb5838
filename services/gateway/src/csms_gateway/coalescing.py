"""Many callers' small writes (route registrations and removals, connection events) sent
together: one batch in flight at a time.

In a reconnect storm a gateway opens and closes thousands of connections within seconds.
A Redis round trip per route and a Kafka acknowledgement wait per connection event made
the close path the gateway's largest cost. Here an item submitted while nothing is being
written is written at once; the items submitted while a write is in flight wait for the
next batch, which writes all of them (up to ``max_batch``) in one
call, in the order they were submitted: a station's connected event is submitted only once
it was written, so its closed event follows it on the bus. Each caller returns once its
own batch was written, with what the write returned for its item (a route registration:
the route it replaced), or gets that batch's exception.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# A batch's write: what it returns for each item, in order (None: nothing for any).
Write = Callable[[Sequence[T]], Awaitable[Sequence[R] | None]]


class Coalescer(Generic[T, R]):
    """Gathers ``submit``-ted items into batches for ``write`` (see the module docstring)."""

    def __init__(self, write: Write[T, R], name: str, max_batch: int = 1000) -> None:
        self._write = write
        self._name = name
        self._max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R | None]]] = []
        self._running: asyncio.Task[None] | None = None
        self._busy = False  # a write is in flight (a caller's own, or a batch)
        self.batches = 0  # write calls so far

    async def submit(self, item: T) -> R | None:
        """Once ``item`` was written, what the write returned for it; raise the exception
        its batch failed with."""
        if not self._busy:
            # Nothing in flight: written at once by this caller, as a call of its own would
            # be (a command sent right after a station connected finds its route). What is
            # submitted meanwhile waits for the next batch.
            self._busy = True
            try:
                self.batches += 1
                results = await self._write([item])
            finally:
                self._busy = False
                self._start()
            return None if results is None else results[0]
        future: asyncio.Future[R | None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)  # retrieved even if the caller gave up
        self._waiting.append((item, future))
        # A caller cancelled while waiting leaves its item (and the others) being written.
        return await asyncio.shield(future)

    def _start(self) -> None:
        if self._waiting and not self._busy:
            self._busy = True
            self._running = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                self.batches += 1
                try:
                    results = await self._write([item for item, _future in batch])
                except Exception as exc:  # noqa: BLE001 - each waiting caller gets it
                    for _item, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                each = [None] * len(batch) if results is None else results
                for (_item, future), result in zip(batch, each, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._busy = False

    async def drain(self) -> None:
        """Wait until everything submitted so far was written (or failed)."""
        while self._running is not None and not self._running.done():
            await asyncio.shield(self._running)


def _retrieve(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()
