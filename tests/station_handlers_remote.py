"""Stations that answer remote control and configuration calls, played by the ``ocpp`` package.

``Station16Remote`` keeps 1.6 configuration keys and starts a transaction after
accepting RemoteStartTransaction; ``Station201Remote`` keeps a small device model,
answers Get/SetVariables, reports it in two NotifyReport parts after GetBaseReport
and starts a transaction (TransactionEvent with the remoteStartId) after
RequestStartTransaction. What a station sends on its own after answering is
recorded in ``sent`` (the answers it got), so a test can wait for it.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ocpp.v16
import ocpp.v201
from ocpp.routing import after, on
from websockets.asyncio.client import connect

from tests.stations import SUBPROTOCOL, Station16, Station201

NOW = "2026-11-25T10:00:00Z"


class _Follows:
    """What the station sent on its own after answering, and the answers it got."""

    sent: asyncio.Queue[tuple[str, Any]]

    async def send(self, action: str, request: Any) -> None:
        try:
            answer: Any = await self.call(request)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - the test reads the failure from the queue
            answer = exc
        await self.sent.put((action, answer))


class Station16Remote(Station16, _Follows):
    configuration: dict[str, tuple[str, bool]]

    @on("RemoteStartTransaction")  # type: ignore[untyped-decorator]
    def on_remote_start(self, **payload: Any) -> Any:
        self.record("RemoteStartTransaction", **payload)
        return ocpp.v16.call_result.RemoteStartTransaction(status="Accepted")

    @after("RemoteStartTransaction")  # type: ignore[untyped-decorator]
    async def start_transaction(self, id_tag: str, connector_id: int = 1, **_: Any) -> None:
        request = ocpp.v16.call.StartTransaction(
            connector_id=connector_id, id_tag=id_tag, meter_start=0, timestamp=NOW
        )
        await self.send("StartTransaction", request)

    @on("RemoteStopTransaction")  # type: ignore[untyped-decorator]
    def on_remote_stop(self, **payload: Any) -> Any:
        self.record("RemoteStopTransaction", **payload)
        return ocpp.v16.call_result.RemoteStopTransaction(status="Accepted")

    @on("GetConfiguration")  # type: ignore[untyped-decorator]
    def on_get_configuration(self, key: list[str] | None = None) -> Any:
        self.record("GetConfiguration", **({"key": key} if key is not None else {}))
        wanted = key or list(self.configuration)
        return ocpp.v16.call_result.GetConfiguration(
            configuration_key=[
                {"key": name, "value": value, "readonly": readonly}
                for name, (value, readonly) in self.configuration.items()
                if name in wanted
            ],
            unknown_key=[name for name in wanted if name not in self.configuration] or None,
        )

    @on("ChangeConfiguration")  # type: ignore[untyped-decorator]
    def on_change_configuration(self, key: str, value: str) -> Any:
        self.record("ChangeConfiguration", key=key, value=value)
        if key not in self.configuration:
            return ocpp.v16.call_result.ChangeConfiguration(status="NotSupported")
        if self.configuration[key][1]:
            return ocpp.v16.call_result.ChangeConfiguration(status="Rejected")
        self.configuration[key] = (value, False)
        return ocpp.v16.call_result.ChangeConfiguration(status="Accepted")


class Station201Remote(Station201, _Follows):
    # (component, variable) → (value, mutability)
    variables: dict[tuple[str, str], tuple[str, str]]

    @on("RequestStartTransaction")  # type: ignore[untyped-decorator]
    def on_request_start(self, **payload: Any) -> Any:
        self.record("RequestStartTransaction", **payload)
        return ocpp.v201.call_result.RequestStartTransaction(status="Accepted")

    @after("RequestStartTransaction")  # type: ignore[untyped-decorator]
    async def start_transaction(
        self, id_token: dict[str, str], remote_start_id: int, evse_id: int = 1, **_: Any
    ) -> None:
        # OCPP 2.0.1 F01.FR.04: the TransactionEvent carries the remoteStartId.
        request = ocpp.v201.call.TransactionEvent(
            event_type="Started",
            timestamp=NOW,
            trigger_reason="RemoteStart",
            seq_no=0,
            transaction_info={
                "transaction_id": f"tx-{remote_start_id}",
                "remote_start_id": remote_start_id,
            },
            id_token=id_token,
            evse={"id": evse_id, "connector_id": 1},
        )
        await self.send("TransactionEvent", request)

    @on("GetVariables")  # type: ignore[untyped-decorator]
    def on_get_variables(self, get_variable_data: list[dict[str, Any]]) -> Any:
        self.record("GetVariables", get_variable_data=get_variable_data)
        return ocpp.v201.call_result.GetVariables(
            get_variable_result=[self._get(entry) for entry in get_variable_data]
        )

    def _get(self, entry: dict[str, Any]) -> dict[str, Any]:
        name = (entry["component"]["name"], entry["variable"]["name"])
        result = {"component": entry["component"], "variable": entry["variable"]}
        if name not in self.variables:
            return result | {"attribute_status": "UnknownVariable"}
        return result | {"attribute_status": "Accepted", "attribute_value": self.variables[name][0]}

    @on("SetVariables")  # type: ignore[untyped-decorator]
    def on_set_variables(self, set_variable_data: list[dict[str, Any]]) -> Any:
        self.record("SetVariables", set_variable_data=set_variable_data)
        return ocpp.v201.call_result.SetVariables(
            set_variable_result=[self._set(entry) for entry in set_variable_data]
        )

    def _set(self, entry: dict[str, Any]) -> dict[str, Any]:
        name = (entry["component"]["name"], entry["variable"]["name"])
        result = {"component": entry["component"], "variable": entry["variable"]}
        if name not in self.variables:
            return result | {"attribute_status": "UnknownVariable"}
        if self.variables[name][1] == "ReadOnly":
            return result | {"attribute_status": "Rejected"}
        self.variables[name] = (entry["attribute_value"], self.variables[name][1])
        return result | {"attribute_status": "Accepted"}

    @on("GetBaseReport")  # type: ignore[untyped-decorator]
    def on_get_base_report(self, request_id: int, report_base: str) -> Any:
        self.record("GetBaseReport", request_id=request_id, report_base=report_base)
        return ocpp.v201.call_result.GetBaseReport(status="Accepted")

    @after("GetBaseReport")  # type: ignore[untyped-decorator]
    async def report(self, request_id: int, **_: Any) -> None:
        """The device model in two parts, one variable each (tbc on the first)."""
        entries = list(self.variables.items())
        for seq_no, ((component, variable), (value, mutability)) in enumerate(entries):
            data = {
                "component": {"name": component},
                "variable": {"name": variable},
                "variable_attribute": [{"value": value, "mutability": mutability}],
            }
            request = ocpp.v201.call.NotifyReport(
                request_id=request_id,
                generated_at=NOW,
                seq_no=seq_no,
                tbc=seq_no < len(entries) - 1,
                report_data=[data],
            )
            await self.send("NotifyReport", request)


@asynccontextmanager
async def remote_station(
    url: str, station_id: str, version: str
) -> AsyncIterator[Station16Remote | Station201Remote]:
    """A connected station of ``version`` (1.6 or 2.0.1) that answers remote control."""
    async with connect(
        f"{url}/ocpp/{station_id}",
        subprotocols=[SUBPROTOCOL[version]],  # type: ignore[list-item]
        open_timeout=10,
    ) as websocket:
        client: Station16Remote | Station201Remote
        if version == "1.6":
            client = Station16Remote(station_id, websocket)
            client.configuration = {
                "HeartbeatInterval": ("300", False),
                "NumberOfConnectors": ("1", True),
            }
        else:
            client = Station201Remote(station_id, websocket)
            client.variables = {
                ("OCPPCommCtrlr", "HeartbeatInterval"): ("300", "ReadWrite"),
                ("SecurityCtrlr", "Identity"): (station_id, "ReadOnly"),
            }
        client.received = []
        client.sent = asyncio.Queue()
        runner = asyncio.create_task(client.start())
        try:
            yield client
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
