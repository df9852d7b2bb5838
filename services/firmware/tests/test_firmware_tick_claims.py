"""A campaign round claims the station rows it acts on (``FOR UPDATE SKIP LOCKED``, in the
transaction that stores its decision), on PostgreSQL: two replicas' rounds at once send each
station its update once, and a round never undoes what a transaction holding a row (the
consumer recording a status) wrote; it leaves that row to the next round."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from firmware_harness import GATEWAY_ID, Stations, settings_for_tests
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from csms_core.bus.memory import InMemoryBus
from csms_core.db import create_engine, session_factory, transaction
from csms_core.router import CommandClient, Route
from csms_core.router.base import gateway_address
from csms_core.router.memory import InMemoryRouter
from csms_firmware.campaigns import progress
from csms_firmware.campaigns.models import Campaign, CampaignStation
from csms_firmware.campaigns.plan import RolloutPlan
from csms_firmware.campaigns.runner import CampaignRunner
from csms_firmware.campaigns.states import CampaignState, StationState
from csms_firmware.catalogue.models import FirmwareImage
from csms_firmware.commands import StationCommands
from csms_firmware.db import SCHEMA, migrate_firmware
from csms_firmware.models import OutboxRecord, StationRequest
from csms_firmware.outbox import OutboxPublisher
from csms_firmware.settings import FirmwareSettings
from csms_firmware.stations.models import FirmwareStation
from csms_ocpp import OcppVersion
from tests.cluster import Infra, own_database

pytestmark = pytest.mark.integration

CAMPAIGN, IMAGE = "c-claims", "img-claims"
STATIONS = [f"CP-CLAIM-{n:02d}" for n in range(30)]
QUIET = "CP-CLAIM-QUIET"  # sent its update long ago, never heard from since
REQUEST = 41
HELD_S = 0.3  # how long the consumer's transaction keeps the row before it commits
PLAN = RolloutPlan(
    max_concurrent_downloads=100,
    failure_threshold=None,
    retries=3,
    retry_delay_s=0,
    silence_timeout_s=60,
)


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    settings: FirmwareSettings


@pytest.fixture
async def database(infra: Infra, tmp_path: Path) -> AsyncIterator[Database]:
    async with own_database(infra.database_url, "csms_fwclaim") as url:
        engine = create_engine(url, [SCHEMA])
        try:
            await migrate_firmware(engine)
            async with transaction(session_factory(engine)) as session:
                session.add(
                    FirmwareImage(
                        image_id=IMAGE,
                        vendor="ACME",
                        models=["AC22"],
                        version="2.0.0",
                        filename="fw.bin",
                        size=4,
                        sha256="0" * 64,
                        md5="0" * 32,
                    )
                )
                session.add(
                    Campaign(
                        campaign_id=CAMPAIGN,
                        image_id=IMAGE,
                        target={"station_ids": [*STATIONS, QUIET]},
                        plan=PLAN.model_dump(mode="json"),
                        state=CampaignState.RUNNING,
                    )
                )
                for station_id in [*STATIONS, QUIET]:
                    session.add(
                        FirmwareStation(
                            station_id=station_id,
                            vendor="ACME",
                            model="AC22",
                            firmware_version="1.0.0",
                            ocpp_version="2.0.1",
                            online=True,
                        )
                    )
            yield Database(url, engine, settings_for_tests(tmp_path, database_url=url))
        finally:
            await engine.dispose()


async def add_rows(engine: AsyncEngine, rows: list[CampaignStation]) -> None:
    async with transaction(session_factory(engine)) as session:
        session.add_all(rows)


def pending(station_id: str, position: int) -> CampaignStation:
    return CampaignStation(
        campaign_id=CAMPAIGN,
        station_id=station_id,
        wave=0,
        position=position,
        state=StationState.PENDING,
    )


@asynccontextmanager
async def replicas(
    database: Database, count: int
) -> AsyncIterator[tuple[list[CampaignRunner], Stations]]:
    """``count`` replicas' campaign runners, each on an engine of its own, sending through
    one embedded router to stations that answer every command (the harness's)."""
    engines = [database.engine] + [create_engine(database.url, [SCHEMA]) for _ in range(count - 1)]
    router = InMemoryRouter()
    try:
        async with router, CommandClient(router, "firmware") as client:
            mailbox = await router.open_mailbox(gateway_address(GATEWAY_ID))
            stations = Stations(router, mailbox)
            for station_id in [*STATIONS, QUIET]:
                route = Route(
                    station_id=station_id,
                    gateway_id=GATEWAY_ID,
                    connection_id="conn",
                    ocpp_version=OcppVersion.V201.number,
                )
                await router.register(route, ttl_s=600)
            commands = StationCommands(router, client, timeout_s=5, parallelism=100)
            runners = [
                CampaignRunner(
                    database.settings, engine, commands, OutboxPublisher(InMemoryBus(), engine)
                )
                for engine in engines
            ]
            serving = asyncio.create_task(stations.serve())
            try:
                yield runners, stations
            finally:
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
    finally:
        for engine in engines[1:]:
            await engine.dispose()


async def test_two_replicas_rounds_at_once_send_each_station_its_update_once(
    database: Database,
) -> None:
    await add_rows(database.engine, [pending(s, n) for n, s in enumerate(STATIONS)])
    async with replicas(database, 2) as (runners, stations):
        for _ in range(3):
            await asyncio.gather(*(runner.tick(CAMPAIGN) for runner in runners for _ in range(2)))
        sent = Counter(command.station_id for command in stations.sent(action="UpdateFirmware"))
    assert sent == dict.fromkeys(STATIONS, 1)
    async with session_factory(database.engine)() as session:
        requests = Counter((await session.exec(select(StationRequest.station_id))).all())
        rows = (await session.exec(select(CampaignStation))).all()
    assert requests == dict.fromkeys(STATIONS, 1)
    assert {row.state for row in rows} == {StationState.SENT}


async def _status_downloading(engine: AsyncEngine, held: asyncio.Event) -> bool:
    """The consumer's transaction for the quiet station's Downloading: it holds the row
    (moved, not yet committed) until ``held`` is set."""
    async with transaction(session_factory(engine)) as session:
        changed = await progress.on_firmware_status(
            session, QUIET, "Downloading", REQUEST, datetime.now(UTC)
        )
        await session.flush()
        await held.wait()
        return changed


async def test_a_round_leaves_a_row_the_consumer_holds_to_the_next_round(
    database: Database,
) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    quiet = CampaignStation(
        campaign_id=CAMPAIGN,
        station_id=QUIET,
        wave=0,
        position=0,
        state=StationState.SENT,
        attempt=1,
        request_id=REQUEST,
        ocpp_status="Accepted",
        dispatched_at=long_ago,
        last_activity_at=long_ago,  # silent for an hour: the round would fail the attempt
    )
    await add_rows(database.engine, [quiet])
    async with replicas(database, 1) as ([runner], stations):
        release = asyncio.Event()
        status = asyncio.create_task(_status_downloading(database.engine, release))
        async with asyncio.timeout(10):
            while not await _locked(database.engine):  # the status holds the row
                await asyncio.sleep(0.01)
        round_ = asyncio.create_task(runner.tick(CAMPAIGN))
        await asyncio.wait({round_}, timeout=HELD_S)  # done at once: it waits for nothing
        release.set()
        assert await status is True
        wake_at = await round_
        await runner.tick(CAMPAIGN)  # it sees the station downloading: nothing to do
        assert stations.sent(action="UpdateFirmware") == []
    async with session_factory(database.engine)() as session:
        row = await session.get(CampaignStation, (CAMPAIGN, QUIET))
        records = (await session.exec(select(OutboxRecord).order_by(col(OutboxRecord.id)))).all()
    assert row is not None
    assert (row.state, row.attempt) == (StationState.DOWNLOADING, 1)
    moves = [
        r.envelope["data"]["state"]
        for r in records
        if r.envelope["type"] == "firmware.station.state_changed"
    ]
    assert moves == ["downloading"]  # never "pending" (a silent attempt), then sent again
    assert wake_at is not None  # the next round at once, for the row it left


async def _locked(engine: AsyncEngine) -> bool:
    """Whether another transaction holds the quiet station's row."""
    async with transaction(session_factory(engine)) as session:
        free = (
            await session.exec(
                select(CampaignStation.station_id)
                .where(CampaignStation.station_id == QUIET)
                .with_for_update(skip_locked=True)
            )
        ).first()
    return free is None
