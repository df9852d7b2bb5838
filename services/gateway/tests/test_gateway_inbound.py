"""Station CALLs: stored durably on ``ocpp.inbound`` first, then answered (ARCHITECTURE.md)."""

from typing import Any, TypeVar

import pytest

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.envelope import Envelope, Event
from csms_core.events import ConnectionClosed, ConnectionOpened
from csms_core.identity import IdentityStore
from csms_core.router import CallAnswer
from csms_core.router.base import gateway_address
from csms_core.router.memory import InMemoryRouter
from csms_gateway.server import Gateway
from tests.kits.gateway import (
    FailingBus,
    HeldBus,
    Station,
    connect_station,
    eventually,
    running_gateway,
    settings_for_tests,
)

E = TypeVar("E", bound=Event[Any])
BOOT_201 = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
STATUS_201 = {
    "timestamp": "2025-01-01T00:00:00Z",
    "connectorStatus": "Available",
    "evseId": 1,
    "connectorId": 1,
}
BOOT_16 = {"chargePointModel": "M", "chargePointVendor": "V"}
ACCEPTED_201 = {"status": "Accepted", "currentTime": "2025-01-01T00:00:00.000Z", "interval": 300}


async def inbound_event(bus: InMemoryBus, count: int = 1) -> Envelope:
    await eventually(lambda: len(bus.records(topics.OCPP_INBOUND)) >= count)
    return bus.records(topics.OCPP_INBOUND)[count - 1].envelope


async def answer_from_sessions(router: InMemoryRouter, event: Envelope, **answer: Any) -> None:
    """What the sessions service does: answer on the gateway and connection named in the event."""
    await router.send(
        gateway_address(event.data["gateway_id"]),
        CallAnswer(
            station_id=event.station_id,
            connection_id=event.data["connection_id"],
            message_id=event.data["message_id"],
            **answer,
        ),
    )


async def test_heartbeat_is_answered_only_after_the_event_is_durable(
    router: InMemoryRouter, identities: IdentityStore
) -> None:
    bus = HeldBus()
    async with (
        running_gateway(settings_for_tests(), bus, router, identities) as gateway,
        connect_station(gateway) as station,
    ):
        await station.send([2, "hb-1", "Heartbeat", {}])
        assert await station.silent_for(0.3)
        assert bus.records(topics.OCPP_INBOUND) == []
        bus.released.set()
        answer = await station.receive()
        assert bus.records(topics.OCPP_INBOUND) != []
    assert answer[:2] == [3, "hb-1"]
    assert list(answer[2]) == ["currentTime"]
    assert answer[2]["currentTime"].endswith("Z")


@pytest.mark.parametrize(
    ("subprotocol", "payload"),
    [
        ("ocpp1.6", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}),
        (
            "ocpp2.0.1",
            {
                "timestamp": "2025-01-01T00:00:00Z",
                "connectorStatus": "Available",
                "evseId": 1,
                "connectorId": 1,
            },
        ),
    ],
)
@pytest.mark.usefixtures("tracing")
async def test_status_notification_is_stored_and_answered_by_the_gateway(
    gateway: Gateway, bus: InMemoryBus, subprotocol: str, payload: dict[str, Any]
) -> None:
    async with connect_station(gateway, subprotocols=(subprotocol,)) as station:
        answer = await station.call("StatusNotification", payload, message_id="s1")
    assert answer == [3, "s1", {}]
    [record] = bus.records(topics.OCPP_INBOUND)
    event = record.envelope
    assert record.key == "CP-1"
    assert record.headers["traceparent"].startswith("00-")
    assert event.type == "ocpp.call"
    assert event.source == "csms/gateway/gw-test"
    assert event.ocpp_version == subprotocol.removeprefix("ocpp")
    assert event.data["action"] == "StatusNotification"
    assert event.data["message_id"] == "s1"
    assert event.data["payload"] == payload
    assert event.data["owner"] == "gateway"
    assert event.data["gateway_id"] == "gw-test"
    assert event.data["received_at"].endswith("Z")
    route_connection = bus.records(topics.OCPP_CONNECTIONS)[0].envelope.data["connection_id"]
    assert event.data["connection_id"] == route_connection


async def test_tc_b_01_boot_accepted_by_the_owning_service(
    gateway: Gateway, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    async with connect_station(gateway) as station:
        await station.send([2, "boot-1", "BootNotification", BOOT_201])
        event = await inbound_event(bus)
        assert event.data["owner"] == "sessions"
        await answer_from_sessions(router, event, payload=ACCEPTED_201)
        assert await station.receive() == [3, "boot-1", ACCEPTED_201]


async def test_tc_001_cold_boot_ocpp16(
    gateway: Gateway, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    accepted = {"status": "Accepted", "currentTime": "2025-01-01T00:00:00.000Z", "interval": 300}
    async with connect_station(gateway, subprotocols=("ocpp1.6",)) as station:
        await station.send([2, "boot-1", "BootNotification", BOOT_16])
        await answer_from_sessions(router, await inbound_event(bus), payload=accepted)
        assert await station.receive() == [3, "boot-1", accepted]


async def test_tc_b_02_boot_pending_when_no_decision_in_time(gateway: Gateway) -> None:
    async with connect_station(gateway) as station:
        answer = await station.call("BootNotification", BOOT_201, message_id="boot-1")
    assert answer[:2] == [3, "boot-1"]
    assert answer[2]["status"] == "Pending"
    assert answer[2]["interval"] == 30
    assert set(answer[2]) == {"status", "currentTime", "interval"}


@pytest.mark.parametrize(
    ("subprotocol", "payload", "fallback"),
    [
        ("ocpp1.6", {"idTag": "TAG1"}, {"idTagInfo": {"status": "Invalid"}}),
        (
            "ocpp2.0.1",
            {"idToken": {"idToken": "TAG1", "type": "ISO14443"}},
            {"idTokenInfo": {"status": "Unknown"}},
        ),
    ],
)
async def test_authorize_fallback_when_no_decision_in_time(
    gateway: Gateway, subprotocol: str, payload: dict[str, Any], fallback: dict[str, Any]
) -> None:
    async with connect_station(gateway, subprotocols=(subprotocol,)) as station:
        assert await station.call("Authorize", payload, message_id="a1") == [3, "a1", fallback]


async def test_other_decisions_fall_back_to_internal_error(gateway: Gateway) -> None:
    async with connect_station(gateway) as station:
        answer = await station.call("DataTransfer", {"vendorId": "acme"}, message_id="d1")
    assert answer == [4, "d1", "InternalError", "no decision in time", {}]


@pytest.mark.parametrize(
    ("subprotocol", "wire"), [("ocpp1.6", "FormationViolation"), ("ocpp2.0.1", "FormatViolation")]
)
async def test_service_answer_with_error_code_becomes_callerror(
    gateway: Gateway, bus: InMemoryBus, router: InMemoryRouter, subprotocol: str, wire: str
) -> None:
    async with connect_station(gateway, subprotocols=(subprotocol,)) as station:
        await station.send([2, "d1", "DataTransfer", {"vendorId": "acme"}])
        await answer_from_sessions(
            router,
            await inbound_event(bus),
            error_code="FormatViolation",
            error_description="bad data",
        )
        assert await station.receive() == [4, "d1", wire, "bad data", {}]


async def test_service_answer_breaking_the_schema_becomes_internal_error(
    gateway: Gateway, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    async with connect_station(gateway) as station:
        await station.send([2, "boot-1", "BootNotification", BOOT_201])
        await answer_from_sessions(router, await inbound_event(bus), payload={"status": "Maybe"})
        assert await station.receive() == [
            4,
            "boot-1",
            "InternalError",
            "the CSMS produced an invalid answer",
            {},
        ]


async def test_late_answer_is_dropped(
    gateway: Gateway, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    async with connect_station(gateway) as station:
        answer = await station.call("BootNotification", BOOT_201, message_id="boot-1")
        assert answer[2]["status"] == "Pending"
        await answer_from_sessions(router, await inbound_event(bus), payload=ACCEPTED_201)
        assert await station.silent_for(0.2)
        # The station was told Pending (the fallback), not Accepted: B02.FR.09 applies.
        assert (await station.call("Heartbeat", {}, message_id="hb"))[:3] == [
            4,
            "hb",
            "SecurityError",
        ]


async def test_call_nobody_handles_is_stored_then_not_supported(
    gateway: Gateway, bus: InMemoryBus
) -> None:
    async with connect_station(gateway, subprotocols=("ocpp2.1",)) as station:
        answer = await station.call("VatNumberValidation", {"vatNumber": "DE1"}, message_id="c1")
    assert answer == [4, "c1", "NotSupported", "no service handles VatNumberValidation yet", {}]
    assert bus.records(topics.OCPP_INBOUND)[0].envelope.data["owner"] == "nobody"


async def test_publish_failure_is_internal_error_never_callresult(
    router: InMemoryRouter, identities: IdentityStore
) -> None:
    bus = FailingBus()
    async with (
        running_gateway(settings_for_tests(), bus, router, identities) as gateway,
        connect_station(gateway) as station,
    ):
        for message_id in ("hb-1", "hb-2"):
            answer = await station.call("Heartbeat", {}, message_id=message_id)
            assert answer == [
                4,
                message_id,
                "InternalError",
                "could not store the message; retry",
                {},
            ]
    assert bus.records(topics.OCPP_INBOUND) == []


async def test_ocpp21_send_is_stored_and_never_answered(gateway: Gateway, bus: InMemoryBus) -> None:
    payload = {
        "id": 1,
        "pending": 0,
        "basetime": "2025-01-01T00:00:00Z",
        "data": [{"t": 0, "v": "1"}],
    }
    async with connect_station(gateway, subprotocols=("ocpp2.1",)) as station:
        await station.send([6, "s1", "NotifyPeriodicEventStream", payload])
        event = await inbound_event(bus)
        assert await station.silent_for(0.2)
    assert event.type == "ocpp.send"
    assert event.data["payload"] == payload


async def test_calls_are_processed_in_the_order_received(
    gateway: Gateway, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    async with connect_station(gateway) as station:
        # A misbehaving station pipelines a second CALL behind one awaiting a decision.
        await station.send([2, "boot-1", "BootNotification", BOOT_201])
        await station.send([2, "hb-1", "Heartbeat", {}])
        await answer_from_sessions(router, await inbound_event(bus), payload=ACCEPTED_201)
        assert (await station.receive())[:2] == [3, "boot-1"]
        assert (await station.receive())[:2] == [3, "hb-1"]
    assert [r.envelope.data["message_id"] for r in bus.records(topics.OCPP_INBOUND)] == [
        "boot-1",
        "hb-1",
    ]


async def connected_route_id(bus: InMemoryBus) -> str:
    await eventually(lambda: bool(bus.records(topics.OCPP_CONNECTIONS)))
    return str(bus.records(topics.OCPP_CONNECTIONS)[-1].envelope.data["connection_id"])


async def test_answer_for_another_connection_is_not_delivered(
    gateway: Gateway, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    station: Station
    async with connect_station(gateway) as station:
        await station.send([2, "boot-1", "BootNotification", BOOT_201])
        event = await inbound_event(bus)
        stale = event.model_copy(update={"data": {**event.data, "connection_id": "old"}})
        await answer_from_sessions(router, stale, payload=ACCEPTED_201)
        answer = await station.receive()
    assert answer[2]["status"] == "Pending"


async def test_every_record_the_gateway_writes_is_its_topics_model_with_a_traceparent(
    gateway: Gateway, bus: InMemoryBus
) -> None:
    async with connect_station(gateway, subprotocols=("ocpp2.0.1",)) as station:
        await station.call("Heartbeat", {}, message_id="hb")
        await station.call("StatusNotification", STATUS_201, message_id="st")
    await eventually(lambda: len(bus.records(topics.OCPP_CONNECTIONS)) == 2)

    inbound = [topics.OCPP_INBOUND.decode(r) for r in bus.records(topics.OCPP_INBOUND)]
    connections = [topics.OCPP_CONNECTIONS.decode(r) for r in bus.records(topics.OCPP_CONNECTIONS)]
    assert [(e.type, e.data.action) for e in inbound] == [
        ("ocpp.call", "Heartbeat"),
        ("ocpp.call", "StatusNotification"),
    ]
    assert inbound[1].data.payload == STATUS_201
    assert [type(e) for e in connections] == [ConnectionOpened, ConnectionClosed]
    assert {e.data.connection_id for e in [*inbound, *connections]} == {
        connections[0].data.connection_id
    }
    for record in [*bus.records(topics.OCPP_INBOUND), *bus.records(topics.OCPP_CONNECTIONS)]:
        assert record.headers["traceparent"].startswith("00-"), record.topic


@pytest.mark.usefixtures("tracing")
@pytest.mark.parametrize(("ratio", "sampled"), [(0.0, 0), (1.0, 1)])
async def test_each_station_call_starts_a_trace_recorded_as_sampled(
    bus: InMemoryBus,
    router: InMemoryRouter,
    identities: IdentityStore,
    ratio: float,
    sampled: int,
) -> None:
    """Unsampled CALLs carry a new trace of their own, flags 00 (no span made for them);
    sampled ones the recorded span's, with the sampled flag."""
    settings = settings_for_tests(trace_sample_ratio=ratio)
    async with (
        running_gateway(settings, bus, router, identities) as gateway,
        connect_station(gateway) as station,
    ):
        for number in range(3):
            await station.call("Heartbeat", {}, message_id=f"hb{number}")
    parents = [record.headers["traceparent"] for record in bus.records(topics.OCPP_INBOUND)]
    assert len(parents) == 3
    for parent in parents:
        version, trace_id, span_id, flags = parent.split("-")
        assert (version, len(trace_id), len(span_id), len(flags)) == ("00", 32, 16, 2)
        assert int(flags, 16) & 1 == sampled
        assert int(trace_id, 16) != 0 and int(span_id, 16) != 0
    assert len({parent.split("-")[1] for parent in parents}) == 3  # a trace per CALL
