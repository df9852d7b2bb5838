"""A real billing service on the product's embedded bus, router and SQLite, for tests.

``BillingHarness.publish`` plays the sessions service: it puts the domain events
billing consumes on their topics; ``cdrs`` reads what billing published.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from csms_api.access import SCHEMA as ACCESS_SCHEMA
from csms_billing.db import SCHEMA
from csms_billing.inbox import ProcessedEvent
from csms_billing.service import BillingService
from csms_billing.settings import BillingSettings
from csms_core.bus.memory import InMemoryBus
from csms_core.db import create_engine
from csms_core.envelope import Envelope, Event
from csms_core.events import InboundCall, OcppCall
from csms_core.identity import SCHEMA as IDENTITY_SCHEMA
from csms_core.router import (
    CallAnswer,
    CommandClient,
    CommandOutcome,
    CommandResult,
    Route,
    StationCommand,
)
from csms_core.router.base import gateway_address
from csms_core.router.memory import InMemoryRouter
from csms_core.settings import Environment
from csms_core.topics import CDRS, METER_VALUES, OCPP_INBOUND, SESSIONS
from tests.waiting import eventually

WAIT_S = 15.0  # only reached when something is wrong; a loaded CI machine needs the room
GATEWAY_ID = "gw-test"


def settings_for_tests(tmp_path: Path, **overrides: Any) -> BillingSettings:
    values: dict[str, Any] = {
        "environment": Environment.DEVELOPMENT,
        "kafka_bootstrap": None,
        "redis_url": None,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}",
        "log_json": False,
        "time_zone": "Europe/Amsterdam",
        "cdr_settle_s": 0.05,
    }
    return BillingSettings(**(values | overrides))


def ocpp_time(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# The sessions service's events as it writes them (every field of their csms_core.events
# models), for ``BillingHarness.publish``.


def started(
    session_id: str,
    station_id: str,
    at: datetime,
    *,
    transaction_id: str | None = None,
    meter_start_wh: float | None = 0.0,
    token: str | None = None,
    token_type: str = "ISO14443",  # noqa: S107 - an OCPP IdTokenEnumType, no secret
    group_id: str | None = None,
    evse_id: int = 1,
) -> dict[str, Any]:
    """``session.started``'s data."""
    id_token: dict[str, str] | None = None
    if token is not None:
        id_token = {"id_token": token, "type": token_type}
        if group_id is not None:
            id_token["group_id"] = group_id
    return {
        "session_id": session_id,
        "transaction_id": transaction_id or session_id,
        "evse_id": evse_id,
        "station_id": station_id,
        "connector_id": 1,
        "id_token": id_token,
        "started_at": ocpp_time(at),
        "meter_start_wh": meter_start_wh,
    }


def ended(
    session_id: str,
    started_at: datetime,
    ended_at: datetime,
    *,
    transaction_id: str | None = None,
    meter_start_wh: float | None = 0.0,
    meter_stop_wh: float | None = None,
    energy_wh: float | None = None,
    stop_reason: str = "local",
    final: bool = True,
    evse_id: int = 1,
) -> dict[str, Any]:
    """``session.ended`` / ``session.finalized``'s data; the energy stop minus start unless
    given."""
    if energy_wh is None and meter_start_wh is not None and meter_stop_wh is not None:
        energy_wh = meter_stop_wh - meter_start_wh
    return {
        "session_id": session_id,
        "transaction_id": transaction_id or session_id,
        "evse_id": evse_id,
        "started_at": ocpp_time(started_at),
        "ended_at": ocpp_time(ended_at),
        "stop_reason": stop_reason,
        "ocpp_stop_reason": None,
        "energy_wh": energy_wh,
        "duration_s": max(0.0, (ended_at - started_at).total_seconds()),
        "meter_start_wh": meter_start_wh,
        "meter_stop_wh": meter_stop_wh,
        "final": final,
        "flags": [],
    }


def register(at: datetime, wh: float, context: str = "Sample.Periodic") -> dict[str, Any]:
    """An outlet import-register sample of a ``meter.values``."""
    return {
        "timestamp": ocpp_time(at),
        "measurand": "Energy.Active.Import.Register",
        "value": wh,
        "unit": "Wh",
        "context": context,
    }


def meter_values(
    session_id: str,
    *samples: dict[str, Any],
    transaction_id: str | None = None,
    late: bool = False,
    evse_id: int = 1,
) -> dict[str, Any]:
    """``meter.values``'s data: the session's samples (``late``: sent after its end)."""
    return {
        "evse_id": evse_id,
        "samples": list(samples),
        "session_id": session_id,
        "transaction_id": transaction_id or session_id,
        "late": late,
    }


@dataclass
class Stations:
    """The gateway's side: every command billing sends is recorded and answered ``{}``
    (what CostUpdated, SetDefaultTariff and the like answer carries no decision), or what
    ``answers`` says, or the CALLERROR code ``errors`` names for the action."""

    router: InMemoryRouter
    commands: list[StationCommand] = field(default_factory=list)
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    call_answers: list[CallAnswer] = field(default_factory=list)

    async def connect(self, station_id: str, version: str = "2.0.1") -> None:
        route = Route(
            station_id=station_id,
            gateway_id=GATEWAY_ID,
            connection_id=uuid4().hex[:8],
            ocpp_version=version,
        )
        await self.router.register(route, ttl_s=600)

    async def serve(self) -> None:
        async for message in await self.router.open_mailbox(gateway_address(GATEWAY_ID)):
            if isinstance(message, CallAnswer):
                self.call_answers.append(message)  # billing's answer to a station's CALL
            elif isinstance(message, StationCommand):
                self.commands.append(message)
                error = self.errors.get(message.action)
                result = CommandResult(
                    command_id=message.command_id,
                    station_id=message.station_id,
                    action=message.action,
                    outcome=CommandOutcome.RESULT if error is None else CommandOutcome.ERROR,
                    payload=None if error else self.answers.get(message.action, {}),
                    error_code=error,
                )
                await self.router.send(message.reply_to, result)

    def sent(self, action: str, station_id: str | None = None) -> list[dict[str, Any]]:
        return [
            c.payload
            for c in self.commands
            if c.action == action and station_id in (None, c.station_id)
        ]


@dataclass
class BillingHarness:
    service: BillingService
    bus: InMemoryBus
    router: InMemoryRouter
    stations: Stations
    published: list[str] = field(default_factory=list)

    async def publish(
        self,
        event_type: str,
        station_id: str,
        data: dict[str, Any],
        *,
        version: str = "2.0.1",
    ) -> Event[Any]:
        """An event of the sessions service, read by its model in ``csms_core.events``
        first (as the sessions service writes it: a test that leaves out a field fails
        here, not in billing)."""
        record = {
            "id": uuid4().hex,
            "type": event_type,
            "source": "csms/sessions",
            "station_id": station_id,
            "ocpp_version": version,
            "data": data,
        }
        event: Event[Any]
        if event_type == "meter.values":
            event = METER_VALUES.parse_object(record)
            await self.bus.publish(METER_VALUES, event)
        else:
            event = SESSIONS.parse_object(record)
            await self.bus.publish(SESSIONS, event)
        self.published.append(event.id)
        return event

    async def publish_as_written(self, event_type: str, station_id: str, data: Any) -> Envelope:
        """A record nobody checked (a bad one, for the dead-letter path)."""
        envelope = Envelope(
            id=uuid4().hex,
            type=event_type,
            source="csms/sessions",
            station_id=station_id,
            ocpp_version="2.0.1",
            data=data,
        )
        topic = METER_VALUES if event_type == "meter.values" else SESSIONS
        await self.bus.append(topic, station_id, envelope.to_bytes())
        return envelope

    async def call(
        self,
        station_id: str,
        action: str,
        payload: dict[str, Any],
        *,
        version: str = "2.1",
        track: bool = True,
        owner: str = "gateway",
        contributors: tuple[str, ...] = (),
    ) -> OcppCall:
        """A station CALL on ocpp.inbound, as the gateway records it (``track``: billing
        reads it, and ``caught_up`` waits for it)."""
        envelope = OcppCall(
            id=uuid4().hex,
            source=f"csms/gateway/{GATEWAY_ID}",
            station_id=station_id,
            ocpp_version=version,
            data=InboundCall(
                action=action,
                message_id=uuid4().hex[:8],
                payload=payload,
                received_at=datetime.now(UTC),
                owner=owner,
                contributors=list(contributors),
                gateway_id=GATEWAY_ID,
                connection_id="c-1",
            ),
        )
        await self.bus.publish(OCPP_INBOUND, envelope)
        if track:
            self.published.append(envelope.id)
        return envelope

    def cdrs(self) -> list[dict[str, Any]]:
        """The CDRs billing published on csms.cdrs, in order."""
        return [d.envelope.data["cdr"] for d in self.bus.records(CDRS)]

    async def wait_for_cdrs(self, count: int) -> list[dict[str, Any]]:
        async def enough() -> list[dict[str, Any]] | None:
            found = self.cdrs()
            return found if len(found) >= count else None

        return await eventually(enough, timeout_s=WAIT_S, interval_s=0.02)

    async def caught_up(self) -> None:
        """Every published event is in billing's inbox."""

        async def done() -> bool:
            async with self.service.factory() as session:
                return all([await session.get(ProcessedEvent, e) for e in self.published])

        await eventually(done, timeout_s=WAIT_S, interval_s=0.02)


@asynccontextmanager
async def running_billing(tmp_path: Path, **overrides: Any) -> AsyncIterator[BillingHarness]:
    settings = settings_for_tests(tmp_path, **overrides)
    engine = create_engine(settings.database_url, [SCHEMA, IDENTITY_SCHEMA, ACCESS_SCHEMA])
    bus, router = InMemoryBus(), InMemoryRouter()
    stopping = asyncio.Event()
    try:
        async with router, bus, CommandClient(router, "billing") as commands:
            service = BillingService(
                settings, bus=bus, router=router, commands=commands, engine=engine
            )
            stations = Stations(router)
            async with asyncio.TaskGroup() as tasks:
                running = tasks.create_task(service.run(stopping=stopping))
                station_side = tasks.create_task(stations.serve())
                await asyncio.wait_for(service.ready.wait(), WAIT_S)
                try:
                    yield BillingHarness(service, bus, router, stations)
                finally:
                    stopping.set()
                    # A call to a station still in flight gets its answer (not its timeout).
                    await asyncio.wait([running], timeout=WAIT_S)
                    station_side.cancel()
    finally:
        await engine.dispose()
