"""What the station and site routes take and answer."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from csms_firmware.campaigns.window import zone
from csms_firmware.stations.models import FirmwareStation, Site


class FirmwareStationOut(BaseModel):
    station_id: str
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    ocpp_version: str | None
    site_id: str | None
    online: bool
    last_boot_at: datetime | None

    @classmethod
    def of(cls, station: FirmwareStation) -> "FirmwareStationOut":
        return cls.model_validate(station, from_attributes=True)


class FirmwareSiteIn(BaseModel):
    """A site's time zone, and optionally the stations on it."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(examples=["Europe/Berlin"])
    name: str | None = Field(default=None, max_length=200)
    station_ids: list[str] | None = Field(
        default=None, max_length=10_000, description="put these stations on the site"
    )

    @field_validator("timezone")
    @classmethod
    def _known(cls, value: str) -> str:
        zone(value)
        return value


class FirmwareSiteOut(BaseModel):
    site_id: str
    timezone: str
    name: str | None
    stations: int

    @classmethod
    def of(cls, site: Site, stations: int) -> "FirmwareSiteOut":
        return cls(site_id=site.site_id, timezone=site.timezone, name=site.name, stations=stations)
