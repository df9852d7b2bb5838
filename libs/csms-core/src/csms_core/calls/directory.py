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

A gateway holds each replica it read for what was left of its TTL then (a lease of its
own), not only while the router shows it: a restarted Redis has lost every announcement,
and the replicas renew theirs within ``ANNOUNCE_EVERY_S``, so without the lease the boots
of those seconds were answered Pending for want of a decision. A replica that stops
withdraws, and the router keeps that for ``WITHDRAWN_KEPT_S``: a withdrawn replica's lease
ends at the next read.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, Protocol
from uuid import uuid4

from csms_core.calls.declaration import NOBODY, AnswerTable, Declaration, Routing
from csms_ocpp.actions import answers_itself

logger = logging.getLogger(__name__)

ANNOUNCE_EVERY_S = 5.0
ANNOUNCE_TTL_S = 15.0  # a replica that announced nothing for this long is gone
REFRESH_S = 2.0
WITHDRAWN_KEPT_S = 60.0  # a withdrawal is remembered longer than any lease it ends


class Announced(NamedTuple):
    """A replica's declaration as the router holds it, and what is left of its TTL."""

    replica: str
    declaration: Declaration
    ttl_s: float


class Directory(Protocol):
    """Where declarations are kept (both routers are one)."""

    async def announce(self, declaration: Declaration, replica: str, ttl_s: float) -> None: ...

    async def withdraw(self, party: str, replica: str) -> None:
        """The replica's declaration goes, and its withdrawal is kept ``WITHDRAWN_KEPT_S``."""
        ...

    async def declarations(self) -> list[Announced]:
        """Every replica alive, with what is left of its TTL."""
        ...

    async def withdrawn(self) -> frozenset[str]:
        """The replicas withdrawn within the last ``WITHDRAWN_KEPT_S``."""
        ...


def table_of(announced: Iterable[Declaration]) -> AnswerTable:
    """The table gateways route by: these declarations, and OCPP's rules for the rest."""
    return AnswerTable(announced, answers_itself)


def alive(announced: Iterable[Announced]) -> list[Declaration]:
    """One declaration per party: the claims every live replica of it makes."""
    parties: dict[str, Declaration] = {}
    for _replica, declaration, _ttl_s in announced:
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
        self._leases: dict[str, tuple[Declaration, float]] = {}  # replica: (it, ends at)
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
                withdrawn = await self._directory.withdrawn()
            except Exception as exc:  # noqa: BLE001 - keep the last table: the best we know
                logger.warning("who answers what: directory not readable (%r); kept", exc)
                return
            now = self._clock()
            for replica, declaration, ttl_s in announced:
                self._leases[replica] = (declaration, now + ttl_s)
            self._leases = {
                replica: (declaration, ends)
                for replica, (declaration, ends) in self._leases.items()
                if ends > now and replica not in withdrawn
            }
            table = table_of(
                alive(Announced(r, d, ends - now) for r, (d, ends) in self._leases.items())
            )
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
