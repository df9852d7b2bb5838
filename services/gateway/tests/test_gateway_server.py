"""Connections over their lifetime: routes, superseding, shutdown; and a real OCPP client."""

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as call_result201
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from csms_core import topics
from csms_core.bus.memory import InMemoryBus
from csms_core.identity import IdentityStore
from csms_core.router import CommandClient, CommandOutcome, fixed
from csms_core.router.memory import InMemoryRouter
from csms_gateway.server import SOMAXCONN, Gateway, backlog_warning
from tests.kits.gateway import (
    connect_station,
    eventually,
    running_gateway,
    settings_for_tests,
    station_url,
)


async def test_new_connection_supersedes_the_old_one(
    gateway: Gateway, router: InMemoryRouter, bus: InMemoryBus
) -> None:
    async with connect_station(gateway) as old:
        old_route = await router.lookup("CP-1")
        async with connect_station(gateway) as new:
            await old.websocket.wait_closed()
            assert (old.websocket.close_code, old.websocket.close_reason) == (4000, "superseded")
            new_route = await router.lookup("CP-1")
            assert new_route is not None
            assert old_route is not None
            assert new_route.connection_id != old_route.connection_id
            assert (await new.call("Heartbeat", {}, message_id="hb"))[:2] == [3, "hb"]
            await eventually(lambda: len(bus.records(topics.OCPP_CONNECTIONS)) == 3)
            # The old connection's cleanup must not remove the new route.
            assert await router.lookup("CP-1") == new_route
    closed = bus.records(topics.OCPP_CONNECTIONS)[2].envelope
    assert closed.type == "ocpp.connection.closed"
    assert closed.data["connection_id"] == old_route.connection_id
    assert (closed.data["close_code"], closed.data["reason"]) == (4000, "superseded")


async def test_graceful_shutdown_closes_with_going_away(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> None:
    async with running_gateway(settings_for_tests(), bus, router, identities) as gateway:
        websocket = await connect(
            station_url(gateway, "CP-1"), subprotocols=[Subprotocol("ocpp2.0.1")]
        )
    await websocket.wait_closed()
    assert websocket.close_code == 1001
    assert await router.lookup("CP-1") is None
    closed = bus.records(topics.OCPP_CONNECTIONS)[-1].envelope
    assert closed.type == "ocpp.connection.closed"
    assert closed.data["close_code"] == 1001


async def test_routes_are_refreshed_while_connected(
    bus: InMemoryBus, router: InMemoryRouter, identities: IdentityStore
) -> None:
    settings = settings_for_tests(route_ttl_s=0.3, route_refresh_s=0.1)
    async with (
        running_gateway(settings, bus, router, identities) as gateway,
        connect_station(gateway),
    ):
        await asyncio.sleep(0.8)
        route = await router.lookup("CP-1")
        assert route is not None
        assert route.gateway_id == "gw-test"


async def test_ocpp_package_v201_charge_point(
    gateway: Gateway, bus: InMemoryBus, router: InMemoryRouter
) -> None:
    class Station(ChargePoint201):  # type: ignore[misc]
        @on("Reset")  # type: ignore[untyped-decorator]
        def on_reset(self, type: str, **_: Any) -> Any:
            return call_result201.Reset(status="Accepted")

    async with (
        connect(station_url(gateway, "CP-1"), subprotocols=[Subprotocol("ocpp2.0.1")]) as ws,
        CommandClient(router, "test") as client,
    ):
        station = Station("CP-1", ws)
        listener = asyncio.create_task(station.start())
        boot = await station.call(
            call201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
            )
        )
        reset = await client.call("CP-1", fixed("Reset", {"type": "Immediate"}), 5)
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    assert boot.status == "Pending"  # no sessions service in this test: the fallback
    assert reset.outcome is CommandOutcome.RESULT
    assert reset.payload == {"status": "Accepted"}
    inbound = bus.records(topics.OCPP_INBOUND)[0].envelope
    assert inbound.data["payload"] == {
        "chargingStation": {"model": "M", "vendorName": "V"},
        "reason": "PowerUp",
    }


async def test_ocpp_package_v16_charge_point(gateway: Gateway, bus: InMemoryBus) -> None:
    async with connect(station_url(gateway, "CP-16"), subprotocols=[Subprotocol("ocpp1.6")]) as ws:
        station = ChargePoint16("CP-16", ws)
        listener = asyncio.create_task(station.start())
        heartbeat = await station.call(call16.Heartbeat())
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    assert heartbeat.current_time.endswith("Z")
    assert bus.records(topics.OCPP_INBOUND)[0].envelope.station_id == "CP-16"


def listen_backlog(port: int) -> tuple[int, int]:
    """(the backlog of the socket listening on ``port``, the kernel's cap of it)."""
    somaxconn = int(SOMAXCONN.read_text())
    listing = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    )
    [line] = listing.stdout.splitlines()
    return int(line.split()[2]), somaxconn  # a listening socket's Send-Q is its backlog


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read a backlog")
async def test_the_listening_socket_queues_a_storms_connections(gateway: Gateway) -> None:
    """The accept queue holds CSMS_LISTEN_BACKLOG connections (asyncio's default is 100:
    a reconnect storm's SYNs beyond it are dropped and retried after seconds)."""
    assert gateway.port is not None
    backlog, somaxconn = listen_backlog(gateway.port)

    assert backlog == min(gateway.settings.listen_backlog, somaxconn)
    assert backlog > 100


def test_a_backlog_the_kernel_caps_is_named_in_a_warning(tmp_path: Path) -> None:
    somaxconn = tmp_path / "somaxconn"
    somaxconn.write_text("4096\n")
    warning = backlog_warning(16384, somaxconn)
    assert warning is not None
    assert "CSMS_LISTEN_BACKLOG 16384 is capped at 4096 by net.core.somaxconn" in warning
    assert backlog_warning(4096, somaxconn) is None  # what it asks, the kernel allows
    somaxconn.write_text("65535\n")
    assert backlog_warning(16384, somaxconn) is None


def test_no_backlog_warning_where_the_kernel_limit_cannot_be_read(tmp_path: Path) -> None:
    assert backlog_warning(4096, tmp_path / "absent") is None
    (tmp_path / "garbled").write_text("many")
    assert backlog_warning(4096, tmp_path / "garbled") is None
