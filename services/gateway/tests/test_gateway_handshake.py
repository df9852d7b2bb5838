"""Handshake: paths, subprotocols, station ids, Basic auth (OCPP 2.0.1 Part 4 §3; Part 2 A00)."""

import asyncio

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.identity import IdentityStore
from csms_core.router.memory import InMemoryRouter
from csms_gateway.server import Gateway
from tests.kits.gateway import basic_auth, connect_station, eventually


async def refused(gateway: Gateway, **kwargs: object) -> tuple[int, str, dict[str, str]]:
    with pytest.raises(InvalidStatus) as refusal:
        async with connect_station(gateway, **kwargs):  # type: ignore[arg-type]
            pass
    response = refusal.value.response
    return response.status_code, response.body.decode(), dict(response.headers.raw_items())


@pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1", "ocpp2.1"])
async def test_each_version_is_negotiated(gateway: Gateway, subprotocol: str) -> None:
    async with connect_station(gateway, subprotocols=(subprotocol,)) as station:
        assert station.websocket.subprotocol == subprotocol


async def test_newest_offered_version_is_preferred(gateway: Gateway) -> None:
    offered = ("ocpp1.6", "ocpp2.0.1", "ocpp2.1")
    async with connect_station(gateway, subprotocols=offered) as station:
        assert station.websocket.subprotocol == "ocpp2.1"


async def test_unknown_versions_are_skipped(gateway: Gateway) -> None:
    async with connect_station(gateway, subprotocols=("ocpp1.5", "ocpp1.6")) as station:
        assert station.websocket.subprotocol == "ocpp1.6"


@pytest.mark.parametrize("offered", [(), ("ocpp1.5",)])
async def test_no_supported_subprotocol_is_refused_with_400(
    gateway: Gateway, offered: tuple[str, ...]
) -> None:
    status, body, _ = await refused(gateway, subprotocols=offered)
    assert status == 400
    assert body == (
        "no supported OCPP subprotocol offered; this CSMS supports ocpp2.1, ocpp2.0.1, ocpp1.6\n"
    )


async def test_station_id_longer_than_48_characters_is_refused(gateway: Gateway) -> None:
    status, body, _ = await refused(gateway, station_id="C" * 49)
    assert (status, body) == (400, "station id is 49 characters; at most 48 allowed\n")


async def test_station_id_of_48_characters_is_accepted(gateway: Gateway) -> None:
    async with connect_station(gateway, station_id="C" * 48) as station:
        assert station.websocket.subprotocol == "ocpp2.0.1"


@pytest.mark.parametrize("station_id", ["CP%201", "CP%2F1", "CP%3B1", "%FF"])
async def test_unsafe_station_id_is_refused(gateway: Gateway, station_id: str) -> None:
    status, body, _ = await refused(gateway, station_id=station_id)
    assert status == 400
    assert body


async def test_percent_encoded_station_id_is_decoded(
    gateway: Gateway, router: InMemoryRouter
) -> None:
    async with connect_station(gateway, station_id="CP%2B1"):
        route = await router.lookup("CP+1")
        assert route is not None


async def test_other_paths_are_404(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}") as client:
        assert (await client.get("/ocpp")).status_code == 404
        assert (await client.get("/ocpp/a/b")).status_code == 404
        assert (await client.get("/")).status_code == 404


async def test_healthz_and_metrics(gateway: Gateway) -> None:
    async with connect_station(gateway) as station:
        await station.call("Heartbeat", {})
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}") as client:
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")
    assert (health.status_code, health.text) == (200, "ok")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain; version=")
    assert 'csms_gateway_frames_received_total{action="Heartbeat",message_type="Call"} 1.0' in (
        metrics.text
    )
    assert "csms_gateway_publish_seconds_count" in metrics.text


async def test_tc_a_01_basic_auth_valid(
    gateway: Gateway, identities: IdentityStore, bus: InMemoryBus
) -> None:
    await identities.save("CP-1", password="s3cret-password-16")
    headers = basic_auth("CP-1", "s3cret-password-16")
    async with connect_station(gateway, headers=headers) as station:
        await station.call("Heartbeat", {})
    opened = bus.records(topics.OCPP_CONNECTIONS)[0].envelope
    assert opened.type == "ocpp.connection.opened"
    assert opened.data["security_profile"] == 1


async def test_tc_a_02_basic_auth_username_is_not_the_station_id(
    gateway: Gateway, identities: IdentityStore
) -> None:
    await identities.save("CP-1", password="s3cret-password-16")
    headers = basic_auth("CP-2", "s3cret-password-16")
    status, _, response_headers = await refused(gateway, headers=headers)
    assert status == 401
    assert response_headers["WWW-Authenticate"] == 'Basic realm="csms"'


async def test_tc_a_03_basic_auth_invalid_password(
    gateway: Gateway, identities: IdentityStore
) -> None:
    await identities.save("CP-1", password="s3cret-password-16")
    status, _, response_headers = await refused(gateway, headers=basic_auth("CP-1", "wrong"))
    assert status == 401
    assert response_headers["WWW-Authenticate"] == 'Basic realm="csms"'


async def test_station_with_password_must_authenticate(
    gateway: Gateway, identities: IdentityStore
) -> None:
    await identities.save("CP-1", password="s3cret-password-16")
    status, _, _ = await refused(gateway)
    assert status == 401


async def test_station_without_identity_connects_unsecured(
    gateway: Gateway, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    async with connect_station(gateway, subprotocols=("ocpp1.6",)):
        route = await router.lookup("CP-1")
        assert route is not None
    await eventually(lambda: len(bus.records(topics.OCPP_CONNECTIONS)) == 2)
    [opened, closed] = [record.envelope for record in bus.records(topics.OCPP_CONNECTIONS)]
    assert route.gateway_id == "gw-test"
    assert route.ocpp_version == "1.6"
    assert opened.type == "ocpp.connection.opened"
    assert opened.source == "csms/gateway/gw-test"
    assert opened.station_id == "CP-1"
    assert opened.ocpp_version == "1.6"
    assert opened.data["gateway_id"] == "gw-test"
    assert opened.data["connection_id"] == route.connection_id
    assert opened.data["subprotocol"] == "ocpp1.6"
    assert opened.data["security_profile"] == 0
    assert opened.data["remote_address"].startswith("127.0.0.1:")
    assert closed.type == "ocpp.connection.closed"
    assert closed.data == {
        "gateway_id": "gw-test",
        "connection_id": route.connection_id,
        "subprotocol": "ocpp1.6",
        "close_code": 1000,
        "reason": "",
    }
    assert await router.lookup("CP-1") is None


async def test_two_authorization_headers_on_the_upgrade_are_400(gateway: Gateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(
        b"GET /ocpp/CP-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n"
        b"Authorization: Basic Q1AtMTpwYXNzd29yZC0xLXBhc3N3b3Jk\r\n"
        b"Authorization: Basic Q1AtMTpvdGhlci1wYXNzd29yZC1vdGhlcg==\r\n\r\n"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"one Authorization header" in answer
