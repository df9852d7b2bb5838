"""Stations that also keep a local authorization list and take reservations (1.6 and 2.0.1).

Subclasses of tests.stations' stations: they answer SendLocalList, GetLocalListVersion,
ReserveNow and CancelReservation like a conformant station would, and record each call.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ocpp.v16
import ocpp.v201
from ocpp.routing import on
from websockets.asyncio.client import connect

from tests.stations import SUBPROTOCOL, Station16, Station201


class _ListHolder:
    """The station's local list as OCPP 1.6 §5.15 / 2.0.1 D01 describe its updates."""

    list_version: int = 0
    local_list: dict[str, dict[str, Any]]
    reservations: set[int]

    def apply(self, version: int, update_type: str, items: list[dict[str, Any]], key: str) -> str:
        if update_type == "Differential" and version <= self.list_version:
            return "VersionMismatch"
        if update_type == "Full":
            self.local_list = {}
        info_key = "id_tag_info" if key == "id_tag" else "id_token_info"
        for item in items:
            token = item[key] if key == "id_tag" else item[key]["id_token"]
            if info_key in item:
                self.local_list[token] = item[info_key]
            else:
                self.local_list.pop(token, None)
        self.list_version = version
        return "Accepted"


class AuthStation16(Station16, _ListHolder):
    @on("SendLocalList")  # type: ignore[untyped-decorator]
    def on_send_local_list(self, **payload: Any) -> Any:
        self.record("SendLocalList", **payload)
        items = payload.get("local_authorization_list", [])
        status = self.apply(payload["list_version"], payload["update_type"], items, "id_tag")
        return ocpp.v16.call_result.SendLocalList(status=status)

    @on("GetLocalListVersion")  # type: ignore[untyped-decorator]
    def on_get_local_list_version(self, **payload: Any) -> Any:
        return ocpp.v16.call_result.GetLocalListVersion(list_version=self.list_version)

    @on("ReserveNow")  # type: ignore[untyped-decorator]
    def on_reserve_now(self, **payload: Any) -> Any:
        self.record("ReserveNow", **payload)
        self.reservations.add(payload["reservation_id"])
        return ocpp.v16.call_result.ReserveNow(status="Accepted")

    @on("CancelReservation")  # type: ignore[untyped-decorator]
    def on_cancel_reservation(self, **payload: Any) -> Any:
        self.record("CancelReservation", **payload)
        known = payload["reservation_id"] in self.reservations
        self.reservations.discard(payload["reservation_id"])
        return ocpp.v16.call_result.CancelReservation(status="Accepted" if known else "Rejected")


class AuthStation201(Station201, _ListHolder):
    @on("SendLocalList")  # type: ignore[untyped-decorator]
    def on_send_local_list(self, **payload: Any) -> Any:
        self.record("SendLocalList", **payload)
        items = payload.get("local_authorization_list", [])
        status = self.apply(payload["version_number"], payload["update_type"], items, "id_token")
        return ocpp.v201.call_result.SendLocalList(status=status)

    @on("GetLocalListVersion")  # type: ignore[untyped-decorator]
    def on_get_local_list_version(self, **payload: Any) -> Any:
        return ocpp.v201.call_result.GetLocalListVersion(version_number=self.list_version)

    @on("ReserveNow")  # type: ignore[untyped-decorator]
    def on_reserve_now(self, **payload: Any) -> Any:
        self.record("ReserveNow", **payload)
        self.reservations.add(payload["id"])
        return ocpp.v201.call_result.ReserveNow(status="Accepted")

    @on("CancelReservation")  # type: ignore[untyped-decorator]
    def on_cancel_reservation(self, **payload: Any) -> Any:
        self.record("CancelReservation", **payload)
        known = payload["reservation_id"] in self.reservations
        self.reservations.discard(payload["reservation_id"])
        return ocpp.v201.call_result.CancelReservation(status="Accepted" if known else "Rejected")


AuthStation = AuthStation16 | AuthStation201
_CLASSES: dict[str, type[AuthStation16] | type[AuthStation201]] = {
    "1.6": AuthStation16,
    "2.0.1": AuthStation201,
}


@asynccontextmanager
async def auth_station(url: str, station_id: str, version: str) -> AsyncIterator[AuthStation]:
    """A connected, running station with a local list; closed on exit."""
    async with connect(
        f"{url}/ocpp/{station_id}",
        subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
        open_timeout=10,
    ) as websocket:
        client = _CLASSES[version](station_id, websocket)
        client.received, client.local_list, client.reservations = [], {}, set()
        runner = asyncio.create_task(client.start())
        try:
            yield client
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
