"""Gateway settings (env prefix ``CSMS_``, e.g. ``CSMS_GATEWAY_ID``)."""

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

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
    # Server certificate chain and key (PEM): with both, the OCPP port speaks wss:// only.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # CAs that sign station certificates (PEM): with it, stations may use profile 3.
    tls_client_ca_file: Path | None = None
    # The share of station messages whose trace is recorded (spans exported); the others
    # still carry a trace id and an unsampled traceparent. 1.0 records every one.
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    # Connections below this security profile are refused (0: anything goes).
    min_security_profile: int = Field(default=0, ge=0, le=3)

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
        return self
