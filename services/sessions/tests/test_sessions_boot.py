"""BootNotification: the decision per policy and OCPP version (OCTT B01, B02, TC_001)."""

from typing import Any

import pytest

from csms_core.router import CallAnswer
from csms_ocpp import OcppVersion, schemas
from csms_sessions.stations.models import BootStatus
from csms_sessions.stations.service import register
from tests.kits.sessions import Harness

BOOT_V16 = {
    "chargePointVendor": "ACME",
    "chargePointModel": "Wallbox 22",
    "chargePointSerialNumber": "SN-1",
    "firmwareVersion": "1.4.2",
}
BOOT_V2X = {
    "reason": "PowerUp",
    "chargingStation": {
        "vendorName": "ACME",
        "model": "Wallbox 22",
        "serialNumber": "SN-1",
        "firmwareVersion": "1.4.2",
    },
}
VERSIONS = [OcppVersion.V16, OcppVersion.V201, OcppVersion.V21]


def boot_payload(version: OcppVersion) -> dict[str, Any]:
    return BOOT_V2X if version.is_2x else BOOT_V16


def assert_valid(version: OcppVersion, action: str, answer: CallAnswer) -> dict[str, Any]:
    """The answer is a CALLRESULT the gateway accepts: it conforms to the response schema."""
    assert answer.error_code is None, answer.error_description
    assert answer.payload is not None
    assert schemas.validate(version, action, answer.payload, response=True) is None
    return answer.payload


async def boot(sessions: Harness, version: OcppVersion, station_id: str = "CP-1") -> CallAnswer:
    event = await sessions.call(
        station_id, "BootNotification", boot_payload(version), version=version
    )
    answer = await sessions.answer()
    assert answer.message_id == event.data.message_id
    assert answer.connection_id == event.data.connection_id
    await sessions.processed(event)
    return answer


@pytest.mark.parametrize("policy", ["accept"])
@pytest.mark.parametrize("version", VERSIONS)
async def test_tc_b_01_cold_boot_accepted(sessions: Harness, version: OcppVersion) -> None:
    payload = assert_valid(version, "BootNotification", await boot(sessions, version))

    assert payload["status"] == "Accepted"
    assert payload["interval"] == sessions.service.settings.heartbeat_interval_s
    station = await sessions.station("CP-1")
    assert station is not None
    assert (station.registered, station.boot_status) == (False, BootStatus.ACCEPTED)
    assert (station.vendor, station.model, station.serial_number, station.firmware_version) == (
        "ACME",
        "Wallbox 22",
        "SN-1",
        "1.4.2",
    )
    assert station.ocpp_version == version.number
    assert station.last_boot_at is not None
    assert station.last_seen_at is not None
    [booted] = sessions.published("station.booted")
    assert booted.station_id == "CP-1"
    assert booted.data["boot_status"] == "Accepted"
    assert booted.data["vendor"] == "ACME"
    assert booted.data["reason"] == ("PowerUp" if version.is_2x else None)


@pytest.mark.parametrize("policy", ["pending"])
@pytest.mark.parametrize("version", VERSIONS)
async def test_tc_b_02_cold_boot_pending(sessions: Harness, version: OcppVersion) -> None:
    payload = assert_valid(version, "BootNotification", await boot(sessions, version))

    assert payload["status"] == "Pending"
    assert payload["interval"] == sessions.service.settings.pending_retry_interval_s
    [booted] = sessions.published("station.booted")
    assert booted.data["boot_status"] == "Pending"


@pytest.mark.parametrize("version", VERSIONS)
async def test_unknown_station_rejected_by_default(sessions: Harness, version: OcppVersion) -> None:
    payload = assert_valid(version, "BootNotification", await boot(sessions, version))

    assert payload["status"] == "Rejected"
    assert payload["interval"] == sessions.service.settings.pending_retry_interval_s
    station = await sessions.station("CP-1")
    assert station is not None
    assert station.boot_status is BootStatus.REJECTED


@pytest.mark.parametrize("version", VERSIONS)
async def test_tc_001_cold_boot_registered_station_accepted(
    sessions: Harness, version: OcppVersion
) -> None:
    async with sessions.service.factory() as session, session.begin():
        await register(session, "CP-1")

    payload = assert_valid(version, "BootNotification", await boot(sessions, version))

    assert payload["status"] == "Accepted"
    [booted] = sessions.published("station.booted")
    assert booted.data["registered"] is True


@pytest.mark.parametrize("policy", ["pending"])
async def test_the_boot_decision_is_recorded_for_the_gateways_boot_gate(
    sessions: Harness,
) -> None:
    """A registered station's registration status goes to its identity record (the gateway
    starts its next connection's boot gate from it); an unknown station gets no record."""
    identities = sessions.service.identities
    await identities.save("CP-1", lenient=False)
    async with sessions.service.factory() as session, session.begin():
        await register(session, "CP-1")
    await boot(sessions, OcppVersion.V201, "CP-1")
    await boot(sessions, OcppVersion.V201, "CP-UNKNOWN")

    recorded = await identities.get("CP-1")
    assert recorded is not None and recorded.registration_status == "Accepted"
    assert await identities.get("CP-UNKNOWN") is None


@pytest.mark.parametrize("policy", ["pending"])
async def test_a_batch_of_boots_records_each_stations_decision(sessions: Harness) -> None:
    """Boots applied together (a reconnect storm) write their registration statuses in
    bulk before the commit: each registered station's is recorded, by its own decision."""
    identities = sessions.service.identities
    station_ids = [f"CP-{n}" for n in range(6)]
    for station_id in station_ids:
        await identities.save(station_id, lenient=False)
    async with sessions.service.factory() as session, session.begin():
        for station_id in station_ids[:4]:  # two are not registered: Pending by the policy
            await register(session, station_id)
    calls = [
        await sessions.call(station_id, "BootNotification", BOOT_V2X, version=OcppVersion.V201)
        for station_id in station_ids
    ]
    answers = {(await sessions.answer()).message_id for _ in calls}
    for event in calls:
        await sessions.processed(event)

    assert answers == {event.data.message_id for event in calls}
    statuses = [(await identities.get(station_id)) for station_id in station_ids]
    assert [identity.registration_status if identity else None for identity in statuses] == [
        "Accepted",
        "Accepted",
        "Accepted",
        "Accepted",
        "Pending",
        "Pending",
    ]
