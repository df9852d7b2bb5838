"""Silence is judged by the stations' own messages and by how far the consumer has read:
a consumer that lags never fails a station for a silence that is not real."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from firmware_harness import Harness, running_firmware, settings_for_tests
from test_firmware_campaigns import campaign, rows

from csms_core.bus.memory import InMemoryBus
from csms_core.db import transaction
from csms_core.events import InboundCall, OcppCall
from csms_core.topics import OCPP_INBOUND
from csms_firmware.db import utc_now
from csms_firmware.position import (
    ConsumerPosition,
    Position,
    PositionedBus,
    ReadPosition,
    lag,
)
from csms_ocpp import OcppVersion

TIMEOUT_S = 300


async def dispatched(harness: Harness, station_id: str) -> tuple[str, int]:
    """A campaign for the station, its UpdateFirmware sent; (campaign id, request id)."""
    await harness.boot(station_id, "1.0.0")
    image = await harness.add_image()
    created = await campaign(
        harness,
        image["image_id"],
        target={"station_ids": [station_id]},
        plan={"silence_timeout_s": TIMEOUT_S, "retries": 0},
    )
    await harness.plan()
    [update] = harness.stations.sent(station_id, "UpdateFirmware")
    return created["campaign_id"], update.payload["requestId"]


async def state_of(harness: Harness, campaign_id: str, station_id: str) -> dict[str, Any]:
    return (await rows(harness, campaign_id))[station_id]


async def test_a_lagging_consumer_fails_nobody_for_silence(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        campaign_id, _ = await dispatched(harness, "Q")
        dispatched_at = utc_now()
        # Another replica's consumer still applies records sent just after the dispatch.
        async with transaction(harness.service.factory) as session:
            session.add(
                ConsumerPosition(
                    member_id="other-replica",
                    read_until=dispatched_at + timedelta(seconds=5),
                    busy=True,
                    measured_at=utc_now(),
                )
            )
        later = dispatched_at + timedelta(seconds=TIMEOUT_S + 100)
        await harness.service.runner.round(later)
        assert (await state_of(harness, campaign_id, "Q"))["state"] == "sent"
        assert harness.stations.sent("Q", "TriggerMessage") == []  # not even asked
        async with transaction(harness.service.factory) as session:
            behind = await session.get(ConsumerPosition, "other-replica")
            assert behind is not None
            behind.busy, behind.read_until = False, utc_now()
            session.add(behind)
        await harness.service.runner.round(later)
        row = await state_of(harness, campaign_id, "Q")
        assert row["state"] == "failed" and "no word from the station" in row["reason"]


async def test_silence_is_counted_from_when_the_station_spoke(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        campaign_id, request_id = await dispatched(harness, "L")
        now = utc_now()  # OCPP times carry milliseconds
        spoke = now.replace(microsecond=now.microsecond // 1000 * 1000) + timedelta(seconds=250)
        # Read now, sent 250 s after the dispatch: silence runs from then, not from now.
        await harness.status("L", "Downloading", request_id, received_at=spoke)
        await harness.settle()
        await harness.service.runner.round(spoke + timedelta(seconds=TIMEOUT_S - 10))
        assert (await state_of(harness, campaign_id, "L"))["state"] == "downloading"
        [reported] = harness.events("firmware.status.reported", "L")
        assert datetime.fromisoformat(reported.data["reported_at"]) == spoke
        await harness.service.runner.round(spoke + timedelta(seconds=TIMEOUT_S + 10))
        assert (await state_of(harness, campaign_id, "L"))["state"] == "failed"


async def test_the_position_follows_the_polls() -> None:
    bus = InMemoryBus()
    position = ReadPosition()
    sent = utc_now() - timedelta(seconds=90)
    async with PositionedBus(bus, position).consumer([OCPP_INBOUND], "g") as consumer:
        for offset in (0, 30):
            await bus.publish(OCPP_INBOUND, call(sent + timedelta(seconds=offset)))
        polled = await consumer.next_batch()
        assert len(polled) == 2
        assert position.current is not None
        assert position.current.busy and position.current.read_until == sent
        assert position.current.lag(utc_now()) >= timedelta(seconds=90)
        assert await consumer.next_batch(timeout_s=0.01) == []
        assert not position.current.busy
        assert position.current.lag(utc_now() + timedelta(hours=1)) == timedelta(0)


async def test_lag_is_the_live_member_furthest_behind(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.settle()
        now = utc_now()
        async with transaction(harness.service.factory) as session:
            for member, read_until, busy, measured_at in (
                ("idle", now, False, now),
                ("behind", now - timedelta(seconds=40), True, now),
                ("further", now - timedelta(seconds=70), True, now),
                ("gone", now - timedelta(hours=1), True, now - timedelta(minutes=5)),
            ):
                session.add(
                    ConsumerPosition(
                        member_id=member, read_until=read_until, busy=busy, measured_at=measured_at
                    )
                )
        async with harness.service.factory() as session:
            assert await lag(session, now) == timedelta(seconds=70)
            # Planning a minute ahead: members still busy are a minute further behind.
            ahead = now + timedelta(seconds=60)
            assert await lag(session, ahead, wall=now) == timedelta(seconds=130)
        assert Position(now, busy=False, measured_at=now).lag(ahead) == timedelta(0)


def call(received_at: datetime) -> OcppCall:
    return OcppCall(
        source="csms/gateway/gw",
        time=received_at,
        station_id="CP-1",
        ocpp_version="2.0.1",
        data=InboundCall(
            action="Heartbeat",
            message_id="1",
            payload={},
            gateway_id="gw",
            connection_id="c",
            received_at=received_at,
            owner="gateway",
        ),
    )


async def test_a_busy_slow_station_repeating_its_status_is_not_failed(tmp_path: Path) -> None:
    """A 1.6 station still downloading answers each trigger with the "Downloading" it sent
    before (no request id to tell them apart): a repeat, not recorded or reported again,
    but word from the station all the same."""
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("S", "1.0.0", version=OcppVersion.V16)
        image = await harness.add_image()
        created = await campaign(
            harness,
            image["image_id"],
            target={"station_ids": ["S"]},
            plan={"silence_timeout_s": TIMEOUT_S, "retries": 0},
        )
        campaign_id = created["campaign_id"]
        await harness.plan()
        now = utc_now()  # OCPP times carry milliseconds
        start = now.replace(microsecond=now.microsecond // 1000 * 1000)
        await harness.status("S", "Downloading", received_at=start)
        await harness.settle()
        for lap in range(1, 4):  # three timeouts' worth of a slow download
            spoke = start + timedelta(seconds=lap * TIMEOUT_S * 0.9)
            await harness.service.runner.round(spoke - timedelta(seconds=1))
            assert len(harness.stations.sent("S", "TriggerMessage")) == lap
            await harness.status("S", "Downloading", received_at=spoke)
            await harness.settle()
            row = await state_of(harness, campaign_id, "S")
            assert row["state"] == "downloading", row
            assert datetime.fromisoformat(row["last_activity_at"]) == spoke
        assert len(harness.events("firmware.status.reported", "S")) == 1
        # Silent at last: failed once the whole timeout passed since it last spoke.
        await harness.service.runner.round(spoke + timedelta(seconds=TIMEOUT_S + 1))
        row = await state_of(harness, campaign_id, "S")
        assert row["state"] == "failed" and "no word from the station" in row["reason"]
