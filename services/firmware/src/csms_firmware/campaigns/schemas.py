"""What the campaign routes take and answer."""

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from csms_firmware.campaigns.models import Campaign, CampaignStation
from csms_firmware.campaigns.plan import RolloutPlan
from csms_firmware.campaigns.states import CampaignState, StationState


class Target(BaseModel):
    """Explicit station ids, or a filter (always narrowed to the image's vendor and models)."""

    model_config = ConfigDict(extra="forbid")

    station_ids: list[str] | None = Field(default=None, min_length=1, max_length=100_000)
    vendor: str | None = None
    model: str | None = None
    firmware_version: str | None = Field(default=None, description="their current version")
    site_id: str | None = None

    @property
    def is_filter(self) -> bool:
        return self.station_ids is None

    @model_validator(mode="after")
    def _ids_or_filter(self) -> Self:
        filters = (self.vendor, self.model, self.firmware_version, self.site_id)
        if self.station_ids is not None and any(f is not None for f in filters):
            raise ValueError("give station_ids or a filter, not both")
        if self.station_ids is None and all(f is None for f in filters):
            raise ValueError(
                "give station_ids or at least one of vendor, model, firmware_version, site_id"
            )
        return self


class CampaignIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "image_id": "4f2a9c0d5e6b7a8c9d0e1f2a3b4c5d6e",
                    "target": {"model": "AC22", "firmware_version": "2.3.0"},
                    "plan": {
                        "wave_percent": 10,
                        "max_concurrent_downloads": 50,
                        "window": {"start": "01:00", "end": "05:00"},
                        "failure_threshold": {"percent": 5},
                        "retries": 1,
                        "silence_timeout_s": 3600,
                    },
                }
            ]
        },
    )

    name: str | None = Field(default=None, max_length=200)
    image_id: str = Field(max_length=32)
    target: Target
    plan: RolloutPlan = Field(default_factory=RolloutPlan)
    starts_at: datetime | None = Field(default=None, description="not before (default: now)")
    ends_at: datetime | None = Field(
        default=None, description="stations not reached by then are skipped"
    )

    @model_validator(mode="after")
    def _aware(self) -> Self:
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("starts_at and ends_at need a time zone offset")
        return self


class CampaignOut(BaseModel):
    campaign_id: str
    name: str | None
    image_id: str
    version: str
    state: CampaignState
    state_reason: str | None
    target: dict[str, Any]
    plan: dict[str, Any]
    starts_at: datetime | None
    ends_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    total: int
    waves: int
    current_wave: int | None
    counts: dict[StationState, int] = Field(description="stations per state")

    @classmethod
    def of(
        cls,
        campaign: Campaign,
        version: str,
        counts: dict[StationState, int],
        waves: int,
        current_wave: int | None,
    ) -> "CampaignOut":
        return cls(
            campaign_id=campaign.campaign_id,
            name=campaign.name,
            image_id=campaign.image_id,
            version=version,
            state=campaign.state,
            state_reason=campaign.state_reason,
            target=campaign.target,
            plan=campaign.plan,
            starts_at=campaign.starts_at,
            ends_at=campaign.ends_at,
            created_at=campaign.created_at,
            started_at=campaign.started_at,
            finished_at=campaign.finished_at,
            total=sum(counts.values()),
            waves=waves,
            current_wave=current_wave,
            counts={state: counts.get(state, 0) for state in StationState},
        )


class CampaignStationOut(BaseModel):
    station_id: str
    wave: int
    state: StationState
    ocpp_status: str | None
    attempt: int
    request_id: int | None
    from_version: str | None
    reason: str | None
    dispatched_at: datetime | None
    last_activity_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, row: CampaignStation) -> "CampaignStationOut":
        return cls.model_validate(row, from_attributes=True)
