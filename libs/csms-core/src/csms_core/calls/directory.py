"""The directory of who answers station CALLs: services announce, gateways read.

Every replica of a service announces its party's ``Declaration`` in the router (Redis
in the distributed mode, the embedded router in ``csms up``) under its own replica id,
with a TTL it keeps renewing (``Announcement``), and withdraws it when it stops. A
party is alive while one of its replicas is; a claim counts once every live replica
makes it (so a rolling upgrade that adds one is waited for only once no old replica is
left). A gateway keeps the table of the parties alive (``AnswerDirectory``), read
every ``REFRESH_S`` and at once when a CALL needs a decision nobody alive makes (CALLs
that miss together share one read): a service that is not deployed is waited for by nobody.
If the router cannot be read, the last table stays.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from uuid import uuid4

from csms_core.calls.declaration import NOBODY, AnswerTable, Declaration, Routing
from csms_ocpp.actions import answers_itself

logger = logging.getLogger(__name__)

ANNOUNCE_EVERY_S = 5.0
ANNOUNCE_TTL_S = 15.0  # a replica that announced nothing for this long is gone
REFRESH_S = 2.0


class Directory(Protocol):
    """Where declarations are kept (both routers are one)."""

    async def announce(self, declaration: Declaration, replica: str, ttl_s: float) -> None: ...

    async def withdraw(self, party: str, replica: str) -> None: ...

    async def declarations(self) -> list[tuple[str, Declaration]]:
        """(replica, declaration) of every replica alive."""
        ...


def table_of(announced: Iterable[Declaration]) -> AnswerTable:
    """The table gateways route by: these declarations, and OCPP's rules for the rest."""
    return AnswerTable(announced, answers_itself)


def alive(announced: Iterable[tuple[str, Declaration]]) -> list[Declaration]:
    """One declaration per party: the claims every live replica of it makes."""
    parties: dict[str, Declaration] = {}
    for _replica, declaration in announced:
        known = parties.get(declaration.party)
        parties[declaration.party] = declaration if known is None else known.common(declaration)
    return list(parties.values())


class Announcement:
    """One replica's announcement of what its party answers, renewed until it stops."""

    def __init__(self, directory: Directory, declaration: Declaration) -> None:
        self._directory = directory
        self.declaration = declaration
        self.replica = uuid4().hex[:12]

    async def announce(self) -> None:
        await self._directory.announce(self.declaration, self.replica, ANNOUNCE_TTL_S)

    async def run(self, stopping: asyncio.Event) -> None:
        """Renew every ``ANNOUNCE_EVERY_S`` until ``stopping``, then withdraw."""
        try:
            while not stopping.is_set():
                try:
                    await self.announce()
                except Exception as exc:  # noqa: BLE001 - Redis down: the TTL covers misses
                    logger.warning("could not announce %s: %r", self.declaration.party, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), ANNOUNCE_EVERY_S)
        finally:
            with contextlib.suppress(Exception):
                await self._directory.withdraw(self.declaration.party, self.replica)


class AnswerDirectory:
    """A gateway's view of who answers what, kept fresh from the directory."""

    def __init__(
        self,
        directory: Directory,
        refresh_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._refresh_s = refresh_s
        self._clock = clock
        self.table = table_of([])
        self._read_at = float("-inf")
        self._reading = asyncio.Lock()

    async def refresh(self, asked_at: float | None = None) -> None:
        """Read the directory; with ``asked_at``, not again if a read began since then (the
        CALLs that missed together share one read)."""
        async with self._reading:
            if asked_at is not None and self._read_at > asked_at:
                return
            self._read_at = self._clock()
            try:
                announced = await self._directory.declarations()
            except Exception as exc:  # noqa: BLE001 - keep the last table: the best we know
                logger.warning("who answers what: directory not readable (%r); kept", exc)
                return
            table = table_of(alive(announced))
            if table.parties != self.table.parties:
                logger.info("parties answering station calls: %s", sorted(table.parties))
            self.table = table

    async def route(self, version: str, action: str, payload: Mapping[str, Any]) -> Routing:
        """Who answers this CALL; when nobody alive decides it, the directory is read again
        first (a service that just started is routed to at once)."""
        asked_at = self._clock()
        routing = self.table.route(version, action, payload)
        if routing.owner == NOBODY:
            await self.refresh(asked_at)
            routing = self.table.route(version, action, payload)
        return routing

    async def run(self) -> None:
        """Read the directory every ``refresh_s`` until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self._refresh_s)
