"""Answers composed from parts (docs/architecture.md "Composed answers"), and routing by the
declarations of the services alive."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.calls import Routing
from csms_core.calls.declared import BILLING, SECURITY, SESSIONS
from csms_core.envelope import Envelope
from csms_core.identity import IdentityStore
from csms_core.router import CallAnswer
from csms_core.router.base import gateway_address
from csms_core.router.memory import InMemoryRouter
from csms_gateway.answers import PendingAnswer
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


async def test_a_2_1_updated_answer_carries_billings_running_cost(
    bus: InMemoryBus, identities: IdentityStore
) -> None:
    """2.1 I-block running cost: billing contributes to an Updated event's answer (bounded
    wait); the gateway composes its empty answer with billing's ``totalCost``."""
    router = InMemoryRouter()
    await router.announce(BILLING, "billing-1", ttl_s=60)
    settings = settings_for_tests(decision_timeout_s=30)
    async with (
        running_gateway(settings, bus, router, identities) as gateway,
        connect_station(gateway, subprotocols=("ocpp2.1",)) as station,
    ):
        await station.send([2, "u1", "TransactionEvent", transaction_event("Updated")])
        updated = await inbound_event(bus)
        assert (updated.data["owner"], updated.data["contributors"]) == ("gateway", ["billing"])
        await answer_as(router, "billing", updated, payload={"totalCost": 1.25})
        assert await station.receive() == [3, "u1", {"totalCost": 1.25}]


async def test_a_bounded_part_is_waited_for_its_budget_only() -> None:
    """A contributor with a bounded wait that does not answer holds the answer for its
    budget, not the decision timeout; the owner's decision is still waited for in full."""
    alone = PendingAnswer(Routing("gateway", ("billing",), budget_s=0.05))
    await asyncio.wait_for(alone.wait(timeout_s=30), 5)
    assert alone.late == ["billing"]

    owned = PendingAnswer(Routing("sessions", ("billing",), budget_s=0.01))
    waiting = asyncio.create_task(owned.wait(timeout_s=30))
    await asyncio.sleep(0.05)  # past the budget: the owner's decision is still awaited
    assert not waiting.done()
    owned.add(CallAnswer(station_id="CP-1", connection_id="c", message_id="m", party="sessions"))
    await asyncio.wait_for(waiting, 5)
    assert (owned.decision is not None, owned.late) == (True, ["billing"])


async def test_an_unbounded_part_is_waited_for_within_the_timeout() -> None:
    pending = PendingAnswer(Routing("gateway", ("billing",)))
    waiting = asyncio.create_task(pending.wait(timeout_s=30))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    pending.add(CallAnswer(station_id="CP-1", connection_id="c", message_id="m", party="billing"))
    await asyncio.wait_for(waiting, 5)
    assert pending.late == []


async def test_a_2_1_authorize_with_billings_tariff_keeps_the_tokens_status(
    bus: InMemoryBus, identities: IdentityStore
) -> None:
    """Billing's tariff is no contract check: an accepted token without ISO 15118 contract
    data stays Accepted when billing contributes (C07.FR.16 is security's)."""
    router = InMemoryRouter()
    await router.announce(SESSIONS, "sessions-1", ttl_s=60)
    await router.announce(SECURITY, "security-1", ttl_s=60)
    await router.announce(BILLING, "billing-1", ttl_s=60)
    async with (
        running_gateway(settings_for_tests(decision_timeout_s=30), bus, router, identities) as gw,
        connect_station(gw, subprotocols=("ocpp2.1",)) as station,
    ):
        await station.send([2, "a1", "Authorize", {"idToken": {"idToken": "T", "type": "Central"}}])
        event = await inbound_event(bus)
        assert (event.data["owner"], event.data["contributors"]) == ("sessions", ["billing"])
        await answer_as(router, "sessions", event, payload=ACCEPTED)
        tariff = {
            "tariffId": "std.v1",
            "currency": "EUR",
            "energy": {"prices": [{"priceKwh": 0.3}]},
        }
        await answer_as(router, "billing", event, payload={"tariff": tariff})
        assert await station.receive() == [3, "a1", {**ACCEPTED, "tariff": tariff}]
