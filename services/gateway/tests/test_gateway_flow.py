"""What a connection lets through: CALLs of a station that is not Accepted (OCPP 2.0.1
B02/B03, TC_B_30 / TC_B_31; 1.6 §4.2), CALLs over the rate limit, and a station that does
not wait for its answers."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest
from websockets.exceptions import ConnectionClosed

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.envelope import Envelope, Event
from csms_core.identity import IdentityStore
from csms_core.router import CallAnswer, CommandClient, fixed
from csms_core.router.base import gateway_address
from csms_core.router.memory import InMemoryRouter
from csms_gateway.flow import BootGate, RateBucket, triggered_action
from csms_gateway.server import Gateway
from tests.kits.gateway import (
    HeldBus,
    Station,
    connect_station,
    eventually,
    running_gateway,
    settings_for_tests,
)

TRIGGER_STATUS = {"requestedMessage": "StatusNotification"}
BOOT = {
    "ocpp2.0.1": {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"},
    "ocpp1.6": {"chargePointModel": "M", "chargePointVendor": "V"},
}
STATUS = {
    "ocpp2.0.1": {
        "timestamp": "2025-01-01T00:00:00Z",
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    },
    "ocpp1.6": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
}
E = TypeVar("E", bound=Event[Any])
VERSIONS = pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1"])


def inbound(bus: InMemoryBus) -> list[Envelope]:
    """What reached ``ocpp.inbound`` besides the boots."""
    return [
        record.envelope
        for record in bus.records(topics.OCPP_INBOUND)
        if record.envelope.data["action"] != "BootNotification"
    ]


def boots(bus: InMemoryBus) -> list[Envelope]:
    return [
        record.envelope
        for record in bus.records(topics.OCPP_INBOUND)
        if record.envelope.data["action"] == "BootNotification"
    ]


async def boot(station: Station, bus: InMemoryBus, router: InMemoryRouter, status: str) -> None:
    """The station boots; the sessions service (played here) answers ``status``."""
    subprotocol = station.websocket.subprotocol or ""
    before = len(boots(bus))
    await station.send([2, f"boot-{status}", "BootNotification", BOOT[subprotocol]])
    await eventually(lambda: len(boots(bus)) > before)
    event = boots(bus)[-1]
    await router.send(
        gateway_address(event.data["gateway_id"]),
        CallAnswer(
            station_id=event.station_id,
            connection_id=event.data["connection_id"],
            message_id=event.data["message_id"],
            payload={"status": status, "currentTime": "2025-01-01T00:00:00Z", "interval": 30},
        ),
    )
    answer = await station.receive()
    assert answer[:2] == [3, f"boot-{status}"] and answer[2]["status"] == status


@pytest.fixture
async def pending_policy(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> AsyncIterator[Gateway]:
    """Unknown stations connect, and must boot (their boot is answered Pending)."""
    settings = settings_for_tests(unknown_station_policy="pending", decision_timeout_s=5.0)
    async with running_gateway(settings, bus, router, identities) as gateway:
        yield gateway


# -- the boot gate -------------------------------------------------------------------------


@VERSIONS
async def test_tc_b_30_pending_station_gets_security_error_and_nothing_is_stored(
    pending_policy: Gateway, bus: InMemoryBus, router: InMemoryRouter, subprotocol: str
) -> None:
    async with connect_station(pending_policy, subprotocols=(subprotocol,)) as station:
        # Before any boot: only BootNotification gets through.
        answer = await station.call("Heartbeat", {}, "hb-0")
        assert answer[:3] == [4, "hb-0", "SecurityError"]
        await boot(station, bus, router, "Pending")
        for message_id, action, payload in [
            ("st-1", "StatusNotification", STATUS[subprotocol]),
            ("hb-1", "Heartbeat", {}),
            (
                "au-1",
                "Authorize",
                {"idTag": "X"}
                if subprotocol == "ocpp1.6"
                else {"idToken": {"idToken": "X", "type": "ISO14443"}},
            ),
        ]:
            answer = await station.call(action, payload, message_id)
            assert answer[:3] == [4, message_id, "SecurityError"]
            assert "Pending" in answer[3]
        assert inbound(bus) == []  # nothing it sent beyond the boot reached a topic


@VERSIONS
async def test_tc_b_30_rejected_station_may_only_boot_again(
    pending_policy: Gateway, bus: InMemoryBus, router: InMemoryRouter, subprotocol: str
) -> None:
    async with connect_station(pending_policy, subprotocols=(subprotocol,)) as station:
        await boot(station, bus, router, "Rejected")
        answer = await station.call("Heartbeat", {}, "hb-1")
        assert answer[:3] == [4, "hb-1", "SecurityError"]
        assert inbound(bus) == []
        await boot(station, bus, router, "Accepted")
        assert (await station.call("Heartbeat", {}, "hb-2"))[:2] == [3, "hb-2"]
        assert [e.data["action"] for e in inbound(bus)] == ["Heartbeat"]


async def test_tc_b_31_pending_station_may_send_what_the_csms_triggered(
    pending_policy: Gateway, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    async with (
        connect_station(pending_policy) as station,
        CommandClient(router, "sessions") as commands,
    ):
        await boot(station, bus, router, "Pending")
        trigger = asyncio.create_task(
            commands.call("CP-1", fixed("TriggerMessage", TRIGGER_STATUS), 5)
        )
        request = await station.receive()
        assert request[2] == "TriggerMessage"
        await station.send([3, request[1], {"status": "Accepted"}])
        assert (await trigger).outcome == "result"
        answer = await station.call("StatusNotification", STATUS["ocpp2.0.1"], "st-1")
        assert answer[:2] == [3, "st-1"]
        # A report the CSMS asked for (GetBaseReport) gets through too; Heartbeat does not.
        assert (await station.call("Heartbeat", {}, "hb-1"))[:3] == [4, "hb-1", "SecurityError"]
        assert [e.data["action"] for e in inbound(bus)] == ["StatusNotification"]


async def test_registered_station_reconnecting_without_a_boot_is_accepted(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> None:
    """A registered station is accepted; it need not boot again after a dropped connection."""
    settings = settings_for_tests(unknown_station_policy="reject")
    await identities.save("CP-1", lenient=False)
    async with (
        running_gateway(settings, bus, router, identities) as gateway,
        connect_station(gateway) as station,
    ):
        assert (await station.call("Heartbeat", {}, "hb"))[:2] == [3, "hb"]


def test_the_gate_follows_the_boot_answers() -> None:
    gate = BootGate(None)
    assert gate.admits("BootNotification") and not gate.admits("Heartbeat")
    gate.booted("Pending")
    assert gate.admits("NotifyReport") and not gate.admits("StatusNotification")
    # the answers to the other reports the CSMS may ask for while Pending (block N)
    assert gate.admits("NotifyMonitoringReport") and gate.admits("NotifyCustomerInformation")
    assert not gate.admits("NotifyEvent")  # the station's own: not asked for
    gate.asked("SignChargingStationCertificate")
    assert gate.admits("SignCertificate")
    gate.booted("Accepted")
    assert gate.admits("Heartbeat")
    gate.booted("Maybe")  # not a RegistrationStatus: ignored
    assert gate.status == "Accepted"
    assert triggered_action("SignV2GCertificate") == "SignCertificate"
    assert triggered_action("MeterValues") == "MeterValues"


# -- the rate limit --------------------------------------------------------------------------


async def test_calls_over_the_rate_get_generic_error_then_the_flooder_is_cut_off(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> None:
    settings = settings_for_tests(
        station_rate_per_s=0.01, station_rate_burst=3, station_flood_close_after=4
    )
    async with (
        running_gateway(settings, bus, router, identities) as gateway,
        connect_station(gateway) as station,
    ):
        for n in range(10):
            await station.send([2, f"hb-{n}", "Heartbeat", {}])
        answers: list[list[Any]] = []
        with pytest.raises(ConnectionClosed):
            while True:
                answers.append(await station.receive())
        assert station.websocket.close_code == 1008
        assert station.websocket.close_reason == "message rate limit exceeded"
    assert sorted(a[1] for a in answers if a[0] == 3) == ["hb-0", "hb-1", "hb-2"]
    refused = [a for a in answers if a[0] == 4]
    assert [a[1] for a in refused] == ["hb-3", "hb-4", "hb-5"]
    assert {a[2] for a in refused} == {"GenericError"}
    assert refused[0][3] == "over the rate limit of 0.01 messages per second"
    assert len(inbound(bus)) == 3  # the refused ones were never stored
    await eventually(lambda: bool(bus.records(topics.OCPP_REFUSALS)))
    cut_off = bus.records(topics.OCPP_REFUSALS)[0].envelope
    assert (cut_off.data["reason"], cut_off.data["status"]) == ("flooding", 1008)


async def test_100000_heartbeats_without_waiting_cut_the_station_off_early(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> None:
    """Issue 14's flood: a station sends 100,000 Heartbeats and reads no answer. With the
    defaults (20/s, a burst of 100, cut off after 100 over the rate) the gateway stores no
    more than the burst, holds at most its inbound queue, and closes the connection long
    before the 100,000th."""
    settings = settings_for_tests(
        station_rate_per_s=20, station_rate_burst=100, station_flood_close_after=100
    )
    frame = '[2,"hb","Heartbeat",{}]'
    async with (
        running_gateway(settings, bus, router, identities) as gateway,
        connect_station(gateway) as station,
    ):
        connection = gateway.connection("CP-1")
        assert connection is not None
        most_queued, started = 0, time.monotonic()
        with contextlib.suppress(ConnectionClosed):  # cut off while still sending, maybe
            for _ in range(100_000):
                await station.websocket.send(frame)
                most_queued = max(most_queued, connection.queued_calls)
        answered = 0
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(station.websocket.recv(), 15)
                answered += 1
        assert station.websocket.close_code == 1008
    assert most_queued <= settings.max_inbound_queue
    # Answered: the burst, then GenericError until the cut-off, nothing after it; a CALL the
    # rate let through meanwhile (20/s, more of them on a loaded machine) starts the count of
    # 100 in a row again.
    refilled = int(20 * (time.monotonic() - started)) + 1
    assert 199 <= answered <= 100 + 99 + refilled * 100
    assert len(inbound(bus)) <= 100 + 5  # the burst, and what the rate refilled meanwhile
    await eventually(lambda: bool(bus.records(topics.OCPP_REFUSALS)))


def test_the_rate_bucket_refills_at_its_rate() -> None:
    bucket = RateBucket(rate_per_s=2.0, burst=2)
    start = time.monotonic()
    assert [bucket.take(now=start) for _ in range(3)] == [True, True, False]
    assert [bucket.take(now=start + 0.5) for _ in range(2)] == [True, False]
    assert [bucket.take(now=start + 60) for _ in range(3)] == [True, True, False]  # capped


# -- a station that does not wait for its answers ---------------------------------------------


async def test_the_inbound_queue_is_bounded_and_reading_stops_while_it_is_full(
    router: InMemoryRouter, identities: IdentityStore
) -> None:
    """While the first Heartbeat cannot be stored, 3 more wait behind it and the gateway
    reads no more; once stored, the rest is read and answered in order."""
    bus = HeldBus()
    settings = settings_for_tests(max_inbound_queue=3)
    async with (
        running_gateway(settings, bus, router, identities) as gateway,
        connect_station(gateway) as station,
    ):
        for n in range(20):
            await station.send([2, f"hb-{n}", "Heartbeat", {}])
        connection = gateway.connection("CP-1")
        assert connection is not None
        await eventually(lambda: connection.queued_calls == 3)
        assert await station.silent_for(0.2)  # nothing answered, nothing more read
        assert connection.queued_calls == 3
        bus.released.set()
        answers = [await station.receive() for _ in range(20)]
        assert [answer[1] for answer in answers] == [f"hb-{n}" for n in range(20)]
        assert len(inbound(bus)) == 20
