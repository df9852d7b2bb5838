"""A station's answer and its first status move one campaign row in overlapping
transactions (the runner and the consumer): on PostgreSQL the second waits for the first
and sees what it wrote, so a Downloading is never undone by an Accepted read after it."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from csms_core.db import create_engine, session_factory, transaction
from csms_firmware.campaigns import progress
from csms_firmware.campaigns.models import Campaign, CampaignStation
from csms_firmware.campaigns.plan import RolloutPlan
from csms_firmware.campaigns.states import CampaignState, StationState
from csms_firmware.db import SCHEMA, migrate_firmware
from csms_firmware.models import OutboxRecord
from tests.cluster import Infra, own_database

pytestmark = pytest.mark.integration

STATION, CAMPAIGN, REQUEST = "CP-LOCK", "c-lock", 7
HELD_S = 0.3  # how long the first transaction keeps the row before it commits


@pytest.fixture
async def engine(infra: Infra) -> AsyncIterator[AsyncEngine]:
    async with own_database(infra.database_url, "csms_fw") as url:
        engine = create_engine(url, [SCHEMA])
        try:
            await migrate_firmware(engine)
            async with transaction(session_factory(engine)) as session:
                session.add(
                    Campaign(
                        campaign_id=CAMPAIGN,
                        image_id="img",
                        target={"station_ids": [STATION]},
                        plan=RolloutPlan().model_dump(mode="json"),
                        state=CampaignState.RUNNING,
                    )
                )
                session.add(
                    CampaignStation(
                        campaign_id=CAMPAIGN,
                        station_id=STATION,
                        wave=0,
                        position=0,
                        state=StationState.DISPATCHING,
                        attempt=1,
                        request_id=REQUEST,
                    )
                )
            yield engine
        finally:
            await engine.dispose()


async def _answer_accepted(engine: AsyncEngine, hold_s: float = 0) -> bool:
    """The runner's transaction for an Accepted answer; True if it moved the row."""
    async with transaction(session_factory(engine)) as session:
        row = await progress.dispatched_row(session, CAMPAIGN, STATION, REQUEST)
        if row is None:
            return False
        plan = await progress.plan_of(session, CAMPAIGN)
        progress.record_answer(session, row, plan, "Accepted", None)
        await session.flush()
        await asyncio.sleep(hold_s)
        return True


async def _status_downloading(engine: AsyncEngine, hold_s: float = 0) -> bool:
    """The consumer's transaction for a Downloading status; True if the row changed."""
    async with transaction(session_factory(engine)) as session:
        changed = await progress.on_firmware_status(
            session, STATION, "Downloading", REQUEST, datetime.now(UTC)
        )
        await session.flush()
        await asyncio.sleep(hold_s)
        return changed


async def _states(engine: AsyncEngine) -> tuple[StationState, list[str]]:
    async with session_factory(engine)() as session:
        row = await session.get(CampaignStation, (CAMPAIGN, STATION))
        assert row is not None
        records = (await session.exec(select(OutboxRecord).order_by(col(OutboxRecord.id)))).all()
    moves = [
        r.envelope["data"]["state"]
        for r in records
        if r.envelope["type"] == "firmware.station.state_changed"
    ]
    return row.state, moves


async def test_an_answer_read_after_a_downloading_status_does_not_move_the_row_back(
    engine: AsyncEngine,
) -> None:
    status = asyncio.create_task(_status_downloading(engine, hold_s=HELD_S))
    await asyncio.sleep(HELD_S / 3)  # the status holds the row, not yet committed
    answered = await _answer_accepted(engine)
    assert await status is True
    assert answered is False  # it waited, then saw the row downloading
    assert await _states(engine) == (StationState.DOWNLOADING, ["downloading"])


async def test_a_status_read_after_the_answer_moves_the_row_on_from_sent(
    engine: AsyncEngine,
) -> None:
    answer = asyncio.create_task(_answer_accepted(engine, hold_s=HELD_S))
    await asyncio.sleep(HELD_S / 3)
    changed = await _status_downloading(engine)
    assert await answer is True
    assert changed is True
    assert await _states(engine) == (StationState.DOWNLOADING, ["sent", "downloading"])
