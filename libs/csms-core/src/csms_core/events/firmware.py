"""``csms.firmware``: the firmware service's catalogue, campaigns, statuses and logs.

Every record is keyed by a station id: the station's own, or for a campaign-wide event
``campaign:{campaign_id}`` and for a new image ``image:{image_id}`` (each keeps its
order on one partition).
"""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from csms_core.envelope import Event
from csms_core.events.data import EventData

FIRMWARE_SOURCE = "csms/firmware"


class CampaignState(StrEnum):
    SCHEDULED = "scheduled"  # waits for its starts_at
    RUNNING = "running"
    PAUSED = "paused"  # by an operator, or at its failure threshold
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class StationState(StrEnum):
    """Where one station of a campaign is."""

    PENDING = "pending"  # waits for its wave, its window, a download slot or to come online
    DISPATCHING = "dispatching"  # UpdateFirmware on its way
    SENT = "sent"  # accepted; no status yet
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"  # includes signature verified and install scheduled
    INSTALLING = "installing"  # includes installed: only its boot tells the version
    SUCCEEDED = "succeeded"  # booted reporting the image's version
    FAILED = "failed"  # out of retries, or a failure retrying cannot mend
    SKIPPED = "skipped"  # already on the version, or the campaign ended before its turn
    CANCELLED = "cancelled"


class FirmwareImageAddedData(EventData):
    image_id: str
    vendor: str
    models: list[str]
    version: str
    size: int = Field(ge=0, description="Bytes.")
    sha256: str
    signed: bool = Field(description="It carries a signature and a signing certificate.")


class FirmwareImageAdded(Event[FirmwareImageAddedData]):
    """Keyed ``image:{image_id}``."""

    type: Literal["firmware.image.added"] = "firmware.image.added"


class CampaignStateChangedData(EventData):
    campaign_id: str
    image_id: str
    version: str = Field(description="The firmware version the campaign rolls out.")
    state: CampaignState
    reason: str | None
    counts: dict[StationState, int] = Field(description="The campaign's stations per state.")


class CampaignStateChanged(Event[CampaignStateChangedData]):
    """Keyed ``campaign:{campaign_id}``."""

    type: Literal["firmware.campaign.state_changed"] = "firmware.campaign.state_changed"


class CampaignStationStateChangedData(EventData):
    campaign_id: str
    station_id: str
    state: StationState
    ocpp_status: str | None = Field(description="The station's last firmware status or answer.")
    attempt: int = Field(ge=0)
    request_id: int | None
    reason: str | None
    firmware_version: str | None = Field(description="What its boot reported, when it booted.")


class CampaignStationStateChanged(Event[CampaignStationStateChangedData]):
    type: Literal["firmware.station.state_changed"] = "firmware.station.state_changed"


class FirmwareStatusReportedData(EventData):
    station_id: str
    status: str = Field(description="FirmwareStatusEnumType as the station sent it.")
    request_id: int | None
    campaign_id: str | None
    reported_at: AwareDatetime = Field(description="When the gateway received the status.")


class FirmwareStatusReported(Event[FirmwareStatusReportedData]):
    """A station's firmware status changed (a repeated status is not reported again)."""

    type: Literal["firmware.status.reported"] = "firmware.status.reported"


class PublicationStatusChangedData(EventData):
    station_id: str
    request_id: int
    image_id: str
    status: str = Field(description="PublishFirmwareStatusEnumType as the station sent it.")
    locations: list[str]


class PublicationStatusChanged(Event[PublicationStatusChangedData]):
    type: Literal["firmware.publication.status_changed"] = "firmware.publication.status_changed"


class LogStatusChangedData(EventData):
    station_id: str
    request_id: int
    log_type: str = Field(examples=["DiagnosticsLog", "SecurityLog", "DataCollectorLog"])
    status: str = Field(description="UploadLogStatusEnumType / DiagnosticsStatus as sent.")


class LogStatusChanged(Event[LogStatusChangedData]):
    type: Literal["firmware.log.status_changed"] = "firmware.log.status_changed"


class LogReceivedData(EventData):
    station_id: str
    request_id: int
    log_type: str = Field(examples=["DiagnosticsLog", "SecurityLog", "DataCollectorLog"])
    filename: str
    size: int = Field(ge=0, description="Bytes.")
    sha256: str
    protocol: str = Field(examples=["http", "ftp"], description="How the station uploaded it.")


class LogReceived(Event[LogReceivedData]):
    type: Literal["firmware.log.received"] = "firmware.log.received"


FirmwareEvent = (
    FirmwareImageAdded
    | CampaignStateChanged
    | CampaignStationStateChanged
    | FirmwareStatusReported
    | PublicationStatusChanged
    | LogStatusChanged
    | LogReceived
)
