"""Answers composed from parts (docs/architecture.md "Composed answers"), and routing by the
declarations of the services alive."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.calls.declared import BILLING, SECURITY, SESSIONS
from csms_core.envelope import Envelope
from csms_core.identity import IdentityStore
from csms_core.router import CallAnswer
from csms_core.router.base import gateway_address
from csms_core.router.memory import InMemoryRouter
from tests.kits.gateway import (
    Station,
    connect_station,
    eventually,
    running_gateway,
    settings_for_tests,
)

PNC_AUTHORIZE = {
    "idToken": {"idToken": "EMAID1", "type": "eMAID"},
    "certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
}
ACCEPTED = {"idTokenInfo": {"status": "Accepted"}}
BOOT_201 = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}


async def inbound_event(bus: InMemoryBus) -> Envelope:
    await eventually(lambda: len(bus.records(topics.OCPP_INBOUND)) >= 1)
    return bus.records(topics.OCPP_INBOUND)[0].envelope


async def answer_as(router: InMemoryRouter, party: str, event: Envelope, **answer: Any) -> None:
    await router.send(
        gateway_address(event.data["gateway_id"]),
        CallAnswer(
            station_id=event.station_id,
            connection_id=event.data["connection_id"],
            message_id=event.data["message_id"],
            party=party,
            **answer,
        ),
    )


@dataclass
class Pnc:
    """A gateway with sessions and security announced, and one station connected."""

    router: InMemoryRouter
    bus: InMemoryBus
    station: Station

    async def authorize(self, payload: dict[str, Any]) -> Envelope:
        """The station sends Authorize; the record the gateway stored."""
        await self.station.send([2, "a1", "Authorize", payload])
        return await inbound_event(self.bus)


@pytest.fixture
async def pnc(bus: InMemoryBus, identities: IdentityStore) -> AsyncIterator[Pnc]:
    router = InMemoryRouter()
    await router.announce(SESSIONS, "sessions-1", ttl_s=60)
    await router.announce(SECURITY, "security-1", ttl_s=60)
    async with (
        running_gateway(settings_for_tests(), bus, router, identities) as gateway,
        connect_station(gateway) as station,
    ):
        yield Pnc(router, bus, station)


async def test_tc_c_50_the_answer_has_the_owners_and_the_contributors_fields(pnc: Pnc) -> None:
    event = await pnc.authorize(PNC_AUTHORIZE)
    assert (event.data["owner"], event.data["contributors"]) == ("sessions", ["security"])
    await answer_as(pnc.router, "security", event, payload={"certificateStatus": "Accepted"})
    await answer_as(pnc.router, "sessions", event, payload=ACCEPTED)
    assert await pnc.station.receive() == [3, "a1", ACCEPTED | {"certificateStatus": "Accepted"}]


async def test_tc_c_51_a_revoked_contract_makes_the_token_invalid(pnc: Pnc) -> None:
    """OCPP 2.0.1 C07.FR.16: sessions accepts the token, security finds the contract revoked."""
    event = await pnc.authorize(PNC_AUTHORIZE)
    await answer_as(
        pnc.router, "security", event, payload={"certificateStatus": "CertificateRevoked"}
    )
    await answer_as(pnc.router, "sessions", event, payload=ACCEPTED)
    assert await pnc.station.receive() == [
        3,
        "a1",
        {"idTokenInfo": {"status": "Invalid"}, "certificateStatus": "CertificateRevoked"},
    ]


async def test_a_late_contract_check_counts_as_no_certificate(pnc: Pnc) -> None:
    await answer_as(pnc.router, "sessions", await pnc.authorize(PNC_AUTHORIZE), payload=ACCEPTED)
    # security never answers: after the decision timeout, no contract was checked
    assert await pnc.station.receive() == [
        3,
        "a1",
        {"idTokenInfo": {"status": "Invalid"}, "certificateStatus": "NoCertificateAvailable"},
    ]


async def test_a_contribution_breaking_the_schema_is_left_out(pnc: Pnc) -> None:
    event = await pnc.authorize(PNC_AUTHORIZE)
    await answer_as(pnc.router, "security", event, payload={"certificateStatus": "Perhaps"})
    await answer_as(pnc.router, "sessions", event, payload=ACCEPTED)
    # the owner's answer alone: no contract checked
    assert await pnc.station.receive() == [
        3,
        "a1",
        {"idTokenInfo": {"status": "Invalid"}, "certificateStatus": "NoCertificateAvailable"},
    ]


async def test_an_authorize_without_contract_data_waits_for_sessions_alone(pnc: Pnc) -> None:
    event = await pnc.authorize({"idToken": PNC_AUTHORIZE["idToken"]})
    assert (event.data["owner"], event.data["contributors"]) == ("sessions", [])
    await answer_as(pnc.router, "sessions", event, payload=ACCEPTED)
    assert await pnc.station.receive() == [3, "a1", ACCEPTED]


async def test_a_service_not_running_is_waited_for_by_nobody(
    bus: InMemoryBus, identities: IdentityStore
) -> None:
    """No sessions service announced: a boot gets the fallback at once, recorded as nobody's."""
    settings = settings_for_tests(decision_timeout_s=30)
    async with (
        running_gateway(settings, bus, InMemoryRouter(), identities) as gateway,
        connect_station(gateway) as station,
    ):
        answer = await station.call("BootNotification", BOOT_201, message_id="b1")
    assert answer[2]["status"] == "Pending"
    assert (await inbound_event(bus)).data["owner"] == "nobody"


async def test_a_service_that_announces_is_routed_to_from_then_on(
    bus: InMemoryBus, identities: IdentityStore
) -> None:
    router = InMemoryRouter()
    settings = settings_for_tests(decision_timeout_s=30)
    async with (
        running_gateway(settings, bus, router, identities) as gateway,
        connect_station(gateway) as station,
    ):
        await router.announce(SESSIONS, "sessions-1", ttl_s=60)
        await station.send([2, "b1", "BootNotification", BOOT_201])
        event = await inbound_event(bus)
        assert event.data["owner"] == "sessions"
        accepted = {"status": "Accepted", "currentTime": "2025-01-01T00:00:00.000Z", "interval": 60}
        await answer_as(router, "sessions", event, payload=accepted)
        assert await station.receive() == [3, "b1", accepted]


def transaction_event(event_type: str) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "timestamp": "2025-01-01T11:00:00.000Z",
        "triggerReason": "EVDeparted" if event_type == "Ended" else "MeterValuePeriodic",
        "seqNo": 2,
        "transactionInfo": {"transactionId": "tx-1"},
    }


async def test_tc_i_02_the_ended_answer_waits_for_billings_total_cost(
    bus: InMemoryBus, identities: IdentityStore
) -> None:
    """A TransactionEvent Ended without an idToken: the gateway gives the answer (no
    decision) with billing's ``totalCost``; an Updated one is answered at once."""
    router = InMemoryRouter()
    await router.announce(SESSIONS, "sessions-1", ttl_s=60)
    await router.announce(BILLING, "billing-1", ttl_s=60)
    settings = settings_for_tests(decision_timeout_s=30)
    async with (
        running_gateway(settings, bus, router, identities) as gateway,
        connect_station(gateway) as station,
    ):
        updated = transaction_event("Updated")
        assert await station.call("TransactionEvent", updated, message_id="u1") == [3, "u1", {}]
        await station.send([2, "e1", "TransactionEvent", transaction_event("Ended")])
        await eventually(lambda: len(bus.records(topics.OCPP_INBOUND)) >= 2)
        ended = bus.records(topics.OCPP_INBOUND)[1].envelope
        assert (ended.data["owner"], ended.data["contributors"]) == ("gateway", ["billing"])
        await answer_as(router, "billing", ended, payload={"totalCost": 2.94})
        assert await station.receive() == [3, "e1", {"totalCost": 2.94}]
