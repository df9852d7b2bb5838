"""Gateway settings (env prefix ``CSMS_``, e.g. ``CSMS_GATEWAY_ID``)."""

from csms_core.settings import CommonSettings


class GatewaySettings(CommonSettings):
    """What one gateway replica reads; ``gateway_id`` must be unique per replica."""

    gateway_id: str = "gw-local"
    ocpp_host: str = "127.0.0.1"
    ocpp_port: int = 9000
    # A frame above this gets a CALLERROR and the connection stays open; a frame above
    # four times this is refused by the WebSocket library itself (close code 1009).
    max_frame_bytes: int = 65536
    route_ttl_s: float = 60.0
    route_refresh_s: float = 20.0
    # How long a station CALL that needs a service's decision waits before the fallback.
    decision_timeout_s: float = 10.0
    ping_interval_s: float = 30.0
    ping_timeout_s: float = 30.0
    shutdown_grace_s: float = 5.0

    @property
    def max_message_bytes(self) -> int:
        """The WebSocket library's hard limit on one message."""
        return 4 * self.max_frame_bytes
