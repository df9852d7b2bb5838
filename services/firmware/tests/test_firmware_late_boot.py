"""A station failed while its install may have been under way (silent for longer than the
silence timeout while it rebooted, offline) that comes back on the image's version: its
boot confirms it after all, and the counts and the failure threshold follow."""

from datetime import timedelta
from pathlib import Path

from firmware_harness import Harness, running_firmware, settings_for_tests
from test_firmware_campaigns import campaign, read, rows

from csms_core import topics
from csms_core.events import CampaignStationStateChanged, StationState
from csms_firmware.db import utc_now

TIMEOUT_S = 300


async def reboot_for_too_long(harness: Harness, station_ids: list[str]) -> None:
    """Each station installs, says it reboots, and stays offline past the silence timeout."""
    for station_id in station_ids:
        [update] = harness.stations.sent(station_id, "UpdateFirmware")
        for status in ("Downloading", "Downloaded", "Installing", "InstallRebooting"):
            await harness.status(station_id, status, update.payload["requestId"])
        await harness.disconnect(station_id)
    await harness.settle()
    await harness.service.runner.round(utc_now() + timedelta(seconds=TIMEOUT_S + 10))


async def come_back(harness: Harness, station_id: str, firmware: str) -> None:
    await harness.connect(station_id)
    await harness.boot(station_id, firmware)
    await harness.plan()


def station_events(harness: Harness, station_id: str) -> list[CampaignStationStateChanged]:
    decoded = [topics.FIRMWARE.decode(d) for d in harness.bus.records(topics.FIRMWARE)]
    return [
        e
        for e in decoded
        if isinstance(e, CampaignStationStateChanged) and e.data.station_id == station_id
    ]


async def test_tc_l_01_and_tc_044_1_a_late_boot_on_the_new_version_confirms_it(
    tmp_path: Path,
) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        for station_id in ("R", "P", "Q", "X", "Y", "Z", "V"):
            await harness.boot(station_id, "1.0.0")
        image = await harness.add_image()
        created = await campaign(
            harness,
            image["image_id"],
            target={"station_ids": ["R", "P", "Q", "X", "Y", "Z", "V"]},
            plan={
                "wave_size": 3,
                "retries": 0,
                "silence_timeout_s": TIMEOUT_S,
                "failure_threshold": {"count": 3},
            },
        )
        campaign_id = created["campaign_id"]
        await harness.plan()
        await reboot_for_too_long(harness, ["R", "P", "Q"])
        await harness.plan()
        found = await rows(harness, campaign_id)
        assert {found[s]["state"] for s in ("R", "P", "Q")} == {"failed"}
        assert "no word from the station" in found["R"]["reason"]
        view = await read(harness, campaign_id)
        assert (view["state"], view["state_reason"]) == ("paused", "failure threshold reached")

        # R's next boot reports the new version: done after all. The paused campaign stays
        # paused (only an operator resumes it), its counts follow.
        await come_back(harness, "R", "2.0.0")
        found = await rows(harness, campaign_id)
        assert found["R"]["state"] == "succeeded"
        assert found["R"]["reason"].startswith("confirmed by its boot after it had failed")
        view = await read(harness, campaign_id)
        assert view["state"] == "paused"
        assert (view["counts"]["succeeded"], view["counts"]["failed"]) == (1, 2)
        [confirmed] = [e for e in station_events(harness, "R") if e.data.firmware_version]
        assert confirmed.data.state is StationState.SUCCEEDED
        assert confirmed.data.firmware_version == "2.0.0"
        assert confirmed.data.campaign_id == campaign_id
        assert confirmed.data.reason == found["R"]["reason"]

        # Q comes back on the old version: the install did not take, it stays failed, and
        # a boot after that one no longer speaks for this campaign's attempt.
        await come_back(harness, "Q", "1.0.0")
        assert (await rows(harness, campaign_id))["Q"]["state"] == "failed"
        await harness.boot("Q", "2.0.0")
        await harness.plan()
        assert (await rows(harness, campaign_id))["Q"]["state"] == "failed"
        assert [e.data.state for e in station_events(harness, "Q")][-1] is StationState.FAILED

        resumed = await harness.api.post(f"/firmware/campaigns/{campaign_id}/resume")
        assert resumed.status_code == 200, resumed.text
        # P's confirmation comes after the resume: its failure, counted before the resume,
        # leaves the threshold's count since the resume as it was.
        await come_back(harness, "P", "2.0.0")
        assert (await rows(harness, campaign_id))["P"]["state"] == "succeeded"
        assert [c.station_id for c in harness.stations.sent(action="UpdateFirmware")][3:] == [
            "X",
            "Y",
            "Z",
        ]
        for station_id in ("X", "Y", "Z"):
            [update] = harness.stations.sent(station_id, "UpdateFirmware")
            await harness.status(station_id, "DownloadFailed", update.payload["requestId"])
        await harness.plan()
        view = await read(harness, campaign_id)
        assert (view["state"], view["state_reason"]) == ("paused", "failure threshold reached")
        assert (view["counts"]["succeeded"], view["counts"]["failed"]) == (2, 4)
        assert harness.stations.sent("V") == []  # the last wave waits for the operator


async def test_tc_l_01_a_retry_waiting_after_a_silent_reboot_is_confirmed_not_skipped(
    tmp_path: Path,
) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("W", "1.0.0")
        image = await harness.add_image()
        created = await campaign(
            harness,
            image["image_id"],
            target={"station_ids": ["W"]},
            plan={"retries": 1, "retry_delay_s": 3600, "silence_timeout_s": TIMEOUT_S},
        )
        await harness.plan()
        await reboot_for_too_long(harness, ["W"])
        assert (await rows(harness, created["campaign_id"]))["W"]["state"] == "pending"
        await come_back(harness, "W", "2.0.0")
        row = (await rows(harness, created["campaign_id"]))["W"]
        assert (row["state"], row["attempt"]) == ("succeeded", 1)
        assert (await read(harness, created["campaign_id"]))["state"] == "completed"
