"""The handshake's identity lookups, coalesced into one statement for many stations.

In a reconnect storm thousands of stations open their connections within a second or
two. A database session and a round trip per handshake would queue the handshakes on
the connection pool until they time out (the WebSocket open timeout) and the stations
come back, adding to the storm. Here one query runs at a time: the lookups asked while
it runs wait for the next, which fetches all of them (up to ``max_batch``) at once. A
lookup sees the identity as committed when its query ran, as a lookup of its own would.
"""

import asyncio

from csms_core.identity import IdentityStore, StationIdentity


class CoalescedIdentities:
    """``IdentityStore.get`` for many callers at once (see the module docstring)."""

    def __init__(self, store: IdentityStore, max_batch: int = 500) -> None:
        self._store = store
        self._max_batch = max_batch
        self._waiting: dict[str, asyncio.Future[StationIdentity | None]] = {}
        self._running: asyncio.Task[None] | None = None
        self.queries = 0  # statements run so far

    async def get(self, station_id: str) -> StationIdentity | None:
        """The station's identity (None: it has none); a database failure raises."""
        future = self._waiting.get(station_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            # Retrieved here even if every caller gave up waiting (no "never retrieved").
            future.add_done_callback(_retrieve)
            self._waiting[station_id] = future
            if self._running is None or self._running.done():
                self._running = asyncio.create_task(self._run(), name="identity lookups")
        # A caller giving up (its handshake timed out) leaves the others' lookup running.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while self._waiting:
            station_ids = list(self._waiting)[: self._max_batch]
            batch = {station_id: self._waiting.pop(station_id) for station_id in station_ids}
            self.queries += 1
            try:
                found = await self._store.get_many(station_ids)
            except Exception as exc:  # noqa: BLE001 - each waiting handshake refuses (503)
                for future in batch.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            for station_id, future in batch.items():
                if not future.done():
                    future.set_result(found.get(station_id))


def _retrieve(future: "asyncio.Future[StationIdentity | None]") -> None:
    if not future.cancelled():
        future.exception()
