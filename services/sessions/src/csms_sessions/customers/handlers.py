"""Handler of a station's NotifyCustomerInformation (OCPP 2.0.1 N09/N10), part by part."""

import logging

from sqlalchemy.dialects import postgresql, sqlite

from csms_ocpp.messages import NOTIFY_CUSTOMER_INFORMATION, NotifyCustomerInformationRequest
from csms_sessions.configuration.handlers import count_report_part
from csms_sessions.configuration.service import table_of
from csms_sessions.context import EventContext, calls
from csms_sessions.customers.models import CustomerInformationPart
from csms_sessions.db import fits_int32, parse_ocpp_time

logger = logging.getLogger(__name__)


@calls.handles(NOTIFY_CUSTOMER_INFORMATION)
async def on_notify_customer_information(
    ctx: EventContext, payload: NotifyCustomerInformationRequest
) -> None:
    """Store the part (once: a part sent again changes nothing) and count it."""
    if not (fits_int32(payload["requestId"]) and fits_int32(payload["seqNo"])):
        logger.warning("%s: NotifyCustomerInformation ids out of range", ctx.station_id)
        return  # no request of ours has such an id
    row = {
        "station_id": ctx.station_id,
        "request_id": payload["requestId"],
        "seq_no": payload["seqNo"],
        "data": payload["data"],
        "generated_at": parse_ocpp_time(payload["generatedAt"]),
        "received_at": ctx.received_at,
    }
    dialect = (await ctx.session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table_of(CustomerInformationPart)).values([row])
    await ctx.session.exec(statement.on_conflict_do_nothing())
    tbc = payload.get("tbc", False)
    await count_report_part(ctx, payload["requestId"], payload["seqNo"], tbc)
