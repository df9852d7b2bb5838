"""Handler of a station's DataTransfer (OCPP 1.6 §4.3, 2.0.1 P02): dispatch to vendor extensions."""

import json
import logging
from typing import Any

from csms_ocpp.messages import DATA_TRANSFER, DataTransferRequest, DataTransferResponse
from csms_sessions.context import EventContext, calls
from csms_sessions.datatransfer.echo import register_echo
from csms_sessions.datatransfer.registry import REGISTRY, VendorRegistry

logger = logging.getLogger(__name__)

register_echo(REGISTRY)


@calls.decides(DATA_TRANSFER)
async def on_data_transfer(ctx: EventContext, request: DataTransferRequest) -> DataTransferResponse:
    """The registered extension's answer; UnknownVendorId/UnknownMessageId when there is none."""
    return await dispatch(REGISTRY, ctx, request)


async def dispatch(
    registry: VendorRegistry, ctx: EventContext, request: DataTransferRequest
) -> DataTransferResponse:
    vendor_id = request["vendorId"]
    message_id = request.get("messageId")
    handler = registry.handler(vendor_id, message_id)
    if handler is None:
        known = registry.knows_vendor(vendor_id)
        return {"status": "UnknownMessageId" if known else "UnknownVendorId"}
    try:
        status, data = await handler(ctx.station, request.get("data"))
    except Exception:  # an extension's bug must not stop the consumer: the station gets Rejected
        logger.exception("DataTransfer extension %s/%s failed", vendor_id, message_id)
        return {"status": "Rejected"}
    answer: DataTransferResponse = {"status": status}
    if data is not None:
        # OCPP 1.6 data is a string (§4.3: "text without specified length or format").
        answer["data"] = data if ctx.version.is_2x or isinstance(data, str) else _text(data)
    return answer


def _text(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))
