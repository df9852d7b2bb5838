"""A 2.0.1 station with monitors and customer data, played by the ``ocpp`` package.

``Station201Diagnostics`` keeps the monitors it was given (ids from 1), reports them one
per NotifyMonitoringReport part after GetMonitoringReport, clears them by id (NotFound
for an unknown one), accepts a monitoring level of 0..9 only, and reports what it keeps
about a customer in two NotifyCustomerInformation parts. What it sends on its own after
answering is recorded in ``sent`` (the answers it got), so a test can wait for it.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import ocpp.v201
from ocpp.routing import after, on
from websockets.asyncio.client import connect

from tests.station_handlers_remote import NOW, _Follows
from tests.stations import SUBPROTOCOL, Station201

CUSTOMER_DATA = ("card 04A2B3C4D5E6F7; ", "3 sessions since 2026-11-01")


class Station201Diagnostics(Station201, _Follows):
    # monitor id → (component, variable, type, value, severity)
    monitors: dict[int, tuple[dict[str, Any], dict[str, Any], str, float, int]]

    @on("SetVariableMonitoring")  # type: ignore[untyped-decorator]
    def on_set_variable_monitoring(self, set_monitoring_data: list[dict[str, Any]]) -> Any:
        self.record("SetVariableMonitoring", set_monitoring_data=set_monitoring_data)
        results = []
        for entry in set_monitoring_data:
            monitor_id = entry.get("id") or max(self.monitors, default=0) + 1
            self.monitors[monitor_id] = (
                entry["component"],
                entry["variable"],
                entry["type"],
                entry["value"],
                entry["severity"],
            )
            results.append(
                {
                    "id": monitor_id,
                    "status": "Accepted",
                    "type": entry["type"],
                    "severity": entry["severity"],
                    "component": entry["component"],
                    "variable": entry["variable"],
                }
            )
        return ocpp.v201.call_result.SetVariableMonitoring(set_monitoring_result=results)

    @on("GetMonitoringReport")  # type: ignore[untyped-decorator]
    def on_get_monitoring_report(self, request_id: int, **criteria: Any) -> Any:
        self.record("GetMonitoringReport", request_id=request_id, **criteria)
        status = "Accepted" if self.monitors else "EmptyResultSet"
        return ocpp.v201.call_result.GetMonitoringReport(status=status)

    @after("GetMonitoringReport")  # type: ignore[untyped-decorator]
    async def report_monitors(self, request_id: int, **_: Any) -> None:
        entries = sorted(self.monitors.items())
        for seq_no, (monitor_id, (component, variable, kind, value, severity)) in enumerate(
            entries
        ):
            monitoring = {
                "id": monitor_id,
                "transaction": False,
                "value": value,
                "type": kind,
                "severity": severity,
            }
            request = ocpp.v201.call.NotifyMonitoringReport(
                request_id=request_id,
                seq_no=seq_no,
                generated_at=NOW,
                tbc=seq_no < len(entries) - 1,
                monitor=[
                    {
                        "component": component,
                        "variable": variable,
                        "variable_monitoring": [monitoring],
                    }
                ],
            )
            await self.send("NotifyMonitoringReport", request)

    @on("ClearVariableMonitoring")  # type: ignore[untyped-decorator]
    def on_clear_variable_monitoring(self, id: list[int]) -> Any:
        self.record("ClearVariableMonitoring", id=id)
        results = [
            {
                "id": monitor_id,
                "status": "Accepted" if self.monitors.pop(monitor_id, None) else "NotFound",
            }
            for monitor_id in id
        ]
        return ocpp.v201.call_result.ClearVariableMonitoring(clear_monitoring_result=results)

    @on("SetMonitoringLevel")  # type: ignore[untyped-decorator]
    def on_set_monitoring_level(self, severity: int) -> Any:
        self.record("SetMonitoringLevel", severity=severity)
        status = "Accepted" if 0 <= severity <= 9 else "Rejected"
        return ocpp.v201.call_result.SetMonitoringLevel(status=status)

    @on("CustomerInformation")  # type: ignore[untyped-decorator]
    def on_customer_information(
        self, request_id: int, report: bool, clear: bool, **customer: Any
    ) -> Any:
        self.record(
            "CustomerInformation", request_id=request_id, report=report, clear=clear, **customer
        )
        return ocpp.v201.call_result.CustomerInformation(status="Accepted")

    @after("CustomerInformation")  # type: ignore[untyped-decorator]
    async def report_customer(self, request_id: int, report: bool, **_: Any) -> None:
        if not report:
            return
        for seq_no, data in enumerate(CUSTOMER_DATA):
            request = ocpp.v201.call.NotifyCustomerInformation(
                data=data,
                seq_no=seq_no,
                generated_at=NOW,
                request_id=request_id,
                tbc=seq_no < len(CUSTOMER_DATA) - 1,
            )
            await self.send("NotifyCustomerInformation", request)


@asynccontextmanager
async def diagnostics_station(url: str, station_id: str) -> AsyncIterator[Station201Diagnostics]:
    """A connected 2.0.1 station that answers block N's calls."""
    async with connect(
        f"{url}/ocpp/{station_id}",
        subprotocols=[SUBPROTOCOL["2.0.1"]],  # type: ignore[list-item]
        open_timeout=10,
    ) as websocket:
        client = Station201Diagnostics(station_id, websocket)
        client.monitors = {}
        client.received = []
        client.sent = asyncio.Queue()
        runner = asyncio.create_task(client.start())
        try:
            yield client
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
