"""Handler of a station's DataTransfer (OCPP 1.6 §4.3, 2.0.1 P02)."""

from typing import Any

from csms_sessions.context import EventContext


async def on_data_transfer(ctx: EventContext) -> dict[str, Any]:
    """Refuse every vendor: there is no registry of vendor extensions yet."""
    return {"status": "UnknownVendorId"}
