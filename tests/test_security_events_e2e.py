"""SecurityEventNotification of every version: stored, classified with both versions' names,
listed per station and fleet-wide, published on csms.security-events and counted."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ocpp.v16
import ocpp.v21
import ocpp.v201
import pytest
from prometheus_client import REGISTRY
from websockets.exceptions import InvalidStatus

from csms_gateway.server import Gateway
from csms_security.context import SECURITY_EVENTS
from tests.kits.gateway import basic_auth, connect_station
from tests.security_harness import ORGANIZATION, Csms, running_csms
from tests.security_stations import StationState, secure_station
from tests.stations import boot_call
from tests.waiting import eventually

MODULES = {"1.6": ocpp.v16, "2.0.1": ocpp.v201, "2.1": ocpp.v21}
PASSWORD = "the-station-password-16"


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[Csms]:
    async with running_csms(tmp_path) as running:
        yield running


def critical_count(event_type: str) -> float:
    value = REGISTRY.get_sample_value(
        "csms_security_events_total", {"severity": "critical", "type": event_type}
    )
    return value or 0.0


async def notify(csms: Csms, station_id: str, version: str, *events: tuple[str, str]) -> None:
    state = StationState(station_id, ORGANIZATION)
    tls = state.tls(csms.server_trust(), with_certificate=False)
    module = MODULES[version]
    async with secure_station(csms.wss_url, state, version, tls=tls) as station:
        await station.call(boot_call(version))
        for event_type, tech_info in events:
            await station.call(
                module.call.SecurityEventNotification(
                    type=event_type, timestamp="2025-03-01T10:00:00.000Z", tech_info=tech_info
                )
            )

    async def stored() -> list[dict[str, object]] | None:
        body = (await csms.api.get(f"/stations/{station_id}/security-events")).json()
        return body["items"] if len(body["items"]) == len(events) else None

    await eventually(stored)


@pytest.mark.parametrize(
    ("version", "sent", "case"),
    [
        ("1.6", "InvalidCentralSystemCertificate", "tc_078"),
        ("2.0.1", "InvalidCsmsCertificate", "tc_a_04"),
        ("2.1", "InvalidCsmsCertificate", "tc_a_04"),
    ],
)
async def test_tc_078_security_events_carry_both_names(
    csms: Csms, version: str, sent: str, case: str
) -> None:
    station_id = f"CP-EV-{version}".replace(".", "")
    before = critical_count("InvalidCsmsCertificate")
    await notify(csms, station_id, version, (sent, "certificate expired"))
    (event,) = (await csms.api.get(f"/stations/{station_id}/security-events")).json()["items"]
    assert event["type"] == sent
    assert event["name_2x"] == "InvalidCsmsCertificate"
    assert event["name_16"] == "InvalidCentralSystemCertificate"
    assert event["tech_info"] == "certificate expired"
    assert event["timestamp"].startswith("2025-03-01T10:00:00")
    # Critical in 2.0.1 (Appendix 1), not in the 1.6 whitepaper; severe in both.
    assert event["critical"] is (version != "1.6")
    assert event["severity"] == "critical"
    assert critical_count("InvalidCsmsCertificate") == before + 1
    (record,) = [r for r in csms.published(SECURITY_EVENTS, "security.event.recorded")
                 if r["station_id"] == station_id]  # fmt: skip
    assert record["data"]["name_2x"] == "InvalidCsmsCertificate"
    assert record["data"]["source"] == "station"


async def test_tc_077_fleet_listing_filters_by_either_name_and_severity(csms: Csms) -> None:
    await notify(csms, "CP-A", "1.6", ("InvalidChargePointCertificate", "bad cert"))
    await notify(csms, "CP-B", "2.0.1", ("InvalidChargingStationCertificate", "bad cert"),
                 ("StartupOfTheDevice", "boot"), ("AcmeVendorEvent", "door"))  # fmt: skip
    by_16_name = (
        await csms.api.get("/security-events", params={"type": "InvalidChargePointCertificate"})
    ).json()
    assert sorted(item["station_id"] for item in by_16_name["items"]) == ["CP-A", "CP-B"]
    infos = (await csms.api.get("/security-events", params={"severity": "info"})).json()
    assert [item["type"] for item in infos["items"]] == ["AcmeVendorEvent"]
    page = (await csms.api.get("/security-events", params={"limit": 1})).json()
    assert page["total"] == 4 and len(page["items"]) == 1
    bad = await csms.api.get("/security-events", params={"severity": "apocalyptic"})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"


async def refused_status(gateway: Gateway, station_id: str, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as refusal:
        async with connect_station(gateway, station_id, **options):
            pass
    return refusal.value.response.status_code


async def csms_events(csms: Csms, station_id: str, count: int) -> list[dict[str, Any]]:
    async def stored() -> list[dict[str, Any]] | None:
        body = (await csms.api.get(f"/stations/{station_id}/security-events")).json()
        items: list[dict[str, Any]] = body["items"]
        return items if len(items) >= count else None

    return await eventually(stored)


async def test_tc_a_03_the_gateways_refusals_are_security_events(csms: Csms) -> None:
    """A wrong password and a downgrade below the station's profile, refused by the gateway,
    are stored by the security service as security events of the CSMS (ocpp.refusals)."""
    await csms.identities.save("CP-REF", password=PASSWORD, security_profile=2)
    wrong = await refused_status(
        csms.gateway, "CP-REF", headers=basic_auth("CP-REF", "a-wrong-password-1"),
        tls=csms.server_trust(),
    )  # fmt: skip
    assert csms.plain_gateway is not None
    downgrade = await refused_status(
        csms.plain_gateway, "CP-REF", headers=basic_auth("CP-REF", PASSWORD)
    )
    assert (wrong, downgrade) == (401, 403)
    events = await csms_events(csms, "CP-REF", 2)
    by_type = {event["type"]: event for event in events}
    assert set(by_type) == {"FailedToAuthenticateAtCsms", "SecurityProfileTooLow"}
    assert {event["source"] for event in events} == {"csms"}
    assert by_type["FailedToAuthenticateAtCsms"]["name_16"] == (
        "FailedToAuthenticateAtCentralSystem"
    )
    assert "gw-test refused 127.0.0.1:" in by_type["FailedToAuthenticateAtCsms"]["tech_info"]
    assert "profile 2" in by_type["SecurityProfileTooLow"]["tech_info"]
    assert not any(PASSWORD in str(event) for event in events)


async def test_an_unknown_station_refused_at_the_upgrade_is_a_security_event(
    tmp_path: Path,
) -> None:
    async with running_csms(
        tmp_path, tls=False, gateway={"unknown_station_policy": "reject"}
    ) as csms:
        assert await refused_status(csms.gateway, "CP-NOBODY") == 404
        [event] = await csms_events(csms, "CP-NOBODY", 1)
        assert (event["type"], event["source"]) == ("UnknownStationRefused", "csms")


async def test_tc_a_08_a_certificate_for_another_station_is_a_security_event(csms: Csms) -> None:
    """Profile 3 with a certificate the CSMS issued to another station: the gateway refuses
    it (403, the CN is not the station id) and the security service stores the refusal as
    FailedToAuthenticateAtCsms of the station it was presented for."""
    owner = StationState("CP-CN-OWNER", ORGANIZATION)
    async with secure_station(
        csms.wss_url, owner, "2.0.1", tls=owner.tls(csms.server_trust(), with_certificate=False)
    ) as station:
        await station.call(boot_call("2.0.1"))
        await station.sign("ChargingStationCertificate")
        await asyncio.wait_for(owner.certificate_signed.wait(), 15)
    impostor = StationState("CP-CN-VICTIM", ORGANIZATION, key=owner.key, chain_pem=owner.chain_pem)
    with pytest.raises(InvalidStatus) as refusal:
        async with secure_station(
            csms.wss_url,
            impostor,
            "2.0.1",
            tls=impostor.tls(csms.server_trust(), with_certificate=True),
        ):
            pass
    assert refusal.value.response.status_code == 403
    [event] = await csms_events(csms, "CP-CN-VICTIM", 1)
    assert (event["type"], event["source"], event["severity"]) == (
        "FailedToAuthenticateAtCsms",
        "csms",
        "critical",
    )
    assert "CP-CN-OWNER" in event["tech_info"]
    recorded = [
        record
        for record in csms.published(SECURITY_EVENTS, "security.event.recorded")
        if record["station_id"] == "CP-CN-VICTIM"
    ]
    assert [record["data"]["type"] for record in recorded] == ["FailedToAuthenticateAtCsms"]
    # The certificate's owner is untouched: it has no security event of its own.
    owners = (await csms.api.get("/stations/CP-CN-OWNER/security-events")).json()["items"]
    assert owners == []


async def test_a_lenient_stations_malformed_time_is_kept_with_the_time_received(
    csms: Csms,
) -> None:
    """A station marked lenient may send a malformed timestamp (the gateway lets it through
    and logs it): the event is stored with the time it was received, not lost."""
    await csms.identities.save("CP-LENIENT-TIME", lenient=True)
    state = StationState("CP-LENIENT-TIME", ORGANIZATION)
    tls = state.tls(csms.server_trust(), with_certificate=False)
    before = datetime.now(UTC)
    async with secure_station(csms.wss_url, state, "2.0.1", tls=tls) as station:
        await station.call(boot_call("2.0.1"))
        notification = ocpp.v201.call.SecurityEventNotification(
            type="TamperDetectionActivated", timestamp="yesterday at noon", tech_info="lid"
        )
        await station.call(notification, skip_schema_validation=True, suppress=False)
    [event] = await csms_events(csms, "CP-LENIENT-TIME", 1)
    assert (event["type"], event["tech_info"]) == ("TamperDetectionActivated", "lid")
    assert before <= datetime.fromisoformat(event["timestamp"]) <= datetime.now(UTC)


async def test_a_batch_of_security_events_replayed_at_once_is_stored_and_published_once(
    csms: Csms,
) -> None:
    from csms_core.events import OcppCall
    from csms_core.topics import OCPP_INBOUND

    station_id = "CP-EV-REPLAY"
    sent = [("SettingSystemTime", f"clock set {n}") for n in range(5)]
    await notify(csms, station_id, "2.0.1", *sent)
    calls = [
        OCPP_INBOUND.decode(delivery)
        for delivery in csms.bus.records(OCPP_INBOUND)
        if delivery.envelope.station_id == station_id
        and delivery.envelope.data["action"] == "SecurityEventNotification"
    ]
    assert len(calls) == len(sent)

    # The batch again, all at once (a replay after a crash), then one new event: once that
    # is stored, so is the replay (one lane on SQLite, in order).
    for call in calls:
        await csms.bus.publish(OCPP_INBOUND, call)
    payload = calls[0].data.payload | {"techInfo": "after the replay"}
    data = calls[0].data.model_copy(update={"payload": payload})
    marker = calls[0].model_copy(update={"id": "replay-marker", "data": data})
    assert isinstance(marker, OcppCall)
    await csms.bus.publish(OCPP_INBOUND, marker)

    async def stored() -> list[str] | None:
        body = (await csms.api.get(f"/stations/{station_id}/security-events")).json()
        infos = sorted(item["tech_info"] for item in body["items"])
        return infos if "after the replay" in infos else None

    expected = sorted([info for _type, info in sent] + ["after the replay"])
    assert await eventually(stored) == expected
    recorded = [r["id"] for r in csms.published(SECURITY_EVENTS, "security.event.recorded")
                if r["station_id"] == station_id]  # fmt: skip
    assert len(recorded) == len(set(recorded)) == len(expected)
