"""At-least-once delivery: a replayed event (same envelope id) changes and sends nothing."""

import asyncio

import pytest

from csms_core.topics import OCPP_INBOUND
from csms_ocpp import OcppVersion
from csms_sessions.consumer import COMPLETION_BATCH, COMPLETION_MAX_WAIT_S, completion_due
from csms_sessions.inbox import ProcessedEvent
from csms_sessions.stations.models import ConnectorStatus
from tests.kits.sessions import Harness


@pytest.mark.parametrize("policy", ["accept"])
async def test_replayed_boot_is_answered_and_published_once(sessions: Harness) -> None:
    payload = {"chargePointVendor": "ACME", "chargePointModel": "W22"}
    first = await sessions.call("CP-1", "BootNotification", payload, event_id="boot-1")
    await sessions.answer()
    await sessions.processed(first)
    station = await sessions.station("CP-1")
    assert station is not None

    await sessions.publish(OCPP_INBOUND, first)  # the same envelope again
    await sessions.processed(first)
    marker = await sessions.call("CP-1", "Heartbeat", {})  # consumed after the replay
    await sessions.processed(marker)

    replayed = await sessions.station("CP-1")
    assert replayed is not None
    assert replayed.last_boot_at == station.last_boot_at
    assert len(sessions.published("station.booted")) == 1
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sessions.answer(), 0.2)


async def test_replayed_status_changes_nothing(sessions: Harness) -> None:
    payload = {
        "timestamp": "2025-01-01T10:00:00Z",
        "connectorStatus": "Occupied",
        "evseId": 1,
        "connectorId": 1,
    }
    first = await sessions.call(
        "CP-1", "StatusNotification", payload, version=OcppVersion.V201, event_id="status-1"
    )
    await sessions.processed(first)
    newer = await sessions.call(
        "CP-1",
        "StatusNotification",
        # The same timestamp: only de-duplication keeps the replay from applying again.
        payload | {"connectorStatus": "Faulted"},
        version=OcppVersion.V201,
    )
    await sessions.processed(newer)

    await sessions.publish(OCPP_INBOUND, first)
    marker = await sessions.call("CP-1", "Heartbeat", {})
    await sessions.processed(marker)

    async with sessions.service.factory() as session:
        stored = await session.get(ConnectorStatus, ("CP-1", 1, 1))
    assert stored is not None
    assert stored.ocpp_status == "Faulted"
    assert len(sessions.published("connector.status_changed")) == 2


@pytest.mark.parametrize("policy", ["accept"])
async def test_replay_after_crash_before_sending_sends_the_stored_answer(
    sessions: Harness,
) -> None:
    # A previous run committed the boot but crashed before answering and publishing.
    boot = await sessions.call(
        "CP-1", "BootNotification", {"chargePointVendor": "ACME", "chargePointModel": "W22"}
    )
    answer = await sessions.answer()
    await sessions.processed(boot)
    async with sessions.service.factory() as session, session.begin():
        record = await session.get(ProcessedEvent, boot.id)
        assert record is not None
        record.completed = False
    before = len(sessions.published())

    await sessions.publish(OCPP_INBOUND, boot)
    await sessions.processed(boot)

    assert await sessions.answer() == answer
    assert [e.id for e in sessions.published()[before:]] == [
        e.id for e in sessions.published()[:before]
    ]


@pytest.mark.parametrize(
    ("delivering", "waiting", "waited_s", "due"),
    [
        (False, 0, 5.0, False),  # nothing to mark
        (False, 1, 0.0, True),  # the deliveries paused: marked at once
        (True, 1, 0.0, False),  # a steady stream: the marks gather ...
        (True, COMPLETION_BATCH - 1, COMPLETION_MAX_WAIT_S - 0.01, False),
        (True, COMPLETION_BATCH, 0.0, True),  # ... until enough wait
        (True, 1, COMPLETION_MAX_WAIT_S, True),  # ... or the first waited long enough
    ],
)
def test_completion_marks_wait_for_a_pause_a_full_batch_or_the_longest_wait(
    delivering: bool, waiting: int, waited_s: float, due: bool
) -> None:
    assert completion_due(delivering, waiting, waited_s) is due


async def test_events_delivered_back_to_back_are_all_marked_completed(sessions: Harness) -> None:
    """The marks of a stream of deliveries are written once it pauses (every one)."""
    events = [await sessions.call(f"CP-{n}", "Heartbeat", {}) for n in range(30)]
    for event in events:
        await sessions.processed(event)
    async with sessions.service.factory() as session:
        for event in events:
            record = await session.get(ProcessedEvent, event.id)
            assert record is not None and record.completed
