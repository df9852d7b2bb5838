"""Settings of the smart charging service (env prefix ``CSMS_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from csms_api.auth import AuthSettings
from csms_core.settings import CommonSettings


class SmartChargingSettings(CommonSettings, AuthSettings):
    """What the smart charging service reads on top of the common settings."""

    model_config = SettingsConfigDict(env_prefix="CSMS_", extra="ignore", populate_by_name=True)

    api_host: str = "127.0.0.1"
    # CSMS_SMARTCHARGING_API_PORT, so one environment can serve sessions and smart charging.
    api_port: int = Field(
        default=8001,
        ge=1,
        le=65535,
        validation_alias="CSMS_SMARTCHARGING_API_PORT",
    )
    # Its own group: a shared CSMS_CONSUMER_GROUP (the sessions one) must not capture it.
    consumer_group: str = Field(
        default="csms-smartcharging",
        validation_alias="CSMS_SMARTCHARGING_CONSUMER_GROUP",
    )
    allocation_tick_s: float = Field(default=5.0, gt=0)
    # A change triggers an allocation after this pause, so a burst of events makes one.
    allocation_debounce_s: float = Field(default=0.1, ge=0)
    default_min_a: float = Field(default=6.0, ge=0)
    default_max_a: float = Field(default=32.0, gt=0)
    voltage_v: float = Field(default=230.0, gt=0)
    # Underuse: an EV drawing this much below its limit for this long is capped at its
    # draw plus the headroom, and the rest goes to the others.
    underuse_margin_a: float = Field(default=2.0, ge=0)
    underuse_after_s: float = Field(default=30.0, ge=0)
    underuse_headroom_a: float = Field(default=2.0, ge=0)
    # A limit within this of the one the station last accepted is not sent again.
    resend_threshold_a: float = Field(default=0.5, ge=0)
    profile_timeout_s: float = Field(default=10.0, gt=0)
    # Sent as the station-wide TxDefaultProfile on connect when a site sets no failsafe.
    failsafe_a: float = Field(default=6.0, ge=0)
    max_parallel_commands: int = Field(default=64, ge=1)
    # A transaction a station reports starting counts at its EVSE's maximum until its
    # session comes from the sessions service, for at most this long.
    provisional_ttl_s: float = Field(default=60.0, ge=0)
