"""Handler of a station's NotifyReport (OCPP 2.0.1 B07/B08): its device model, part by part."""

from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from csms_core.events import DeviceModelReported, DeviceModelReportedData
from csms_ocpp.messages import NOTIFY_REPORT, NotifyReportRequest
from csms_sessions.configuration.models import ReportRequest, ReportState, VariableRef
from csms_sessions.configuration.service import store_variables
from csms_sessions.context import EventContext, calls
from csms_sessions.db import fits_int32


@calls.handles(NOTIFY_REPORT)
async def on_notify_report(ctx: EventContext, payload: NotifyReportRequest) -> None:
    """Store the part's variables (upserted: parts may come twice or out of order)."""
    rows = [row for data in payload.get("reportData", []) for row in _rows(data)]
    await store_variables(ctx.session, ctx.station.station_id, rows, described=True)
    tbc = payload.get("tbc", False)
    report = await count_report_part(ctx, payload["requestId"], payload["seqNo"], tbc)
    state: ReportState | None = None
    missing: list[int] | None = None
    if report is not None:
        state = report.state(ctx.received_at, timedelta(seconds=ctx.settings.report_part_timeout_s))
        missing = report.missing_seq_nos()
    ctx.publish(
        DeviceModelReported,
        DeviceModelReportedData(
            request_id=payload["requestId"],
            seq_no=payload["seqNo"],
            tbc=tbc,
            generated_at=payload["generatedAt"],
            variables=len(rows),
            report_state=state.value if state is not None else None,
            missing_seq_nos=missing,
        ),
    )


def _rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per attribute of a ReportDataType."""
    characteristics = data.get("variableCharacteristics") or {}
    description = {
        "data_type": characteristics.get("dataType"),
        "unit": characteristics.get("unit"),
        "min_limit": characteristics.get("minLimit"),
        "max_limit": characteristics.get("maxLimit"),
        "values_list": characteristics.get("valuesList"),
    }
    rows = []
    for attribute in data["variableAttribute"]:
        ref = VariableRef.from_ocpp(data["component"], data["variable"], attribute.get("type"))
        rows.append(
            ref.columns()
            | description
            # OCPP 2.0.1 Part 2 VariableAttributeType: mutability defaults to ReadWrite.
            | {
                "value": attribute.get("value"),
                "mutability": attribute.get("mutability", "ReadWrite"),
            }
        )
    return rows


async def count_report_part(
    ctx: EventContext, request_id: int, seq_no: int, tbc: bool
) -> ReportRequest | None:
    """Progress of our request, if it is one (a station may report on its own, too)."""
    if not (fits_int32(request_id) and fits_int32(seq_no)):
        return None  # no request of ours has such an id (and PostgreSQL would refuse it)
    query = select(ReportRequest).where(
        col(ReportRequest.request_id) == request_id,
        col(ReportRequest.station_id) == ctx.station.station_id,
    )
    report = (await ctx.session.exec(query.with_for_update())).first()
    if report is not None:
        report.receive_part(seq_no, last=not tbc, at=ctx.received_at)
    return report
