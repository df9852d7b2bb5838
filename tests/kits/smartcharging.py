"""Driving a real smart charging service on the embedded bus and router, as gateways would.

Stations are played by ``Stations``: it reads the gateway's mailbox and answers
every command with the status its test set for that station (or a CALLERROR, or
nothing at all), recording what it got. Nothing here is a mock of the bus, router
or database: they are the product's own embedded implementations.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

from csms_api.access import SCHEMA as ACCESS_SCHEMA
from csms_core.bus.memory import InMemoryBus
from csms_core.calls import alive, table_of
from csms_core.db import create_engine
from csms_core.envelope import Envelope
from csms_core.events import (
    ConnectionOpened,
    ConnectionOpenedData,
    InboundCall,
    OcppCall,
    SessionEnded,
    SessionEndedData,
    SessionStarted,
    SessionStartedData,
    SessionUpdated,
    SessionUpdatedData,
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
from csms_core.topics import CHARGING_LIMITS, OCPP_CONNECTIONS, OCPP_INBOUND, SESSIONS
from csms_ocpp import OcppVersion
from csms_smartcharging.db import SCHEMA
from csms_smartcharging.service import SmartChargingService
from csms_smartcharging.settings import SmartChargingSettings

GATEWAY_ID = "gw-test"
WAIT_S = 15.0  # only reached when something is wrong; a loaded CI machine needs the room
T = TypeVar("T")


def settings_for_tests(tmp_path: Path, **overrides: Any) -> SmartChargingSettings:
    values: dict[str, Any] = {
        "environment": Environment.DEVELOPMENT,
        "kafka_bootstrap": None,
        "redis_url": None,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}",
        "log_json": False,
        "allocation_tick_s": 3600.0,  # tests tick by hand
        "allocation_debounce_s": 0.0,
        "profile_timeout_s": 0.5,
    }
    return SmartChargingSettings(**(values | overrides))


@dataclass
class Stations:
    """The gateway's side: answers commands per station and remembers them."""

    router: InMemoryRouter
    mailbox: AsyncIterator[Message]
    # station id -> "Accepted" | "Rejected" | "error" | "silent"
    behaviour: dict[str, str] = field(default_factory=dict)
    commands: list[StationCommand] = field(default_factory=list)
    answers: list[CallAnswer] = field(default_factory=list)

    async def serve(self) -> None:
        async for message in self.mailbox:
            if isinstance(message, CallAnswer):
                self.answers.append(message)
            elif isinstance(message, StationCommand):
                self.commands.append(message)
                await self._reply(message)

    async def _reply(self, command: StationCommand) -> None:
        behaviour = self.behaviour.get(command.station_id, "Accepted")
        if behaviour == "silent":
            return
        payload = {"status": behaviour} if behaviour != "error" else None
        result = CommandResult(
            command_id=command.command_id,
            station_id=command.station_id,
            action=command.action,
            outcome=CommandOutcome.ERROR if behaviour == "error" else CommandOutcome.RESULT,
            payload=payload,
            error_code="InternalError" if behaviour == "error" else None,
        )
        await self.router.send(command.reply_to, result)

    def sent(
        self, station_id: str | None = None, action: str = "SetChargingProfile"
    ) -> list[StationCommand]:
        return [
            c
            for c in self.commands
            if c.action == action and (station_id is None or c.station_id == station_id)
        ]


@dataclass
class Harness:
    service: SmartChargingService
    bus: InMemoryBus
    router: InMemoryRouter
    stations: Stations
    versions: dict[str, OcppVersion] = field(default_factory=dict)

    async def connect(self, station_id: str, version: OcppVersion = OcppVersion.V201) -> None:
        self.versions[station_id] = version
        connection_id = uuid4().hex[:8]
        await self.router.register(
            Route(
                station_id=station_id,
                gateway_id=GATEWAY_ID,
                connection_id=connection_id,
                ocpp_version=version.number,
            ),
            ttl_s=600,
        )
        await self.bus.publish(
            OCPP_CONNECTIONS,
            ConnectionOpened(
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
            ),
        )

    def _version(self, station_id: str) -> str:
        return self.versions.get(station_id, OcppVersion.V201).number

    async def start_session(
        self, station_id: str, evse_id: int, session_id: str, transaction_id: str | None = None
    ) -> SessionStarted:
        event = SessionStarted(
            source="csms/sessions",
            station_id=station_id,
            ocpp_version=self._version(station_id),
            data=SessionStartedData(
                session_id=session_id,
                station_id=station_id,
                evse_id=evse_id,
                connector_id=1,
                transaction_id=transaction_id or f"tx-{session_id}",
                id_token=None,
                started_at=datetime.now(UTC),
                meter_start_wh=0,
            ),
        )
        await self.bus.publish(SESSIONS, event)
        return event

    async def update_session(
        self,
        station_id: str,
        evse_id: int,
        session_id: str,
        *,
        current_a: float | None = None,
        energy_wh: float | None = None,
    ) -> SessionUpdated:
        event = SessionUpdated(
            source="csms/sessions",
            station_id=station_id,
            ocpp_version=self._version(station_id),
            data=SessionUpdatedData(
                session_id=session_id,
                transaction_id=f"tx-{session_id}",
                evse_id=evse_id,
                energy_wh=energy_wh,
                power_w=None,
                current_a=current_a,
                updated_at=datetime.now(UTC),
            ),
        )
        await self.bus.publish(SESSIONS, event)
        return event

    async def end_session(self, station_id: str, evse_id: int, session_id: str) -> SessionEnded:
        event = SessionEnded(
            source="csms/sessions",
            station_id=station_id,
            ocpp_version=self._version(station_id),
            data=SessionEndedData(
                session_id=session_id,
                transaction_id=f"tx-{session_id}",
                evse_id=evse_id,
                ended_at=datetime.now(UTC),
                stop_reason="ev_disconnected",
                ocpp_stop_reason="EVDisconnected",
                energy_wh=1000,
                duration_s=60,
                meter_stop_wh=1000,
            ),
        )
        await self.bus.publish(SESSIONS, event)
        return event

    async def call(self, station_id: str, action: str, payload: dict[str, Any]) -> OcppCall:
        version = self.versions.get(station_id, OcppVersion.V201)
        # Routed as a gateway would, by the declarations of the parties alive.
        routing = table_of(alive(await self.router.declarations())).route(
            version.number, action, payload
        )
        event = OcppCall(
            source=f"csms/gateway/{GATEWAY_ID}",
            station_id=station_id,
            ocpp_version=version.number,
            data=InboundCall(
                action=action,
                message_id=uuid4().hex[:8],
                payload=payload,
                gateway_id=GATEWAY_ID,
                connection_id="conn",
                received_at=datetime.now(UTC),
                owner=routing.owner,
                contributors=list(routing.contributors),
            ),
        )
        await self.bus.publish(OCPP_INBOUND, event)
        return event

    def limit_events(self) -> list[Envelope]:
        """What went out on ``csms.charging-limits`` (as integrators read it)."""
        return [delivery.envelope for delivery in self.bus.records(CHARGING_LIMITS)]

    async def settle(self) -> None:
        """Wait until the consumer caught up, then run one allocation round by hand."""
        await eventually(self.caught_up)
        await asyncio.sleep(0.05)  # the consumer marks the site dirty right after its commit
        await self.service.allocator.drain()  # station-wide profiles of stations that connected
        await self.service.allocator.round()

    async def caught_up(self) -> bool:
        """Every event published so far is processed (its inbox row exists)."""
        from csms_smartcharging.charging.models import ProcessedEvent

        ids = [
            d.envelope.id
            for topic in (SESSIONS, OCPP_INBOUND, OCPP_CONNECTIONS)
            for d in self.bus.records(topic)
        ]
        async with self.service.factory() as session:
            for event_id in ids:
                if await session.get(ProcessedEvent, event_id) is None:
                    return False
        return True


async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float = WAIT_S) -> T:
    async with asyncio.timeout(timeout_s):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running_smartcharging(settings: SmartChargingSettings) -> AsyncIterator[Harness]:
    """Run the service on a fresh embedded bus and router until the block ends."""
    bus, router = InMemoryBus(), InMemoryRouter()
    engine = create_engine(settings.database_url, schemas=(SCHEMA, IDENTITY_SCHEMA, ACCESS_SCHEMA))
    stopping = asyncio.Event()
    async with router:
        mailbox = await router.open_mailbox(gateway_address(GATEWAY_ID))
        stations = Stations(router, mailbox)
        try:
            async with (
                CommandClient(router, "smartcharging") as commands,
                asyncio.TaskGroup() as tasks,
            ):
                service = SmartChargingService(
                    settings, bus=bus, router=router, commands=commands, engine=engine
                )
                serving = tasks.create_task(stations.serve())
                tasks.create_task(service.run(stopping=stopping))
                await service.ready.wait()
                try:
                    yield Harness(service, bus, router, stations)
                finally:
                    stopping.set()
                    serving.cancel()
        finally:
            await engine.dispose()
