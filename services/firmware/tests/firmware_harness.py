"""Driving a real firmware service on the embedded bus, router and SQLite, as gateways would.

``Stations`` reads the gateway's mailbox and answers every command with what its test
set (an answer per action, a CALLERROR, or silence), recording each command. Nothing
here is a mock of the bus, router or database: they are the product's own embedded ones.
"""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

import httpx

from csms_core.bus import Delivery
from csms_core.bus.memory import InMemoryBus
from csms_core.calls import table_of
from csms_core.db import create_engine
from csms_core.envelope import Envelope
from csms_core.events import (
    ConnectionClosed,
    ConnectionClosedData,
    ConnectionOpened,
    ConnectionOpenedData,
    InboundCall,
    InvalidEvent,
    OcppCall,
)
from csms_core.router import (
    CommandClient,
    CommandOutcome,
    CommandResult,
    Route,
    StationCommand,
)
from csms_core.router.base import Message, gateway_address
from csms_core.router.memory import InMemoryRouter
from csms_core.settings import Environment
from csms_core.topics import DEAD_LETTER, FIRMWARE, OCPP_CONNECTIONS, OCPP_INBOUND
from csms_firmware.app import create_app
from csms_firmware.db import SCHEMA
from csms_firmware.models import ProcessedEvent
from csms_firmware.service import FirmwareService
from csms_firmware.settings import FirmwareSettings
from csms_ocpp import OcppVersion
from tests.kits.api import bearer_headers

GATEWAY_ID = "gw-test"
WAIT_S = 10.0
T = TypeVar("T")
Answer = dict[str, Any] | str | None  # a payload, "error", or None for silence

DEFAULT_ANSWERS: dict[str, dict[str, Any]] = {
    "UpdateFirmware": {"status": "Accepted"},
    "SignedUpdateFirmware": {"status": "Accepted"},
    "TriggerMessage": {"status": "Accepted"},
    "ExtendedTriggerMessage": {"status": "Accepted"},
    "PublishFirmware": {"status": "Accepted"},
    "UnpublishFirmware": {"status": "Unpublished"},
    "GetLog": {"status": "Accepted", "filename": "log.tar.gz"},
    "GetDiagnostics": {"fileName": "diagnostics.zip"},
}


def settings_for_tests(tmp_path: Path, **overrides: Any) -> FirmwareSettings:
    values: dict[str, Any] = {
        "environment": Environment.DEVELOPMENT,
        "kafka_bootstrap": None,
        "redis_url": None,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}",
        "log_json": False,
        "store_dir": tmp_path / "store",
        "run_campaigns": False,  # tests plan by hand, one round at a time
        "command_timeout_s": 0.5,
        "public_url": "http://files.test",
    }
    return FirmwareSettings(**(values | overrides))


@dataclass
class Stations:
    """The gateway's side: answers commands per station and action, and remembers them."""

    router: InMemoryRouter
    mailbox: AsyncIterator[Message]
    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    commands: list[StationCommand] = field(default_factory=list)

    async def serve(self) -> None:
        async for message in self.mailbox:
            if isinstance(message, StationCommand):
                self.commands.append(message)
                await self._reply(message)

    def answer(self, station_id: str, action: str, answer: Answer) -> None:
        self.answers[(station_id, action)] = answer

    async def _reply(self, command: StationCommand) -> None:
        key = (command.station_id, command.action)
        answer = self.answers.get(key, DEFAULT_ANSWERS.get(command.action, {}))
        if answer is None:
            return
        if (
            command.action == "UpdateFirmware"
            and "location" in command.payload
            and key not in self.answers
        ):
            answer = {}  # 1.6 UpdateFirmware.conf is empty
        error = answer == "error" or answer == "NotImplemented"
        result = CommandResult(
            command_id=command.command_id,
            station_id=command.station_id,
            action=command.action,
            outcome=CommandOutcome.ERROR if error else CommandOutcome.RESULT,
            payload=None if error or isinstance(answer, str) else answer,
            error_code=(answer if answer == "NotImplemented" else "InternalError")
            if error
            else None,
        )
        await self.router.send(command.reply_to, result)

    def sent(
        self, station_id: str | None = None, action: str | None = None
    ) -> list[StationCommand]:
        return [
            c
            for c in self.commands
            if (action is None or c.action == action)
            and (station_id is None or c.station_id == station_id)
        ]


@dataclass
class Harness:
    service: FirmwareService
    bus: InMemoryBus
    router: InMemoryRouter
    stations: Stations
    api: httpx.AsyncClient
    # What stations use to fetch images and upload logs: no bearer token, only the URL's.
    station_http: httpx.AsyncClient
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

    async def disconnect(self, station_id: str) -> None:
        route = await self.router.lookup(station_id)
        assert route is not None
        await self.router.unregister(route)
        await self.bus.publish(
            OCPP_CONNECTIONS,
            ConnectionClosed(
                source=f"csms/gateway/{GATEWAY_ID}",
                station_id=station_id,
                ocpp_version=route.ocpp_version,
                data=ConnectionClosedData(
                    gateway_id=GATEWAY_ID,
                    connection_id=route.connection_id,
                    subprotocol=OcppVersion.from_number(route.ocpp_version).value,
                    close_code=1000,
                    reason="",
                ),
            ),
        )

    async def call(
        self,
        station_id: str,
        action: str,
        payload: dict[str, Any],
        *,
        received_at: datetime | None = None,
    ) -> OcppCall:
        """The station sends a CALL (the gateway received it at ``received_at``, now by
        default: an earlier time is a record the consumer reads late)."""
        version = self.versions.get(station_id, OcppVersion.V201)
        received = received_at or datetime.now(UTC)
        event = OcppCall(
            source=f"csms/gateway/{GATEWAY_ID}",
            time=received,
            station_id=station_id,
            ocpp_version=version.number,
            data=InboundCall(
                action=action,
                message_id=uuid4().hex[:8],
                payload=payload,
                gateway_id=GATEWAY_ID,
                connection_id="conn",
                received_at=received,
                # firmware decides none of them: routed with no other party alive
                owner=table_of([]).route(version.number, action, payload).owner,
            ),
        )
        await self.bus.publish(OCPP_INBOUND, event)
        return event

    async def boot(
        self,
        station_id: str,
        firmware: str = "1.0.0",
        *,
        vendor: str = "ACME",
        model: str = "AC22",
        version: OcppVersion | None = None,
    ) -> None:
        """Connect (if needed) and boot, reporting ``firmware``."""
        if version is not None or station_id not in self.versions:
            await self.connect(station_id, version or OcppVersion.V201)
        if self.versions[station_id].is_2x:
            payload: dict[str, Any] = {
                "reason": "PowerUp",
                "chargingStation": {
                    "vendorName": vendor,
                    "model": model,
                    "firmwareVersion": firmware,
                },
            }
        else:
            payload = {
                "chargePointVendor": vendor,
                "chargePointModel": model,
                "firmwareVersion": firmware,
            }
        await self.call(station_id, "BootNotification", payload)

    async def status(
        self,
        station_id: str,
        status: str,
        request_id: int | None = None,
        *,
        received_at: datetime | None = None,
    ) -> None:
        payload: dict[str, Any] = {"status": status}
        if request_id is not None:
            payload["requestId"] = request_id
        await self.call(station_id, "FirmwareStatusNotification", payload, received_at=received_at)

    async def settle(self) -> None:
        """Wait until the consumer has stored every event sent so far, and the events it
        stored are published (the outbox publishes on its own a moment later)."""
        await eventually(self._caught_up)
        await eventually(self._polled_empty)  # its position: caught up
        await self.service.position.write(self.service.factory)
        await self.service.outbox.flush()

    async def plan(self) -> None:
        """Consumer caught up, then one planning round and its commands answered."""
        await self.settle()
        await self.service.runner.round()
        await self.service.outbox.flush()

    async def _polled_empty(self) -> bool:
        position = self.service.position.current
        return position is not None and not position.busy

    async def _caught_up(self) -> bool:
        """Every record applied, or dead-lettered (a record that is no event: counted)."""
        records = [d for t in (OCPP_INBOUND, OCPP_CONNECTIONS) for d in self.bus.records(t)]
        letters = [DEAD_LETTER.decode(d).data for d in self.bus.records(DEAD_LETTER)]
        given_up = {letter.event.id for letter in letters if letter.event is not None}
        if sum(letter.event is None for letter in letters) < sum(not _is_event(d) for d in records):
            return False
        async with self.service.factory() as session:
            for delivery in filter(_is_event, records):
                event_id = delivery.envelope.id
                if event_id in given_up:
                    continue
                if await session.get(ProcessedEvent, event_id) is None:
                    return False
        return True

    def events(
        self, event_type: str | None = None, station_id: str | None = None
    ) -> list[Envelope]:
        return [
            d.envelope
            for d in self.bus.records(FIRMWARE)
            if (event_type is None or d.envelope.type == event_type)
            and (station_id is None or d.envelope.station_id == station_id)
        ]

    async def add_image(
        self,
        content: bytes = b"firmware-2.0.0" * 100,
        *,
        version: str = "2.0.0",
        models: str = "AC22",
        vendor: str = "ACME",
        **fields: str,
    ) -> dict[str, Any]:
        data = {
            "vendor": vendor,
            "models": models,
            "version": version,
            "sha256": hashlib.sha256(content).hexdigest(),
            **fields,
        }
        response = await self.api.post(
            "/firmware/images", data=data, files={"file": ("fw.bin", content)}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


def _is_event(delivery: Delivery) -> bool:
    try:
        return bool(delivery.envelope.id)
    except InvalidEvent:
        return False


async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float = WAIT_S) -> T:
    async with asyncio.timeout(timeout_s):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running_firmware(settings: FirmwareSettings) -> AsyncIterator[Harness]:
    """Run the service on a fresh embedded bus and router until the block ends."""
    bus, router = InMemoryBus(), InMemoryRouter()
    engine = create_engine(settings.database_url, schemas=(SCHEMA,))
    stopping = asyncio.Event()
    async with router:
        mailbox = await router.open_mailbox(gateway_address(GATEWAY_ID))
        stations = Stations(router, mailbox)
        try:
            async with (
                CommandClient(router, "firmware") as commands,
                asyncio.TaskGroup() as tasks,
            ):
                service = FirmwareService(
                    settings, bus=bus, router=router, commands=commands, engine=engine
                )
                serving = tasks.create_task(stations.serve())
                tasks.create_task(service.run(stopping=stopping))
                await service.ready.wait()
                transport = httpx.ASGITransport(app=create_app(service))
                async with (
                    httpx.AsyncClient(
                        transport=transport,
                        base_url="http://firmware.test/api/v1",
                        headers=await bearer_headers(engine),
                    ) as api,
                    httpx.AsyncClient(
                        transport=transport, base_url="http://files.test"
                    ) as station_http,
                ):
                    try:
                        yield Harness(service, bus, router, stations, api, station_http)
                    finally:
                        stopping.set()
                        serving.cancel()
        finally:
            await engine.dispose()
