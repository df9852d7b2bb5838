"""Settings of the firmware service (env prefix ``CSMS_``)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from csms_api.auth import AuthSettings
from csms_core.settings import CommonSettings

MIB = 1024 * 1024


class FirmwareSettings(CommonSettings, AuthSettings):
    """What the firmware service reads on top of the common and the REST auth settings."""

    model_config = SettingsConfigDict(env_prefix="CSMS_", extra="ignore", populate_by_name=True)

    api_host: str = "127.0.0.1"
    # CSMS_FIRMWARE_API_PORT, so one environment can serve every service.
    api_port: int = Field(default=8003, ge=1, le=65535, validation_alias="CSMS_FIRMWARE_API_PORT")
    # Its own group: a shared CSMS_CONSUMER_GROUP (the sessions one) must not capture it.
    consumer_group: str = Field(
        default="csms-firmware", validation_alias="CSMS_FIRMWARE_CONSUMER_GROUP"
    )
    # The base URL stations download images from and upload logs to (through the ingress
    # or proxy in production); the default is this process's own API port.
    public_url: str | None = Field(default=None, validation_alias="CSMS_FIRMWARE_PUBLIC_URL")
    # Where images and log files are kept (the local content-addressed store).
    store_dir: Path = Field(
        default=Path("csms-data/firmware"), validation_alias="CSMS_FIRMWARE_STORE_DIR"
    )
    max_image_bytes: int = Field(default=512 * MIB, gt=0)
    max_log_bytes: int = Field(default=100 * MIB, gt=0)
    # How long a station may fetch an image at the URL it was sent, and upload a log at its.
    download_url_ttl_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    upload_url_ttl_s: float = Field(default=3600.0, gt=0)
    # How often running campaigns are planned (changes wake the planner earlier).
    campaign_tick_s: float = Field(default=5.0, gt=0)
    # False: this replica consumes and serves REST and station files, but plans no
    # campaign (the other replicas do; one round per campaign at a time either way).
    run_campaigns: bool = Field(default=True, validation_alias="CSMS_FIRMWARE_RUN_CAMPAIGNS")
    command_parallelism: int = Field(default=64, ge=1)
    # FTP for 1.6 chargers that upload diagnostics only by FTP: 0 = off.
    ftp_port: int = Field(default=0, ge=0, le=65535, validation_alias="CSMS_FIRMWARE_FTP_PORT")
    ftp_host: str = Field(default="127.0.0.1", validation_alias="CSMS_FIRMWARE_FTP_HOST")
    # The host stations reach the FTP server at (defaults to ftp_host).
    ftp_public_host: str | None = Field(
        default=None, validation_alias="CSMS_FIRMWARE_FTP_PUBLIC_HOST"
    )
    ftp_passive_ports: str = Field(default="", validation_alias="CSMS_FIRMWARE_FTP_PASSIVE_PORTS")

    def station_base_url(self) -> str:
        """The base stations reach this service's file endpoints at."""
        base = self.public_url or f"http://{self.api_host}:{self.api_port}"
        return base.rstrip("/")
