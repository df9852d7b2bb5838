"""The built-in example extension: vendorId ``org.csms.echo``, messageId ``echo``.

It answers Accepted with the data it was sent, so an integrator can check the
path station → CSMS → station without writing an extension first.
"""

from typing import Any

from csms_sessions.datatransfer.registry import DataTransferReply, VendorRegistry
from csms_sessions.stations.models import Station

ECHO_VENDOR_ID = "org.csms.echo"
ECHO_MESSAGE_ID = "echo"


async def echo(station: Station, data: Any) -> DataTransferReply:
    """Accepted, with the same data."""
    return "Accepted", data


def register_echo(registry: VendorRegistry) -> None:
    registry.register(ECHO_VENDOR_ID, ECHO_MESSAGE_ID, echo)
