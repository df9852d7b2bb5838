"""Station admission as an attacker tries it: an unknown station, a hijack without
credentials, a profile downgrade, too many connections, a connection that never finishes
its handshake; every security-relevant refusal on ``ocpp.refusals`` (OCPP 2.0.1 A00,
1.6 security whitepaper)."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.envelope import Envelope
from csms_core.identity import IdentityStore
from csms_core.router.memory import InMemoryRouter
from csms_gateway.admission import (
    ConnectionCaps,
    Refusal,
    RefusalReason,
    RefusalThrottle,
)
from csms_gateway.server import Gateway
from tests.kits.gateway import (
    basic_auth,
    connect_station,
    eventually,
    running_gateway,
    settings_for_tests,
)

PASSWORD = "s3cret-password-16"


async def refused(gateway: Gateway, **kwargs: Any) -> tuple[int, str, dict[str, str]]:
    with pytest.raises(InvalidStatus) as refusal:
        async with connect_station(gateway, **kwargs):
            pass
    response = refusal.value.response
    return response.status_code, response.body.decode(), dict(response.headers.raw_items())


async def refusals(bus: InMemoryBus, count: int = 1) -> list[Envelope]:
    await eventually(lambda: len(bus.records(topics.OCPP_REFUSALS)) >= count)
    return [record.envelope for record in bus.records(topics.OCPP_REFUSALS)]


@pytest.fixture
async def strict(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> AsyncIterator[Gateway]:
    """A gateway that refuses stations nobody registered (the production default)."""
    settings = settings_for_tests(unknown_station_policy="reject")
    async with running_gateway(settings, bus, router, identities) as gateway:
        yield gateway


# -- unknown stations --------------------------------------------------------------------


async def test_unknown_station_is_refused_at_the_upgrade_with_404(
    strict: Gateway, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    status, body, _ = await refused(strict, station_id="CP-NOBODY")
    assert status == 404
    assert body == "unknown station 'CP-NOBODY': register it first (PUT /api/v1/stations/...)\n"
    assert await router.lookup("CP-NOBODY") is None
    assert bus.records(topics.OCPP_CONNECTIONS) == []
    [refusal] = await refusals(bus)
    assert refusal.type == "ocpp.connection.refused"
    assert refusal.station_id == "CP-NOBODY"
    assert refusal.data["reason"] == "unknown_station"
    assert refusal.data["status"] == 404
    assert refusal.data["remote_address"].startswith("127.0.0.1:")


async def test_registered_station_is_admitted_under_the_reject_policy(
    strict: Gateway, identities: IdentityStore
) -> None:
    await identities.save("CP-1", password=PASSWORD)
    async with connect_station(strict, headers=basic_auth("CP-1", PASSWORD)) as station:
        assert (await station.call("Heartbeat", {}, "hb"))[:2] == [3, "hb"]


# -- credentials: a hijack, a wrong password, a downgrade -----------------------------------


async def test_tc_a_03_wrong_password_is_a_recorded_refusal(
    gateway: Gateway, identities: IdentityStore, bus: InMemoryBus
) -> None:
    await identities.save("CP-1", password=PASSWORD)
    status, _, headers = await refused(gateway, headers=basic_auth("CP-1", "not-the-password"))
    assert (status, headers["WWW-Authenticate"]) == (401, 'Basic realm="csms"')
    [refusal] = await refusals(bus)
    assert (refusal.data["reason"], refusal.data["status"]) == ("auth", 401)
    assert PASSWORD not in str(refusal.data) and "not-the-password" not in str(refusal.data)


async def test_hijack_without_credentials_leaves_the_station_connected(
    gateway: Gateway, identities: IdentityStore, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    """A second connection for a connected station must authenticate at least as strongly
    as the station before it can replace the first; one without credentials cannot."""
    await identities.save("CP-1", password=PASSWORD)
    async with connect_station(gateway, headers=basic_auth("CP-1", PASSWORD)) as station:
        route = await router.lookup("CP-1")
        status, _, _ = await refused(gateway)
        assert status == 401
        assert await router.lookup("CP-1") == route
        assert (await station.call("Heartbeat", {}, "hb"))[:2] == [3, "hb"]
        [refusal] = await refusals(bus)
        assert (refusal.station_id, refusal.data["reason"]) == ("CP-1", "auth")
        assert [record.envelope.type for record in bus.records(topics.OCPP_CONNECTIONS)] == [
            "ocpp.connection.opened"
        ]


async def test_reconnection_with_the_password_replaces_the_connection(
    gateway: Gateway, identities: IdentityStore, router: InMemoryRouter
) -> None:
    await identities.save("CP-1", password=PASSWORD)
    headers = basic_auth("CP-1", PASSWORD)
    async with connect_station(gateway, headers=headers) as first:
        old = await router.lookup("CP-1")
        async with connect_station(gateway, headers=headers) as second:
            await first.websocket.wait_closed()
            assert first.websocket.close_code == 4000  # superseded
            new = await router.lookup("CP-1")
            assert new is not None and old is not None
            assert new.connection_id != old.connection_id
            assert (await second.call("Heartbeat", {}, "hb"))[:2] == [3, "hb"]


async def test_reconnection_on_another_gateway_closes_the_first_through_its_mailbox(
    gateway: Gateway, identities: IdentityStore, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    """The station's old connection is on gw-test; it connects again on gw-2 (one router,
    as replicas share Redis): gw-test closes the old one when gw-2's message arrives. A
    hijack without credentials on gw-2 closes nothing."""
    await identities.save("CP-1", password=PASSWORD)
    headers = basic_auth("CP-1", PASSWORD)
    other_settings = settings_for_tests(gateway_id="gw-2")
    async with (
        running_gateway(other_settings, bus, router, identities) as other,
        connect_station(gateway, headers=headers) as first,
    ):
        status, _, _ = await refused(other)  # no credentials
        assert status == 401
        assert (await first.call("Heartbeat", {}, "hb-1"))[:2] == [3, "hb-1"]
        async with connect_station(other, headers=headers) as second:
            await asyncio.wait_for(first.websocket.wait_closed(), 5)
            assert (first.websocket.close_code, first.websocket.close_reason) == (
                4000,
                "superseded",
            )
            route = await router.lookup("CP-1")
            assert route is not None and route.gateway_id == "gw-2"
            await eventually(lambda: gateway.connection("CP-1") is None)
            assert (await second.call("Heartbeat", {}, "hb-2"))[:2] == [3, "hb-2"]


async def test_profile_downgrade_below_the_stations_own_profile_is_refused(
    gateway: Gateway, identities: IdentityStore, bus: InMemoryBus
) -> None:
    """The station was raised to profile 2 (TLS): the right password over ws:// is a
    downgrade to profile 1, refused though this gateway's own minimum is 0."""
    await identities.save("CP-1", password=PASSWORD, security_profile=2)
    status, body, _ = await refused(gateway, headers=basic_auth("CP-1", PASSWORD))
    assert (status, body) == (
        403,
        "this station requires security profile 2 or higher; this connection has profile 1\n",
    )
    [refusal] = await refusals(bus)
    assert refusal.data["reason"] == "security_profile"
    assert (refusal.data["offered_profile"], refusal.data["required_profile"]) == (1, 2)


async def test_a_station_at_its_recorded_profile_connects(
    gateway: Gateway, identities: IdentityStore
) -> None:
    await identities.save("CP-1", password=PASSWORD, security_profile=1)
    async with connect_station(gateway, headers=basic_auth("CP-1", PASSWORD)) as station:
        assert (await station.call("Heartbeat", {}, "hb"))[:2] == [3, "hb"]


# -- password rotation (OCPP 2.0.1 A01 / 1.6 whitepaper): both valid until the new is used ---


async def test_tc_a_09_staged_password_replaces_the_old_one_once_used(
    gateway: Gateway, identities: IdentityStore
) -> None:
    await identities.save("CP-1", password=PASSWORD)
    await identities.stage_password("CP-1", "the-new-password-16")
    async with connect_station(gateway, headers=basic_auth("CP-1", PASSWORD)):
        pass  # the old one still works: the station may not have switched yet
    async with connect_station(gateway, headers=basic_auth("CP-1", "the-new-password-16")):
        pass
    stored = await identities.get("CP-1")
    assert stored is not None and stored.pending_password_hash is None
    status, _, _ = await refused(gateway, headers=basic_auth("CP-1", PASSWORD))
    assert status == 401  # the old one stopped working when the new one was first used


# -- caps and timeouts ---------------------------------------------------------------------


async def test_connections_per_client_address_are_capped(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> None:
    settings = settings_for_tests(max_connections_per_address=2)
    async with running_gateway(settings, bus, router, identities) as gateway:
        async with connect_station(gateway, "CP-1"), connect_station(gateway, "CP-2"):
            status, body, _ = await refused(gateway, station_id="CP-3")
            assert (status, body) == (429, "at most 2 connections per client address\n")
        # Closed connections give their slots back.
        await eventually(lambda: gateway.caps.total == 0)
        async with connect_station(gateway, "CP-3") as station:
            assert (await station.call("Heartbeat", {}, "hb"))[:2] == [3, "hb"]


async def test_connections_in_total_are_capped(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> None:
    settings = settings_for_tests(max_connections=1)
    async with (
        running_gateway(settings, bus, router, identities) as gateway,
        connect_station(gateway, "CP-1"),
    ):
        status, body, _ = await refused(gateway, station_id="CP-2")
        assert (status, body) == (503, "this gateway is full; retry later\n")


async def test_a_connection_that_never_sends_its_upgrade_is_dropped(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> None:
    settings = settings_for_tests(open_timeout_s=0.3)
    async with running_gateway(settings, bus, router, identities) as gateway:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"GET /ocpp/CP-1 HTTP/1.1\r\n")  # and then nothing more
        await writer.drain()
        # The gateway closes it: EOF well before this test's own 5 s would pass.
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()


# -- the parts on their own ------------------------------------------------------------------


def _refusal(station_id: str = "CP-1") -> Refusal:
    return Refusal(station_id, RefusalReason.BAD_CREDENTIALS, 401, "wrong", "10.0.0.1:4000")


def test_a_repeated_refusal_is_reported_once_per_period_with_its_count() -> None:
    throttle = RefusalThrottle(every_s=10.0)
    assert throttle.admit(_refusal(), now=0.0) == _refusal()
    assert [throttle.admit(_refusal(), now=t) for t in (1.0, 2.0, 3.0)] == [None] * 3
    assert throttle.admit(_refusal("CP-2"), now=3.0) == _refusal("CP-2")  # another station
    later = throttle.admit(_refusal(), now=10.5)
    assert later is not None and later.repeated == 3


def test_one_address_trying_many_station_ids_is_reported_a_bounded_number_of_times() -> None:
    throttle = RefusalThrottle(every_s=10.0, per_address=3, address_window_s=60.0)
    reported = [throttle.admit(_refusal(f"CP-{n}"), now=float(n)) for n in range(10)]
    assert [r is not None for r in reported] == [True] * 3 + [False] * 7
    other = Refusal("CP-X", RefusalReason.UNKNOWN_STATION, 404, "unknown", "10.0.0.2:5000")
    assert throttle.admit(other, now=9.0) == other  # another address has its own budget
    assert throttle.admit(_refusal("CP-99"), now=61.0) is not None  # a new window


def test_caps_count_per_address_and_in_total() -> None:
    caps = ConnectionCaps(total=3, per_address=2)
    for address in ("10.0.0.1", "10.0.0.1", "10.0.0.2"):
        assert caps.refusal(address) is None
        caps.take(address)
    refusal = caps.refusal("10.0.0.3")
    assert refusal is not None and refusal[0] == 503
    caps.release("10.0.0.2")
    refusal = caps.refusal("10.0.0.1")
    assert refusal is not None and refusal[0] == 429
    assert caps.refusal("10.0.0.3") is None
    caps.release("10.0.0.1")
    caps.release("10.0.0.1")
    assert (caps.total, caps.held_by("10.0.0.1")) == (0, 0)
