"""``csms.firmware`` events: one typed model per event ``type`` (docs/asyncapi.yaml).

Every record is keyed by its ``station_id``: the station's, or for a campaign-wide event
``campaign:{campaign_id}`` and for a new image ``image:{image_id}`` (so each keeps its
order on one partition).
"""

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from csms_core.envelope import Envelope

SOURCE = "csms/firmware"


class FirmwareEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    TYPE: ClassVar[str]

    def envelope(self, station_id: str, ocpp_version: str | None = None) -> Envelope:
        return Envelope(
            type=self.TYPE,
            source=SOURCE,
            station_id=station_id,
            ocpp_version=ocpp_version,
            data=self.model_dump(mode="json"),
        )


class ImageAdded(FirmwareEvent):
    TYPE: ClassVar[str] = "firmware.image.added"

    image_id: str
    vendor: str
    models: list[str]
    version: str
    size: int
    sha256: str
    signed: bool


class CampaignStateChanged(FirmwareEvent):
    TYPE: ClassVar[str] = "firmware.campaign.state_changed"

    campaign_id: str
    image_id: str
    version: str
    state: str
    reason: str | None
    counts: dict[str, int]


class StationStateChanged(FirmwareEvent):
    TYPE: ClassVar[str] = "firmware.station.state_changed"

    campaign_id: str
    station_id: str
    state: str
    ocpp_status: str | None
    attempt: int
    request_id: int | None
    reason: str | None
    firmware_version: str | None


class FirmwareStatusReported(FirmwareEvent):
    """A station's firmware status changed (repeats of the same status are not reported)."""

    TYPE: ClassVar[str] = "firmware.status.reported"

    station_id: str
    status: str
    request_id: int | None
    campaign_id: str | None
    reported_at: datetime


class PublicationChanged(FirmwareEvent):
    TYPE: ClassVar[str] = "firmware.publication.status_changed"

    station_id: str
    request_id: int
    image_id: str
    status: str
    locations: list[str]


class LogStatusChanged(FirmwareEvent):
    TYPE: ClassVar[str] = "firmware.log.status_changed"

    station_id: str
    request_id: int
    log_type: str
    status: str


class LogReceived(FirmwareEvent):
    TYPE: ClassVar[str] = "firmware.log.received"

    station_id: str
    request_id: int
    log_type: str
    filename: str
    size: int
    sha256: str
    protocol: str


EVENT_TYPES: tuple[type[FirmwareEvent], ...] = (
    ImageAdded,
    CampaignStateChanged,
    StationStateChanged,
    FirmwareStatusReported,
    PublicationChanged,
    LogStatusChanged,
    LogReceived,
)
