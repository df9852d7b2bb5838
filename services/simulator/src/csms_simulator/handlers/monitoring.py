"""OCPP 2.0.1/2.1 block N: monitors (N02-N06) and customer information (N09/N10).

The station keeps the monitors the CSMS sets (ids from 1; any component and variable it
is asked to watch), reports them one MonitoringData per monitor, and keeps no customer
data: a report says so in one NotifyCustomerInformation part. It raises no events.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from csms_ocpp import OcppVersion

if TYPE_CHECKING:
    from csms_simulator.station import Station

JsonObject = dict[str, Any]
Handler = Callable[["Station", JsonObject], JsonObject]


def on_set_variable_monitoring(station: "Station", payload: JsonObject) -> JsonObject:
    results = []
    for entry in payload["setMonitoringData"]:
        result = {key: entry[key] for key in ("type", "severity", "component", "variable")}
        replaced = entry.get("id")
        if replaced is not None and replaced not in station.monitors:
            results.append(result | {"status": "Rejected"})  # N04.FR.06: no such monitor
            continue
        monitor_id = replaced if replaced is not None else max(station.monitors, default=0) + 1
        station.monitors[monitor_id] = entry | {"id": monitor_id}
        results.append(result | {"status": "Accepted", "id": monitor_id})
    return {"setMonitoringResult": results}


def on_clear_variable_monitoring(station: "Station", payload: JsonObject) -> JsonObject:
    results = [
        {
            "id": monitor_id,
            "status": "Accepted" if station.monitors.pop(monitor_id, None) else "NotFound",
        }
        for monitor_id in payload["id"]
    ]
    return {"clearMonitoringResult": results}


def _cleared(station: "Station", monitor_id: int) -> str:
    return "Accepted" if station.monitors.pop(monitor_id, None) is not None else "NotFound"


def on_get_monitoring_report(station: "Station", payload: JsonObject) -> JsonObject:
    monitors = [m for m in station.monitors.values() if _wanted(m, payload)]
    if not monitors:
        return {"status": "EmptyResultSet"}
    generated_at = station.now_iso()
    for seq_no, monitor in enumerate(monitors):
        watch: JsonObject = {
            "id": monitor["id"],
            "transaction": monitor.get("transaction", False),
            "value": monitor["value"],
            "type": monitor["type"],
            "severity": monitor["severity"],
        }
        if station.version is OcppVersion.V21:
            watch["eventNotificationType"] = "CustomMonitor"
        report = {
            "requestId": payload["requestId"],
            "seqNo": seq_no,
            "generatedAt": generated_at,
            "tbc": seq_no < len(monitors) - 1,
            "monitor": [
                {
                    "component": monitor["component"],
                    "variable": monitor["variable"],
                    "variableMonitoring": [watch],
                }
            ],
        }
        station.timers.after(0.0, _caller(station, "NotifyMonitoringReport", report))
    return {"status": "Accepted"}


_CRITERIA = {
    "ThresholdMonitoring": {"UpperThreshold", "LowerThreshold"},
    "DeltaMonitoring": {"Delta", "TargetDelta", "TargetDeltaRelative"},
    "PeriodicMonitoring": {"Periodic", "PeriodicClockAligned"},
}


def _wanted(monitor: JsonObject, payload: JsonObject) -> bool:
    criteria = payload.get("monitoringCriteria")
    if criteria and not any(monitor["type"] in _CRITERIA[c] for c in criteria):
        return False
    named = payload.get("componentVariable")
    return not named or any(
        entry["component"]["name"] == monitor["component"]["name"]
        and ("variable" not in entry or entry["variable"]["name"] == monitor["variable"]["name"])
        for entry in named
    )


def on_set_monitoring_base(station: "Station", payload: JsonObject) -> JsonObject:
    if payload["monitoringBase"] != "All":
        station.monitors.clear()  # N03: custom monitors are removed
    return {"status": "Accepted"}


def on_set_monitoring_level(station: "Station", payload: JsonObject) -> JsonObject:
    # N05.FR.02: a severity outside 0..9 is rejected.
    return {"status": "Accepted" if 0 <= payload["severity"] <= 9 else "Rejected"}


def on_customer_information(station: "Station", payload: JsonObject) -> JsonObject:
    if payload["report"]:
        part = {
            "data": "no customer data kept",
            "seqNo": 0,
            "generatedAt": station.now_iso(),
            "requestId": payload["requestId"],
            "tbc": False,
        }
        station.timers.after(0.0, _caller(station, "NotifyCustomerInformation", part))
    return {"status": "Accepted"}


def _caller(station: "Station", action: str, payload: JsonObject) -> Callable[[], None]:
    return lambda: station.protocol.call(action, lambda: payload)


HANDLERS: dict[str, Handler] = {
    "ClearVariableMonitoring": on_clear_variable_monitoring,
    "CustomerInformation": on_customer_information,
    "GetMonitoringReport": on_get_monitoring_report,
    "SetMonitoringBase": on_set_monitoring_base,
    "SetMonitoringLevel": on_set_monitoring_level,
    "SetVariableMonitoring": on_set_variable_monitoring,
}
