"""Stations played by an independent OCPP client: the ``ocpp`` package's ChargePoint.

Each version's station answers the CSMS-initiated calls the tests send
(Reset, TriggerMessage, ChangeAvailability) with Accepted and records them.
"""

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ocpp.v16
import ocpp.v21
import ocpp.v201
from ocpp.routing import on
from websockets.asyncio.client import ClientConnection, connect

SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}


class _Recorder:
    received: list[tuple[str, dict[str, Any]]]

    def record(self, action: str, **payload: Any) -> None:
        self.received.append((action, payload))


class Station16(ocpp.v16.ChargePoint, _Recorder):  # type: ignore[misc]
    @on("Reset")  # type: ignore[untyped-decorator]
    def on_reset(self, **payload: Any) -> Any:
        self.record("Reset", **payload)
        return ocpp.v16.call_result.Reset(status="Accepted")

    @on("TriggerMessage")  # type: ignore[untyped-decorator]
    def on_trigger_message(self, **payload: Any) -> Any:
        self.record("TriggerMessage", **payload)
        return ocpp.v16.call_result.TriggerMessage(status="Accepted")

    @on("ChangeAvailability")  # type: ignore[untyped-decorator]
    def on_change_availability(self, **payload: Any) -> Any:
        self.record("ChangeAvailability", **payload)
        return ocpp.v16.call_result.ChangeAvailability(status="Accepted")


class Station201(ocpp.v201.ChargePoint, _Recorder):  # type: ignore[misc]
    @on("Reset")  # type: ignore[untyped-decorator]
    def on_reset(self, **payload: Any) -> Any:
        self.record("Reset", **payload)
        return ocpp.v201.call_result.Reset(status="Accepted")

    @on("TriggerMessage")  # type: ignore[untyped-decorator]
    def on_trigger_message(self, **payload: Any) -> Any:
        self.record("TriggerMessage", **payload)
        return ocpp.v201.call_result.TriggerMessage(status="Accepted")

    @on("ChangeAvailability")  # type: ignore[untyped-decorator]
    def on_change_availability(self, **payload: Any) -> Any:
        self.record("ChangeAvailability", **payload)
        return ocpp.v201.call_result.ChangeAvailability(status="Accepted")

    @on("CostUpdated")  # type: ignore[untyped-decorator]
    def on_cost_updated(self, **payload: Any) -> Any:
        self.record("CostUpdated", **payload)
        return ocpp.v201.call_result.CostUpdated()


class Station21(ocpp.v21.ChargePoint, _Recorder):  # type: ignore[misc]
    @on("Reset")  # type: ignore[untyped-decorator]
    def on_reset(self, **payload: Any) -> Any:
        self.record("Reset", **payload)
        return ocpp.v21.call_result.Reset(status="Accepted")

    @on("TriggerMessage")  # type: ignore[untyped-decorator]
    def on_trigger_message(self, **payload: Any) -> Any:
        self.record("TriggerMessage", **payload)
        return ocpp.v21.call_result.TriggerMessage(status="Accepted")

    @on("ChangeAvailability")  # type: ignore[untyped-decorator]
    def on_change_availability(self, **payload: Any) -> Any:
        self.record("ChangeAvailability", **payload)
        return ocpp.v21.call_result.ChangeAvailability(status="Accepted")

    @on("CostUpdated")  # type: ignore[untyped-decorator]
    def on_cost_updated(self, **payload: Any) -> Any:
        self.record("CostUpdated", **payload)
        return ocpp.v21.call_result.CostUpdated()

    @on("RequestStartTransaction")  # type: ignore[untyped-decorator]
    def on_request_start(self, **payload: Any) -> Any:
        """Accepted (a web payment's start, say); the test sends the TransactionEvent."""
        self.record("RequestStartTransaction", **payload)
        return ocpp.v21.call_result.RequestStartTransaction(status="Accepted")

    @on("NotifyWebPaymentStarted")  # type: ignore[untyped-decorator]
    def on_web_payment_started(self, **payload: Any) -> Any:
        """A driver is paying for an EVSE on the web (it would show so)."""
        self.record("NotifyWebPaymentStarted", **payload)
        return ocpp.v21.call_result.NotifyWebPaymentStarted()

    # The ocpp package's 2.1 ChargePoint leaves a call it has no handler for unanswered
    # (its 2.0.1 one answers NotImplemented), so the security service's inventory request
    # after a boot would hold every later command for its timeout. A new station holds
    # no CA certificates: it says so, and is not recorded (the tests count their calls).
    @on("GetInstalledCertificateIds")  # type: ignore[untyped-decorator]
    def on_get_installed_certificate_ids(self, **payload: Any) -> Any:
        return ocpp.v21.call_result.GetInstalledCertificateIds(status="NotFound")


Station = Station16 | Station201 | Station21
_CLASSES: dict[str, type[Station16] | type[Station201] | type[Station21]] = {
    "1.6": Station16,
    "2.0.1": Station201,
    "2.1": Station21,
}


def basic_auth(station_id: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@asynccontextmanager
async def station(
    url: str,
    station_id: str,
    version: str,
    password: str | None = None,
    *,
    compression: str | None = None,
) -> AsyncIterator[Station]:
    """A connected, running station client; closed on exit. ``compression``: "deflate" for a
    station that offers permessage-deflate; by default none, as most stations do, so the
    gateway reads its frames on its direct path (``csms_gateway.direct``)."""
    headers = basic_auth(station_id, password) if password else None
    async with connect(
        f"{url}/ocpp/{station_id}",
        subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
        additional_headers=headers,
        open_timeout=10,
        compression=compression,
    ) as websocket:
        client = _CLASSES[version](station_id, websocket)
        client.received = []
        runner = asyncio.create_task(client.start())
        try:
            yield client
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)


def websocket_of(client: Station) -> ClientConnection:
    connection: ClientConnection = client._connection
    return connection


def boot_call(version: str) -> Any:
    """A BootNotification request for ``version``."""
    if version == "1.6":
        return ocpp.v16.call.BootNotification(
            charge_point_vendor="TestVendor", charge_point_model="TestModel"
        )
    module = ocpp.v201 if version == "2.0.1" else ocpp.v21
    return module.call.BootNotification(
        charging_station={"vendor_name": "TestVendor", "model": "TestModel"}, reason="PowerUp"
    )


def heartbeat_call(version: str) -> Any:
    module = {"1.6": ocpp.v16, "2.0.1": ocpp.v201, "2.1": ocpp.v21}[version]
    return module.call.Heartbeat()


def status_call(version: str, connector: int, status: str, timestamp: str) -> Any:
    """A StatusNotification (1.6 status names differ: Available/Charging/...)."""
    if version == "1.6":
        return ocpp.v16.call.StatusNotification(
            connector_id=connector, error_code="NoError", status=status, timestamp=timestamp
        )
    module = ocpp.v201 if version == "2.0.1" else ocpp.v21
    return module.call.StatusNotification(
        timestamp=timestamp, connector_status=status, evse_id=connector, connector_id=1
    )


def authorize_call(version: str, token: str) -> Any:
    if version == "1.6":
        return ocpp.v16.call.Authorize(id_tag=token)
    module = ocpp.v201 if version == "2.0.1" else ocpp.v21
    return module.call.Authorize(id_token={"id_token": token, "type": "ISO14443"})


def _module_2x(version: str) -> Any:
    return ocpp.v201 if version == "2.0.1" else ocpp.v21


def start_transaction_call(token: str, meter_start: int, timestamp: str) -> Any:
    """An OCPP 1.6 StartTransaction on connector 1."""
    return ocpp.v16.call.StartTransaction(
        connector_id=1, id_tag=token, meter_start=meter_start, timestamp=timestamp
    )


def meter_values_call_v16(transaction_id: int, wh: int, power_w: int, timestamp: str) -> Any:
    """An OCPP 1.6 MeterValues of a transaction: the energy register and the power."""
    sampled = [
        {"value": str(wh), "unit": "Wh", "measurand": "Energy.Active.Import.Register"},
        {"value": str(power_w), "unit": "W", "measurand": "Power.Active.Import"},
    ]
    return ocpp.v16.call.MeterValues(
        connector_id=1,
        transaction_id=transaction_id,
        meter_value=[{"timestamp": timestamp, "sampled_value": sampled}],
    )


def stop_transaction_call(transaction_id: int, meter_stop: int, timestamp: str) -> Any:
    return ocpp.v16.call.StopTransaction(
        transaction_id=transaction_id, meter_stop=meter_stop, timestamp=timestamp, reason="Local"
    )


def transaction_event_call(
    version: str,
    event_type: str,
    seq_no: int,
    transaction_id: str,
    timestamp: str,
    wh: float,
    token: str | None = None,
) -> Any:
    """A 2.x TransactionEvent on EVSE 1 with the energy register reading ``wh``."""
    context = {"Started": "Transaction.Begin", "Ended": "Transaction.End"}
    sampled = {
        "value": wh,
        "measurand": "Energy.Active.Import.Register",
        "context": context.get(event_type, "Sample.Periodic"),
    }
    info: dict[str, Any] = {"transaction_id": transaction_id}
    if event_type == "Ended":
        info["stopped_reason"] = "Local"
    return _module_2x(version).call.TransactionEvent(
        event_type=event_type,
        timestamp=timestamp,
        trigger_reason="Authorized" if token else "MeterValuePeriodic",
        seq_no=seq_no,
        transaction_info=info,
        evse={"id": 1, "connector_id": 1} if event_type == "Started" else None,
        id_token={"id_token": token, "type": "ISO14443"} if token else None,
        meter_value=[{"timestamp": timestamp, "sampled_value": [sampled]}],
    )
