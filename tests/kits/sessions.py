"""Driving a real sessions service on the embedded bus and router, as the gateway would.

For this service's tests and for other components' tests that need sessions;
nothing here is a mock: the bus, router and database are the product's own.
"""

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar
from uuid import uuid4

from csms_api.access import SCHEMA as ACCESS_SCHEMA
from csms_core.bus.memory import InMemoryBus
from csms_core.calls import Routing, alive, table_of
from csms_core.db import create_engine
from csms_core.envelope import Envelope, Event
from csms_core.events import (
    ConnectionClosed,
    ConnectionClosedData,
    ConnectionOpened,
    ConnectionOpenedData,
    InboundCall,
    OcppCall,
    Topic,
)
from csms_core.identity import SCHEMA as IDENTITY_SCHEMA
from csms_core.router import (
    CallAnswer,
    CommandClient,
    CommandOutcome,
    CommandResult,
    Route,
    StationCommand,
)
from csms_core.router.base import Message, gateway_address
from csms_core.router.memory import InMemoryRouter
from csms_core.settings import Environment
from csms_core.topics import OCPP_CONNECTIONS, OCPP_INBOUND, STATION_STATUS
from csms_ocpp import OcppVersion
from csms_sessions.db import SCHEMA
from csms_sessions.inbox import ProcessedEvent
from csms_sessions.service import SessionsService
from csms_sessions.settings import SessionsSettings
from csms_sessions.stations.models import Station

E = TypeVar("E", bound=Event[Any])
GATEWAY_ID = "gw-test"
WAIT_S = 15.0  # only reached when something is wrong; a loaded CI machine needs the room


def settings_for_tests(tmp_path: Path, **overrides: Any) -> SessionsSettings:
    values: dict[str, Any] = {
        "environment": Environment.DEVELOPMENT,
        "kafka_bootstrap": None,
        "redis_url": None,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}",
        "command_timeout_s": 2.0,
        "log_json": False,
    }
    return SessionsSettings(**(values | overrides))


@dataclass
class Harness:
    """A running sessions service and the gateway's side of the bus and router."""

    service: SessionsService
    bus: InMemoryBus
    router: InMemoryRouter
    mailbox: AsyncIterator[Message]
    connections: dict[str, str] = field(default_factory=dict)

    async def call(
        self,
        station_id: str,
        action: str,
        payload: dict[str, Any],
        *,
        version: OcppVersion = OcppVersion.V16,
        event_id: str | None = None,
    ) -> OcppCall:
        """Publish a station's CALL to ``ocpp.inbound`` the way the gateway does (routed by
        the declarations of the parties alive: the sessions service's own here)."""
        routing = await self.route(station_id, action, payload, version)
        event = OcppCall(
            id=event_id or uuid4().hex,
            source=f"csms/gateway/{GATEWAY_ID}",
            station_id=station_id,
            ocpp_version=version.number,
            data=InboundCall(
                action=action,
                message_id=uuid4().hex[:8],
                payload=payload,
                gateway_id=GATEWAY_ID,
                connection_id=self.connections.get(station_id, "conn-0"),
                received_at=datetime.now(UTC),
                owner=routing.owner,
                contributors=list(routing.contributors),
            ),
        )
        await self.publish(OCPP_INBOUND, event)
        return event

    async def route(
        self, station_id: str, action: str, payload: dict[str, Any], version: OcppVersion
    ) -> Routing:
        """Who a gateway would name as answering this CALL now."""
        announced = alive(await self.router.declarations())
        return table_of(announced).route(version.number, action, payload)

    async def publish(self, topic: Topic[E], event: E) -> None:
        await self.bus.publish(topic, event)

    async def connect(
        self, station_id: str, connection_id: str, version: OcppVersion = OcppVersion.V16
    ) -> ConnectionOpened:
        """Open a connection: the route for commands and the ``ocpp.connections`` event."""
        self.connections[station_id] = connection_id
        route = Route(
            station_id=station_id,
            gateway_id=GATEWAY_ID,
            connection_id=connection_id,
            ocpp_version=version.number,
        )
        await self.router.register(route, ttl_s=60)
        event = ConnectionOpened(
            source=f"csms/gateway/{GATEWAY_ID}",
            station_id=station_id,
            ocpp_version=version.number,
            data=ConnectionOpenedData(
                gateway_id=GATEWAY_ID,
                connection_id=connection_id,
                subprotocol=version.value,
                security_profile=1,
                remote_address="127.0.0.1",
            ),
        )
        await self.publish(OCPP_CONNECTIONS, event)
        return event

    async def disconnect(self, station_id: str, connection_id: str) -> ConnectionClosed:
        event = ConnectionClosed(
            source=f"csms/gateway/{GATEWAY_ID}",
            station_id=station_id,
            data=ConnectionClosedData(
                gateway_id=GATEWAY_ID,
                connection_id=connection_id,
                subprotocol="ocpp1.6",
                close_code=1000,
                reason="",
            ),
        )
        await self.publish(OCPP_CONNECTIONS, event)
        return event

    async def answer(self) -> CallAnswer:
        """The next answer sessions sent to the gateway."""
        message = await self._next()
        assert isinstance(message, CallAnswer), message
        return message

    async def command(self) -> StationCommand:
        """The next command sessions sent to the gateway for a station."""
        message = await self._next()
        assert isinstance(message, StationCommand), message
        return message

    async def reply(
        self,
        command: StationCommand,
        payload: dict[str, Any] | None = None,
        *,
        outcome: CommandOutcome = CommandOutcome.RESULT,
        error_code: str | None = None,
    ) -> None:
        """Answer ``command`` as the gateway does once the station answered."""
        result = CommandResult(
            command_id=command.command_id,
            station_id=command.station_id,
            action=command.action,
            outcome=outcome,
            payload=payload,
            error_code=error_code,
        )
        await self.router.send(command.reply_to, result)

    async def _next(self) -> Message:
        return await asyncio.wait_for(anext(self.mailbox), WAIT_S)

    async def processed(self, event: Event[Any]) -> None:
        """Wait until sessions handled ``event`` and sent all it owed."""
        async with asyncio.timeout(WAIT_S):
            while True:
                async with self.service.factory() as session:
                    record = await session.get(ProcessedEvent, event.id)
                if record is not None and record.completed:
                    return
                await asyncio.sleep(0.01)

    async def station(self, station_id: str) -> Station | None:
        async with self.service.factory() as session:
            return await session.get(Station, station_id)

    def published(self, event_type: str | None = None) -> list[Envelope]:
        """Domain events on ``csms.station-status`` so far (of one type)."""
        events = [delivery.envelope for delivery in self.bus.records(STATION_STATUS)]
        return [e for e in events if event_type is None or e.type == event_type]


class HttpResponse(Protocol):
    """What a test reads of an HTTP response (httpx.Response has it)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


def assert_problem(response: HttpResponse, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status``; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status"} <= body.keys()
    return body


@asynccontextmanager
async def running_sessions(
    settings: SessionsSettings, bus: InMemoryBus, router: InMemoryRouter
) -> AsyncIterator[Harness]:
    """Run the service until the block ends; yield once it consumes."""
    engine = create_engine(settings.database_url, schemas=(SCHEMA, IDENTITY_SCHEMA, ACCESS_SCHEMA))
    mailbox = await router.open_mailbox(gateway_address(GATEWAY_ID))
    stopping = asyncio.Event()
    try:
        async with CommandClient(router, "sessions") as commands, asyncio.TaskGroup() as tasks:
            service = SessionsService(
                settings, bus=bus, router=router, commands=commands, engine=engine
            )
            tasks.create_task(service.run(stopping=stopping))
            await service.ready.wait()
            try:
                yield Harness(service, bus, router, mailbox)
            finally:
                stopping.set()
    finally:
        await engine.dispose()
