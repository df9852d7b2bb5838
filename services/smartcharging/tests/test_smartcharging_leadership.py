"""Leadership: one replica of a shared PostgreSQL leads and hears what the others saw."""

import asyncio
from pathlib import Path

from sqlalchemy import text

from csms_core.db import create_engine
from csms_smartcharging.charging.leadership import DIRTY_CHANNEL, Leadership
from tests.kits.smartcharging import eventually


async def test_the_only_replica_on_sqlite_always_leads(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'csms.db'}")
    try:
        leadership = Leadership(engine)
        assert not leadership.shared
        assert leadership.leads
        assert await leadership.check()
        await leadership.close()
    finally:
        await engine.dispose()


async def test_one_replica_leads_and_hears_what_a_follower_saw(postgres_url: str) -> None:
    engines = [create_engine(postgres_url), create_engine(postgres_url)]
    leader, follower = Leadership(engines[0]), Leadership(engines[1])
    heard: list[tuple[str, str]] = []
    leader.on_change(lambda site_id, reason: heard.append((site_id, reason)))
    stopping = asyncio.Event()
    forwarding = asyncio.create_task(follower.forward(stopping))
    try:
        assert not leader.leads  # not before its first check
        assert await leader.check()
        assert leader.leads
        assert not await follower.check()  # the lock is taken
        assert not follower.leads

        # Changes of one site fold into one notification: the latest reason names it.
        follower.tell_leader("depot", "limit_changed")
        follower.tell_leader("depot", "station_changed")
        follower.tell_leader("yard", "session_started")

        async def both() -> bool:
            await leader.check()  # ends its idle transaction, as the allocation loop does
            return len(heard) >= 2

        await eventually(both)
        assert sorted(heard) == [("depot", "station_changed"), ("yard", "session_started")]
        assert await leader.check()  # a leader stays one

        # The leader goes (its connection, and with it the lock): the follower takes over.
        await leader.close()
        await engines[0].dispose()
        assert await follower.check()
        assert follower.leads
    finally:
        stopping.set()
        forwarding.cancel()
        await asyncio.gather(forwarding, return_exceptions=True)
        await follower.close()
        for engine in engines:
            await engine.dispose()


async def test_a_leader_forwards_nothing_to_itself(postgres_url: str) -> None:
    """What the leader sees it allocates itself: nothing goes over NOTIFY, not even to it."""
    engine = create_engine(postgres_url)
    leadership = Leadership(engine)
    heard: list[tuple[str, str]] = []
    leadership.on_change(lambda site_id, reason: heard.append((site_id, reason)))
    stopping = asyncio.Event()
    forwarding = asyncio.create_task(leadership.forward(stopping))
    try:
        assert await leadership.check()
        leadership.tell_leader("depot", "limit_changed")
        # A notification of another replica, sent after ours would have been, arrives alone.
        async with engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": DIRTY_CHANNEL, "payload": "yard"},
            )

        async def any_heard() -> bool:
            await leadership.check()
            return bool(heard)

        await eventually(any_heard)
        assert heard == [("yard", "changed")]  # no reason given: "changed"
    finally:
        stopping.set()
        forwarding.cancel()
        await asyncio.gather(forwarding, return_exceptions=True)
        await leadership.close()
        await engine.dispose()
