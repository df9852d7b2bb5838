"""The typed contract of csms.firmware and of what the service reads from ocpp.inbound:
the models in libs match the AsyncAPI document, what the service publishes decodes with
them, and a record the service cannot read is dead-lettered with the reason, never lost
in silence nor stopping the consumer."""

from pathlib import Path
from typing import Any

import yaml
from firmware_harness import eventually, running_firmware, settings_for_tests
from test_firmware_campaigns import campaign

from csms_core import topics
from csms_core.events import (
    CampaignStationStateChanged,
    DeadLetter,
    FirmwareImageAdded,
    StationState,
)
from csms_ocpp import OcppVersion

ASYNCAPI = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"


def documented_data() -> dict[str, dict[str, Any]]:
    """Each csms.firmware event type's documented ``data`` schema."""
    document = yaml.safe_load(ASYNCAPI.read_text(encoding="utf-8"))
    messages = document["components"]["messages"]
    channel = next(c for c in document["channels"].values() if c["address"] == topics.FIRMWARE)
    found = {}
    for ref in channel["messages"].values():
        message = messages[ref["$ref"].rsplit("/", 1)[-1]]
        found[message["name"]] = message["payload"]["allOf"][1]["properties"]["data"]
    return found


def test_every_firmware_model_is_documented_field_by_field() -> None:
    documented = documented_data()
    assert set(documented) == set(topics.FIRMWARE.models)
    for name, model in topics.FIRMWARE.models.items():
        data_model = model.model_fields["data"].annotation
        assert isinstance(data_model, type)
        fields = set(data_model.model_fields)
        assert set(documented[name]["properties"]) == fields, name
        assert set(documented[name]["required"]) == fields, name
    station_states = documented["firmware.station.state_changed"]["properties"]["state"]["enum"]
    assert station_states == [state.value for state in StationState]


async def test_what_the_service_publishes_decodes_with_the_models(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("E", "1.0.0")
        image = await harness.add_image()
        await campaign(harness, image["image_id"], target={"station_ids": ["E"]})
        await harness.plan()
        await harness.settle()
        events = [topics.FIRMWARE.decode(d) for d in harness.bus.records(topics.FIRMWARE)]
        added = [e for e in events if isinstance(e, FirmwareImageAdded)]
        assert [e.data.image_id for e in added] == [image["image_id"]]
        assert added[0].station_id == f"image:{image['image_id']}"
        states = [e.data.state for e in events if isinstance(e, CampaignStationStateChanged)]
        assert states == [StationState.DISPATCHING, StationState.SENT]


async def test_unreadable_records_are_dead_lettered_and_the_rest_goes_on(tmp_path: Path) -> None:
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.connect("B", OcppVersion.V16)
        await harness.bus.append(topics.OCPP_INBOUND, "B", b"not json at all")
        # Valid OCPP for no version the consumer knows of this station: no vendor.
        await harness.call("B", "BootNotification", {"chargePointModel": "AC22"})
        await harness.boot("B", "1.0.0")
        await harness.settle()

        async def letters() -> list[DeadLetter]:
            records = harness.bus.records(topics.DEAD_LETTER)
            return [topics.DEAD_LETTER.decode(record) for record in records]

        dead = await eventually(lambda: _at_least(letters, 2))
        reasons = sorted(letter.data.error for letter in dead)
        assert any("not JSON" in reason for reason in reasons), reasons
        assert any("chargePointVendor" in reason for reason in reasons), reasons
        station = (await harness.api.get("/firmware/stations/B")).json()
        assert station["vendor"] == "ACME" and station["firmware_version"] == "1.0.0"


async def _at_least(read: Any, count: int) -> Any:
    found = await read()
    return found if len(found) >= count else None


async def test_a_burst_with_a_replay_is_applied_in_order_and_once(tmp_path: Path) -> None:
    """Records that arrive together (one poll of the batched consumer, a station's in one
    transaction) are applied in their order, each reading what the one before wrote; a
    record delivered twice changes nothing the second time."""
    async with running_firmware(settings_for_tests(tmp_path)) as harness:
        await harness.boot("R", "1.0.0")
        image = await harness.add_image()
        created = await campaign(harness, image["image_id"], target={"station_ids": ["R"]})
        await harness.plan()
        [update] = harness.stations.sent("R", "UpdateFirmware")
        request_id = update.payload["requestId"]
        statuses = ["Downloading", "Downloaded", "Installing", "Installed"]
        sent = []
        for status in statuses:
            payload = {"status": status, "requestId": request_id}
            sent.append(await harness.call("R", "FirmwareStatusNotification", payload))
        await harness.bus.publish(topics.OCPP_INBOUND, sent[0])  # delivered again
        await harness.settle()
        reported = [e.data["status"] for e in harness.events("firmware.status.reported", "R")]
        assert reported == statuses
        rows = await harness.api.get(f"/firmware/campaigns/{created['campaign_id']}/stations")
        [row] = rows.json()["items"]
        assert row["state"] == "installing" and row["ocpp_status"] == "Installed"
