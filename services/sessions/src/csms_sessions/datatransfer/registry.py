"""Vendor extensions: (vendorId, messageId) → the handler of a station's DataTransfer.

A vendor extension is an async callable that gets the station and the
transfer's ``data`` and returns the status and the data to answer with::

    async def on_price_request(station: Station, data: Any) -> DataTransferReply:
        return "Accepted", {"price": 0.25}

    REGISTRY.register("com.example", "PriceRequest", on_price_request)

Registering with ``message_id=None`` makes the handler take every messageId of
that vendor not registered on its own (a transfer without messageId, too).
"""

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from csms_sessions.stations.models import Station

DataTransferStatus = Literal["Accepted", "Rejected", "UnknownMessageId", "UnknownVendorId"]
DataTransferReply = tuple[DataTransferStatus, Any]
VendorHandler = Callable[[Station, Any], Awaitable[DataTransferReply]]


class VendorRegistry:
    def __init__(self) -> None:
        self._handlers: dict[tuple[str, str | None], VendorHandler] = {}

    def register(self, vendor_id: str, message_id: str | None, handler: VendorHandler) -> None:
        """Route the vendor's ``message_id`` (every messageId: None) to ``handler``."""
        self._handlers[vendor_id, message_id] = handler

    def unregister(self, vendor_id: str, message_id: str | None) -> None:
        self._handlers.pop((vendor_id, message_id), None)

    def knows_vendor(self, vendor_id: str) -> bool:
        return any(vendor == vendor_id for vendor, _ in self._handlers)

    def handler(self, vendor_id: str, message_id: str | None) -> VendorHandler | None:
        """The exact (vendor, messageId) handler, else the vendor's catch-all."""
        exact = self._handlers.get((vendor_id, message_id))
        return exact or self._handlers.get((vendor_id, None))


# The registry the consumer dispatches through; extensions register into it at import.
REGISTRY = VendorRegistry()
