"""Gateway settings (env prefix ``CSMS_``, e.g. ``CSMS_GATEWAY_ID``)."""

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from csms_core.settings import CommonSettings, UnknownStationPolicy


class GatewaySettings(CommonSettings):
    """What one gateway replica reads; ``gateway_id`` must be unique per replica."""

    gateway_id: str = "gw-local"
    # The event loop ``csms gateway`` runs on (read before the settings: csms_core.loop).
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
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
    # Server certificate chain and key (PEM): with both, the OCPP port speaks wss:// only.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # CAs that sign station certificates (PEM): with it, stations may use profile 3.
    tls_client_ca_file: Path | None = None
    # Connections below this security profile are refused (0: anything goes; refused in
    # production). A station's own recorded profile (identity) may demand more.
    min_security_profile: int = Field(default=0, ge=0, le=3)
    # Stations nobody registered: "reject" refuses them at the upgrade (HTTP 404).
    unknown_station_policy: UnknownStationPolicy = "reject"

    # -- abuse bounds --------------------------------------------------------------------------
    # Connections held at once (0: no cap): beyond, the upgrade gets 503; per client address
    # (a load balancer that hides addresses makes them all one: raise it or use 0), 429.
    max_connections: int = Field(default=50_000, ge=0)
    max_connections_per_address: int = Field(default=1000, ge=0)
    # Connections the kernel queues for accepting (capped by net.core.somaxconn): a
    # reconnect storm's thousands of SYNs at once overflow asyncio's default of 100, and
    # the stations dropped so retransmit after 1, 3, 7, 15, 31 s (a 2,000-station storm's
    # last boot at 62 s).
    listen_backlog: int = Field(default=4096, ge=1)
    # The TLS handshake and then the HTTP upgrade must each be over within these.
    tls_handshake_timeout_s: float = Field(default=10.0, gt=0)
    open_timeout_s: float = Field(default=10.0, gt=0)
    # Station CALLs per second per connection (token bucket; 0: no limit) and its burst:
    # a CALL beyond gets CALLERROR GenericError unstored; after flood_close_after such
    # refusals in a row the connection is closed (1008 policy violation).
    station_rate_per_s: float = Field(default=20.0, ge=0)
    station_rate_burst: int = Field(default=100, ge=1)
    station_flood_close_after: int = Field(default=100, ge=1)
    # CALLs received but not answered yet, per connection: while full, the gateway stops
    # reading the connection (OCPP allows one outstanding CALL; the rest is a misbehaviour).
    max_inbound_queue: int = Field(default=32, ge=1)

    @property
    def max_message_bytes(self) -> int:
        """The WebSocket library's hard limit on one message."""
        return 4 * self.max_frame_bytes

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @model_validator(mode="after")
    def _tls_is_consistent(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "set both CSMS_TLS_CERT_FILE and CSMS_TLS_KEY_FILE (wss://, security profiles "
                "2 and 3) or neither (ws://)"
            )
        if self.tls_client_ca_file is not None and not self.tls:
            raise ValueError(
                "CSMS_TLS_CLIENT_CA_FILE needs CSMS_TLS_CERT_FILE and CSMS_TLS_KEY_FILE"
            )
        if self.min_security_profile >= 2 and not self.tls:
            raise ValueError("CSMS_MIN_SECURITY_PROFILE 2 or 3 needs TLS (CSMS_TLS_CERT_FILE)")
        if self.min_security_profile == 3 and self.tls_client_ca_file is None:
            raise ValueError("CSMS_MIN_SECURITY_PROFILE 3 needs CSMS_TLS_CLIENT_CA_FILE")
        if self.production and self.min_security_profile == 0:
            raise ValueError(
                "CSMS_MIN_SECURITY_PROFILE 0 lets any station connect unauthenticated: production "
                "needs 1 (Basic auth), better 2 or 3 (TLS); CSMS_ENVIRONMENT=development allows 0"
            )
        return self
