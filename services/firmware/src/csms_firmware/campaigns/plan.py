"""A campaign's rollout plan as operators write it (REST) and the planner reads it."""

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from csms_firmware.campaigns.window import Window


class FailureThreshold(BaseModel):
    """Pause the campaign once this many stations failed since it was started or resumed."""

    model_config = ConfigDict(extra="forbid")

    count: int | None = Field(default=None, ge=1, examples=[10])
    percent: float | None = Field(default=None, gt=0, le=100, examples=[5.0])
    # The percentage is judged only once this many stations finished (a first failure
    # out of one is 100 %).
    min_sample: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _one_at_least(self) -> Self:
        if self.count is None and self.percent is None:
            raise ValueError("give count, percent or both")
        return self

    def reached(self, failed: int, finished: int) -> bool:
        if self.count is not None and failed >= self.count:
            return True
        return (
            self.percent is not None
            and finished >= self.min_sample
            and failed * 100.0 >= self.percent * finished
        )


class RolloutPlan(BaseModel):
    """How a campaign reaches its stations."""

    model_config = ConfigDict(extra="forbid")

    wave_size: int | None = Field(default=None, ge=1, description="stations per wave")
    wave_percent: float | None = Field(
        default=None, gt=0, le=100, description="stations per wave, as a share of the target"
    )
    max_concurrent_downloads: int = Field(default=50, ge=1, le=100_000)
    window: Window | None = Field(default=None, description="none: at any time")
    failure_threshold: FailureThreshold | None = Field(
        default_factory=lambda: FailureThreshold(percent=10.0)
    )
    retries: int = Field(
        default=1, ge=0, le=10, description="times a failed station is sent the update again"
    )
    retry_delay_s: float = Field(default=300.0, ge=0, le=7 * 86400)
    silence_timeout_s: float = Field(
        default=3600.0,
        gt=0,
        le=7 * 86400,
        description="an attempt with no word from its station for this long has failed",
    )
    # Passed on to the station in UpdateFirmware (its own download retries).
    download_retries: int | None = Field(default=None, ge=0, le=100)
    download_retry_interval_s: int | None = Field(default=None, ge=0, le=86400)

    @model_validator(mode="after")
    def _one_wave_size(self) -> Self:
        if self.wave_size is not None and self.wave_percent is not None:
            raise ValueError("give wave_size or wave_percent, not both")
        return self

    def wave_length(self, targets: int) -> int:
        """Stations per wave for a target of ``targets`` stations (all in one by default)."""
        if self.wave_size is not None:
            return self.wave_size
        if self.wave_percent is not None:
            return max(1, round(targets * self.wave_percent / 100.0))
        return max(1, targets)
