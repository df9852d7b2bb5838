"""TLS on the OCPP port: security profiles 2 and 3 (OCPP 2.0.1 Part 2 A00; 1.6 whitepaper).

Real TLS on 127.0.0.1 with a throwaway CA made at test time (trustme).
"""

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from pydantic import ValidationError
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.typing import Subprotocol

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.events import ConnectionOpened
from csms_core.identity import IdentityStore
from csms_core.router.memory import InMemoryRouter
from csms_gateway.handshake import security_profile
from csms_gateway.server import Gateway
from tests.kits.gateway import basic_auth, connect_station, running_gateway, settings_for_tests

PASSWORD = "s3cret-password-16"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> dict[str, Path]:
    """Server chain and key for 127.0.0.1/localhost, and the CA that signs stations."""
    server = ca.issue_cert("127.0.0.1", "localhost")
    files = {
        "tls_cert_file": tmp_path / "server-chain.pem",
        "tls_key_file": tmp_path / "server-key.pem",
        "tls_client_ca_file": tmp_path / "station-ca.pem",
    }
    files["tls_cert_file"].write_bytes(b"".join(pem.bytes() for pem in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(files["tls_key_file"]))
    ca.cert_pem.write_to_path(str(files["tls_client_ca_file"]))
    return files


async def tls_gateway(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore, **settings: Any
) -> AsyncIterator[Gateway]:
    async with running_gateway(settings_for_tests(**settings), bus, router, identities) as gateway:
        yield gateway


@pytest.fixture
async def gateway(
    bus: InMemoryBus,
    router: InMemoryRouter,
    identities: IdentityStore,
    tls_files: dict[str, Path],
) -> AsyncIterator[Gateway]:
    async for running in tls_gateway(bus, router, identities, **tls_files):
        yield running


@pytest.fixture
async def strict_gateway(
    bus: InMemoryBus,
    router: InMemoryRouter,
    identities: IdentityStore,
    tls_files: dict[str, Path],
) -> AsyncIterator[Gateway]:
    """A gateway that takes profile 3 only."""
    async for running in tls_gateway(bus, router, identities, **tls_files, min_security_profile=3):
        yield running


def station_tls(ca: trustme.CA, common_name: str | None = None) -> ssl.SSLContext:
    """A station's TLS context trusting ``ca``; with a client certificate if ``common_name``."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if common_name is not None:
        ca.issue_cert(common_name, common_name=common_name).configure_cert(context)
    return context


async def refused(gateway: Gateway, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as refusal:
        async with connect_station(gateway, **kwargs):
            pass
    response = refusal.value.response
    return response.status_code, response.body.decode()


def opened_profile(bus: InMemoryBus) -> int:
    # Read with the topic's model: profiles 2 and 3 are part of the contract.
    opened = topics.OCPP_CONNECTIONS.decode(bus.records(topics.OCPP_CONNECTIONS)[0])
    assert opened.type == "ocpp.connection.opened"
    assert isinstance(opened, ConnectionOpened)
    profile = opened.data.security_profile
    assert isinstance(profile, int)
    return profile


async def metrics_text(gateway: Gateway, ca: trustme.CA) -> str:
    base_url = f"https://127.0.0.1:{gateway.port}"
    async with httpx.AsyncClient(base_url=base_url, verify=station_tls(ca)) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


# -- profile 2: TLS server certificate + Basic auth ------------------------------------------


@pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1"])
async def test_tc_a_04_tc_086_profile_2_tls_and_basic_auth(
    gateway: Gateway, identities: IdentityStore, bus: InMemoryBus, ca: trustme.CA, subprotocol: str
) -> None:
    await identities.save("CP-1", password=PASSWORD)
    async with connect_station(
        gateway,
        subprotocols=(subprotocol,),
        headers=basic_auth("CP-1", PASSWORD),
        tls=station_tls(ca),
    ) as station:
        await station.call("Heartbeat", {})
    assert opened_profile(bus) == 2


async def test_profile_2_wrong_password_is_refused_with_401(
    gateway: Gateway, identities: IdentityStore, ca: trustme.CA
) -> None:
    await identities.save("CP-1", password=PASSWORD)
    status, _ = await refused(gateway, headers=basic_auth("CP-1", "wrong"), tls=station_tls(ca))
    assert status == 401


async def test_tls_without_credentials_is_profile_0(
    gateway: Gateway, bus: InMemoryBus, ca: trustme.CA
) -> None:
    async with connect_station(gateway, tls=station_tls(ca)) as station:
        await station.call("Heartbeat", {})
    assert opened_profile(bus) == 0


# -- profile 3: mutual TLS -------------------------------------------------------------------


@pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1"])
async def test_tc_a_07_tc_087_profile_3_client_certificate_needs_no_password(
    gateway: Gateway, identities: IdentityStore, bus: InMemoryBus, ca: trustme.CA, subprotocol: str
) -> None:
    await identities.save("CP-1", password=PASSWORD)
    async with connect_station(
        gateway, subprotocols=(subprotocol,), tls=station_tls(ca, "CP-1")
    ) as station:
        await station.call("Heartbeat", {})
    assert opened_profile(bus) == 3


async def test_client_certificate_of_another_station_is_refused_with_403(
    gateway: Gateway, identities: IdentityStore, bus: InMemoryBus, ca: trustme.CA
) -> None:
    await identities.save("CP-1", password=PASSWORD)
    status, body = await refused(
        gateway, headers=basic_auth("CP-1", PASSWORD), tls=station_tls(ca, "CP-2")
    )
    assert (status, body) == (403, "the client certificate is for 'CP-2', not for station 'CP-1'\n")
    assert bus.records(topics.OCPP_CONNECTIONS) == []
    assert 'csms_gateway_handshakes_refused_total{reason="certificate"} 1.0' in (
        await metrics_text(gateway, ca)
    )


async def test_tc_a_08_client_certificate_of_an_unknown_ca_fails_the_tls_handshake(
    gateway: Gateway, bus: InMemoryBus, ca: trustme.CA
) -> None:
    context = station_tls(ca)
    trustme.CA().issue_cert("CP-1", common_name="CP-1").configure_cert(context)
    # TLS 1.3: the client's handshake is done before the gateway checks its certificate, so
    # the refusal shows as EOF instead of an HTTP response (TLS 1.2: an SSLError right away).
    with pytest.raises((ssl.SSLError, InvalidMessage)):
        async with connect_station(gateway, tls=context):
            pass
    assert bus.records(topics.OCPP_CONNECTIONS) == []


async def test_profile_below_the_minimum_is_refused_with_403(
    strict_gateway: Gateway, identities: IdentityStore, ca: trustme.CA
) -> None:
    await identities.save("CP-1", password=PASSWORD)
    status, body = await refused(
        strict_gateway, headers=basic_auth("CP-1", PASSWORD), tls=station_tls(ca)
    )
    assert (status, body) == (
        403,
        "this CSMS requires security profile 3 or higher; this connection has profile 2\n",
    )
    assert 'csms_gateway_handshakes_refused_total{reason="security_profile"} 1.0' in (
        await metrics_text(strict_gateway, ca)
    )


async def test_profile_3_meets_the_minimum(
    strict_gateway: Gateway, bus: InMemoryBus, ca: trustme.CA
) -> None:
    async with connect_station(strict_gateway, tls=station_tls(ca, "CP-1")) as station:
        await station.call("Heartbeat", {})
    assert opened_profile(bus) == 3


# -- the TLS listener ------------------------------------------------------------------------


async def test_plain_ws_to_the_tls_listener_fails(gateway: Gateway, bus: InMemoryBus) -> None:
    with pytest.raises(InvalidMessage):
        async with connect(
            f"ws://127.0.0.1:{gateway.port}/ocpp/CP-1",
            subprotocols=[Subprotocol("ocpp2.0.1")],
            open_timeout=5,
        ):
            pass
    assert bus.records(topics.OCPP_CONNECTIONS) == []


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_tc_a_06_tls_below_1_2_is_refused(gateway: Gateway, ca: trustme.CA) -> None:
    context = station_tls(ca)
    # Let the station offer TLS 1.1 at all (OpenSSL's default security level forbids it).
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1_1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    # The gateway's OpenSSL drops the connection after the ClientHello.
    with pytest.raises((ssl.SSLError, ConnectionResetError)) as failure:
        async with connect_station(gateway, tls=context):
            pass
    # Not the station's own OpenSSL refusing to offer TLS 1.1: it got as far as the gateway.
    assert getattr(failure.value, "reason", None) != "NO_PROTOCOLS_AVAILABLE"


async def test_tls_1_2_is_accepted(gateway: Gateway, ca: trustme.CA) -> None:
    context = station_tls(ca, "CP-1")
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    async with connect_station(gateway, tls=context) as station:
        await station.call("Heartbeat", {})


# -- settings and the profile rule (no sockets) ----------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"tls_cert_file": "server.pem"}, "set both CSMS_TLS_CERT_FILE and CSMS_TLS_KEY_FILE"),
        ({"tls_key_file": "server.key"}, "set both CSMS_TLS_CERT_FILE and CSMS_TLS_KEY_FILE"),
        ({"tls_client_ca_file": "ca.pem"}, "CSMS_TLS_CLIENT_CA_FILE needs CSMS_TLS_CERT_FILE"),
        ({"min_security_profile": 2}, "CSMS_MIN_SECURITY_PROFILE 2 or 3 needs TLS"),
        (
            {"tls_cert_file": "s.pem", "tls_key_file": "s.key", "min_security_profile": 3},
            "CSMS_MIN_SECURITY_PROFILE 3 needs CSMS_TLS_CLIENT_CA_FILE",
        ),
    ],
)
def test_inconsistent_tls_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings_for_tests(**settings)


def test_tls_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSMS_TLS_CERT_FILE", "/etc/csms/server.pem")
    monkeypatch.setenv("CSMS_TLS_KEY_FILE", "/etc/csms/server.key")
    settings = settings_for_tests()
    assert settings.tls
    assert settings.tls_key_file == Path("/etc/csms/server.key")
    assert settings.min_security_profile == 0


@pytest.mark.parametrize(
    ("tls", "certificate", "password", "profile"),
    [
        (False, False, False, 0),
        (False, False, True, 1),
        (True, False, False, 0),
        (True, False, True, 2),
        (True, True, False, 3),
        (True, True, True, 3),
    ],
)
def test_security_profile(tls: bool, certificate: bool, password: bool, profile: int) -> None:
    assert security_profile(tls=tls, certificate=certificate, password=password) == profile
