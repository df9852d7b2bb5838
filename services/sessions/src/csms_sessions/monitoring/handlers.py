"""Handlers of a 2.x station's NotifyMonitoringReport (OCPP 2.0.1 N02: the monitors it holds,
part by part) and NotifyEvent (N07/N08: what its monitors raised)."""

from datetime import timedelta
from typing import Any

from csms_core.events import (
    MonitoringReported,
    MonitoringReportedData,
    StationEventReported,
    StationEventReportedData,
)
from csms_ocpp.messages import (
    NOTIFY_EVENT,
    NOTIFY_MONITORING_REPORT,
    EventData,
    MonitoringData,
    NotifyEventRequest,
    NotifyMonitoringReportRequest,
)
from csms_sessions.configuration.handlers import count_report_part
from csms_sessions.configuration.models import ReportState, VariableRef
from csms_sessions.context import EventContext, calls, reads_station_id_only
from csms_sessions.db import parse_ocpp_time
from csms_sessions.monitoring import service
from csms_sessions.monitoring.models import ref_columns


@calls.handles(NOTIFY_MONITORING_REPORT)
async def on_notify_monitoring_report(
    ctx: EventContext, payload: NotifyMonitoringReportRequest
) -> None:
    """Store the part's monitors (upserted by id: parts may come twice or out of order)."""
    rows = [row for data in payload.get("monitor", []) for row in _monitor_rows(data)]
    await service.store_monitors(ctx.session, ctx.station_id, rows)
    tbc = payload.get("tbc", False)
    report = await count_report_part(ctx, payload["requestId"], payload["seqNo"], tbc)
    state: ReportState | None = None
    if report is not None:
        state = report.state(ctx.received_at, timedelta(seconds=ctx.settings.report_part_timeout_s))
        complete_now = report.completed_at == ctx.received_at
        if complete_now and report.action == "GetMonitoringReport" and not report.request:
            # A complete report of every monitor: those it did not name are gone.
            await service.remove_monitors_before(ctx.session, ctx.station_id, report.requested_at)
    ctx.publish(
        MonitoringReported,
        MonitoringReportedData(
            request_id=payload["requestId"],
            seq_no=payload["seqNo"],
            tbc=tbc,
            generated_at=payload["generatedAt"],
            monitors=len(rows),
            report_state=state.value if state is not None else None,
            missing_seq_nos=report.missing_seq_nos() if report is not None else None,
        ),
    )


def _monitor_rows(data: MonitoringData) -> list[dict[str, Any]]:
    ref = VariableRef.from_ocpp(data["component"], data["variable"], None)
    return [
        ref_columns(ref)
        | {
            "monitor_id": monitor["id"],
            "type": monitor["type"],
            "value": monitor["value"],
            "severity": monitor["severity"],
            "transaction": monitor["transaction"],
            "event_notification_type": monitor.get("eventNotificationType"),
        }
        for monitor in data["variableMonitoring"]
    ]


@calls.handles(NOTIFY_EVENT)
async def on_notify_event(ctx: EventContext, payload: NotifyEventRequest) -> None:
    """Store each event and publish it on ``csms.station-status`` (station.event.reported)."""
    rows = [await _event_row(ctx, event) for event in payload["eventData"]]
    for row in await service.store_events(ctx.session, ctx.station_id, rows):
        ctx.publish(
            StationEventReported,
            StationEventReportedData.model_validate(
                {k: v for k, v in row.items() if k not in ("station_id", "received_at")}
            ),
        )


# A batch loads no station row for these (csms_sessions.batch): alerts may come in bursts.
reads_station_id_only(NOTIFY_EVENT)


async def _event_row(ctx: EventContext, event: EventData) -> dict[str, Any]:
    ref = VariableRef.from_ocpp(event["component"], event["variable"], None)
    monitor_id = event.get("variableMonitoringId")
    severity = event.get("severity")
    if severity is None and monitor_id is not None:
        # 2.0.1 EventDataType has no severity: the monitor that raised it has one.
        severity = await service.severity_of(ctx.session, ctx.station_id, monitor_id)
    return ref_columns(ref) | {
        "station_id": ctx.station_id,
        "event_id": event["eventId"],
        "timestamp": parse_ocpp_time(event["timestamp"]),
        "trigger": event["trigger"],
        "event_notification_type": event["eventNotificationType"],
        "actual_value": event["actualValue"],
        "cleared": event.get("cleared", False),
        "cause": event.get("cause"),
        "tech_code": event.get("techCode"),
        "tech_info": event.get("techInfo"),
        "transaction_id": event.get("transactionId"),
        "variable_monitoring_id": monitor_id,
        "severity": severity,
        "received_at": ctx.received_at,
    }
