"""The CSMS gateway: terminates OCPP WebSockets, turns frames into events, delivers commands."""

from csms_gateway.server import Gateway, run_gateway
from csms_gateway.settings import GatewaySettings

__all__ = ["Gateway", "GatewaySettings", "run_gateway"]
