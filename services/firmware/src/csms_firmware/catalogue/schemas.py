"""What the catalogue's REST routes take and answer."""

from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from csms_firmware.catalogue.models import FirmwareImage


class ImageMetadata(BaseModel):
    """The form fields of an image upload (the file part is named ``file``)."""

    model_config = ConfigDict(extra="forbid")

    vendor: str = Field(min_length=1, max_length=50)
    models: list[str] = Field(min_length=1, max_length=100)
    version: str = Field(min_length=1, max_length=50)
    release_notes: str | None = Field(default=None, max_length=20_000)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    md5: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{32}$")
    signature: str | None = Field(default=None, max_length=800, description="base64")
    signing_certificate: str | None = Field(default=None, max_length=5500, description="PEM")

    @field_validator("models")
    @classmethod
    def _models(cls, values: list[str]) -> list[str]:
        models = [m.strip() for value in values for m in value.split(",") if m.strip()]
        if not models or any(len(m) > 20 for m in models):
            raise ValueError("one to 100 models of at most 20 characters")
        return sorted(set(models))

    @model_validator(mode="after")
    def _checks(self) -> Self:
        if self.sha256 is None and self.md5 is None:
            raise ValueError("give the image's sha256 (or md5) so the upload can be verified")
        if (self.signature is None) != (self.signing_certificate is None):
            raise ValueError("a signed image needs both signature and signing_certificate")
        return self


class ImageOut(BaseModel):
    image_id: str = Field(examples=["4f2a9c0d5e6b7a8c9d0e1f2a3b4c5d6e"])
    vendor: str = Field(examples=["ACME"])
    models: list[str] = Field(examples=[["AC22"]])
    version: str = Field(examples=["2.4.1"])
    release_notes: str | None
    filename: str
    size: int
    sha256: str
    md5: str
    signed: bool
    created_at: datetime
    stations: int = Field(description="stations that reported running this version")

    @classmethod
    def of(cls, image: FirmwareImage, stations: int) -> "ImageOut":
        return cls(
            image_id=image.image_id,
            vendor=image.vendor,
            models=image.models,
            version=image.version,
            release_notes=image.release_notes,
            filename=image.filename,
            size=image.size,
            sha256=image.sha256,
            md5=image.md5,
            signed=image.signed,
            created_at=image.created_at,
            stations=stations,
        )


class OutdatedStation(BaseModel):
    station_id: str
    vendor: str
    model: str
    firmware_version: str | None
    newest_version: str
    newest_image_id: str
    online: bool
