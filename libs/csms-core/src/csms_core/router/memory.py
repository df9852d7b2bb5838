"""The embedded router: routes and mailboxes in this process's memory."""

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Self

from csms_core.calls.declaration import Declaration
from csms_core.calls.directory import WITHDRAWN_KEPT_S, Announced
from csms_core.router.base import Message, Route, StationCommand


class InMemoryRouter:
    def __init__(self) -> None:
        self._routes: dict[str, tuple[Route, float]] = {}
        self._mailboxes: dict[str, asyncio.Queue[Message]] = defaultdict(asyncio.Queue)
        self._declarations: dict[tuple[str, str], tuple[Declaration, float]] = {}
        self._withdrawn: dict[str, float] = {}  # replica: when

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    async def warm(self, connections: int) -> None:
        return None  # nothing to connect to

    async def register(self, route: Route, ttl_s: float) -> None:
        self._routes[route.station_id] = (route, time.monotonic() + ttl_s)

    async def refresh(self, routes: list[Route], ttl_s: float) -> None:
        for route in routes:
            current = self._routes.get(route.station_id)
            if current is None or current[0] == route:
                self._routes[route.station_id] = (route, time.monotonic() + ttl_s)

    async def unregister(self, route: Route) -> None:
        current = self._routes.get(route.station_id)
        if current is not None and current[0] == route:
            del self._routes[route.station_id]

    async def register_many(self, routes: Sequence[Route], ttl_s: float) -> list[Route | None]:
        replaced = []
        for route in routes:
            replaced.append(self._route(route.station_id))
            await self.register(route, ttl_s)
        return replaced

    async def unregister_many(self, routes: Sequence[Route]) -> None:
        for route in routes:
            await self.unregister(route)

    async def lookup(self, station_id: str) -> Route | None:
        return self._route(station_id)

    def _route(self, station_id: str) -> Route | None:
        current = self._routes.get(station_id)
        if current is None or current[1] < time.monotonic():
            return None
        return current[0]

    async def send_routed(self, command: StationCommand, ocpp_version: str) -> Route | None:
        route = self._route(command.station_id)
        if route is not None and route.ocpp_version == ocpp_version:
            routed = command.model_copy(update={"connection_id": route.connection_id})
            self._mailboxes[route.address].put_nowait(routed)
        return route

    async def send(self, address: str, message: Message) -> None:
        self._mailboxes[address].put_nowait(message)

    async def send_many(self, messages: Sequence[tuple[str, Message]]) -> None:
        for address, message in messages:
            self._mailboxes[address].put_nowait(message)

    async def open_mailbox(self, address: str) -> AsyncIterator[Message]:
        return self._read(self._mailboxes[address])

    async def announce(self, declaration: Declaration, replica: str, ttl_s: float) -> None:
        key = (declaration.party, replica)
        self._declarations[key] = (declaration, time.monotonic() + ttl_s)

    async def withdraw(self, party: str, replica: str) -> None:
        self._declarations.pop((party, replica), None)
        now = time.monotonic()
        self._withdrawn = {r: t for r, t in self._withdrawn.items() if now - t < WITHDRAWN_KEPT_S}
        self._withdrawn[replica] = now

    async def declarations(self) -> list[Announced]:
        now = time.monotonic()
        return [
            Announced(replica, declared, until - now)
            for (_party, replica), (declared, until) in self._declarations.items()
            if until > now
        ]

    async def withdrawn(self) -> frozenset[str]:
        now = time.monotonic()
        return frozenset(r for r, t in self._withdrawn.items() if now - t < WITHDRAWN_KEPT_S)

    async def _read(self, queue: asyncio.Queue[Message]) -> AsyncIterator[Message]:
        while True:
            yield await queue.get()
