"""A test kit for the gateway: run one on a free port, and play a station over raw OCPP-J.

Product code for tests (like ``starlette.testclient``): the gateway runs with
its real WebSocket server; the station is a real ``websockets`` client.
"""

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from uuid import uuid4

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from csms_core import topics
from csms_core.bus import Bus, Outgoing, PublishError
from csms_core.bus.memory import InMemoryBus
from csms_core.envelope import EncodedEvent, Event
from csms_core.events import Topic
from csms_core.identity import IdentityStore
from csms_core.router import Router
from csms_core.settings import Environment
from csms_gateway.server import Gateway
from csms_gateway.settings import GatewaySettings

E = TypeVar("E", bound=Event[Any])


class HeldBus(InMemoryBus):
    """The in-process bus with ``ocpp.inbound`` held until the test releases it, however
    the gateway appends (a coroutine, or a future it answers from)."""

    def __init__(self) -> None:
        super().__init__()
        self.released = asyncio.Event()
        self._held: list[asyncio.Task[None]] = []

    async def publish(self, topic: Topic[E], event: E | EncodedEvent[E]) -> None:
        if topic == topics.OCPP_INBOUND:
            await self.released.wait()
        await super().publish(topic, event)

    async def publish_many(self, records: Sequence[Outgoing]) -> None:
        if any(record.topic == topics.OCPP_INBOUND for record in records):
            await self.released.wait()
        await super().publish_many(records)

    def append_now(self, record: Outgoing) -> "asyncio.Future[Any]":
        if record.topic != topics.OCPP_INBOUND:
            return super().append_now(record)
        acknowledged: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def later() -> None:
            await self.released.wait()
            super(HeldBus, self).append_now(record)
            acknowledged.set_result(None)

        self._held.append(asyncio.create_task(later()))
        return acknowledged


class FailingBus(InMemoryBus):
    """``ocpp.inbound`` unavailable: its records fail (``raises``: at once, when appended)."""

    def __init__(self, *, raises: bool = False) -> None:
        super().__init__()
        self._raises = raises

    async def publish(self, topic: Topic[E], event: E | EncodedEvent[E]) -> None:
        if topic == topics.OCPP_INBOUND:
            raise PublishError("not enough in-sync replicas")
        await super().publish(topic, event)

    async def publish_many(self, records: Sequence[Outgoing]) -> None:
        if any(record.topic == topics.OCPP_INBOUND for record in records):
            raise PublishError("not enough in-sync replicas")
        await super().publish_many(records)

    def append_now(self, record: Outgoing) -> "asyncio.Future[Any]":
        if record.topic != topics.OCPP_INBOUND:
            return super().append_now(record)
        if self._raises:
            raise PublishError("queue full")
        failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failed.set_exception(PublishError("not enough in-sync replicas"))
        return failed


def settings_for_tests(**overrides: Any) -> GatewaySettings:
    """Embedded-mode development settings on a free port with short timers; unknown stations
    connect (tests register the ones that need credentials)."""
    values: dict[str, Any] = {
        "kafka_bootstrap": None,
        "redis_url": None,
        "environment": Environment.DEVELOPMENT,
        "unknown_station_policy": "accept",
        "gateway_id": "gw-test",
        "ocpp_port": 0,
        "decision_timeout_s": 0.5,
        "shutdown_grace_s": 2.0,
        **overrides,
    }
    return GatewaySettings(**values)


@asynccontextmanager
async def running_gateway(
    settings: GatewaySettings, bus: Bus, router: Router, identities: IdentityStore
) -> AsyncIterator[Gateway]:
    """A gateway serving until the block ends, then shut down gracefully."""
    gateway = Gateway(settings, bus, router, identities)
    ready, stopping = asyncio.Event(), asyncio.Event()
    runner = asyncio.create_task(gateway.run(ready=ready, stopping=stopping))
    started = asyncio.create_task(ready.wait())
    await asyncio.wait({runner, started}, return_when=asyncio.FIRST_COMPLETED)
    if runner.done():
        started.cancel()
        runner.result()  # raises why it could not start
    try:
        yield gateway
    finally:
        stopping.set()
        await runner


def station_url(gateway: Gateway, station_id: str) -> str:
    scheme = "wss" if gateway.settings.tls else "ws"
    return f"{scheme}://127.0.0.1:{gateway.port}/ocpp/{station_id}"


def basic_auth(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Station:
    """A charging station speaking raw OCPP-J frames."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket

    async def send(self, frame: list[Any] | str | bytes) -> None:
        """Send a frame (a list is JSON-encoded; str/bytes go as they are)."""
        if isinstance(frame, list):
            await self.websocket.send(orjson.dumps(frame).decode())
        else:
            await self.websocket.send(frame)

    async def receive(self, timeout_s: float = 5.0) -> list[Any]:
        """The next frame from the gateway, decoded."""
        raw = await asyncio.wait_for(self.websocket.recv(), timeout_s)
        frame = orjson.loads(raw)
        assert isinstance(frame, list)
        return frame

    async def call(
        self, action: str, payload: dict[str, Any], message_id: str | None = None
    ) -> list[Any]:
        """Send a CALL and return the next frame (its answer)."""
        await self.send([2, message_id or uuid4().hex, action, payload])
        return await self.receive()

    async def silent_for(self, seconds: float) -> bool:
        """True if the gateway sends nothing for ``seconds``."""
        try:
            await asyncio.wait_for(self.websocket.recv(), seconds)
        except TimeoutError:
            return True
        return False


@asynccontextmanager
async def connect_station(
    gateway: Gateway,
    station_id: str = "CP-1",
    subprotocols: tuple[str, ...] = ("ocpp2.0.1",),
    headers: dict[str, str] | None = None,
    tls: ssl.SSLContext | None = None,
    compression: str | None = "deflate",
) -> AsyncIterator[Station]:
    """A station connected over ws://, or wss:// with ``tls`` if the gateway has TLS;
    ``compression``: None for a station that offers no permessage-deflate (as most do)."""
    tls_options: dict[str, Any] = {} if tls is None else {"ssl": tls}
    async with connect(
        station_url(gateway, station_id),
        subprotocols=[Subprotocol(token) for token in subprotocols],
        additional_headers=headers,
        compression=compression,
        open_timeout=5,
        close_timeout=2,
        **tls_options,
    ) as websocket:
        yield Station(websocket)


async def eventually(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    """Wait until ``condition()`` holds (e.g. an event the server publishes after a close)."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)
