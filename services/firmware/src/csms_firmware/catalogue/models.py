"""The ``firmware.image`` and ``firmware.download_link`` tables."""

from datetime import datetime

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from csms_firmware.db import SCHEMA, UtcDateTime, utc_now


class FirmwareImage(SQLModel, table=True):
    """One firmware release of a vendor for some of its models."""

    __tablename__ = "image"
    __table_args__ = {"schema": SCHEMA}

    image_id: str = Field(primary_key=True, max_length=32)
    vendor: str = Field(max_length=50, index=True)
    models: list[str] = Field(sa_type=JSON)
    version: str = Field(max_length=50)
    release_notes: str | None = None
    filename: str = Field(max_length=255)
    size: int
    sha256: str = Field(max_length=64, index=True)
    md5: str = Field(max_length=32)
    signature: str | None = None
    signing_certificate: str | None = None
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)

    @property
    def signed(self) -> bool:
        return self.signature is not None and self.signing_certificate is not None


class DownloadLink(SQLModel, table=True):
    """A per-request URL token for one image (only its hash is kept)."""

    __tablename__ = "download_link"
    __table_args__ = {"schema": SCHEMA}

    token_hash: str = Field(primary_key=True, max_length=64)
    image_id: str = Field(max_length=32, index=True)
    station_id: str = Field(max_length=48)
    request_id: int | None = None
    expires_at: datetime = Field(sa_type=UtcDateTime)
    downloads: int = 0


class Publication(SQLModel, table=True):
    """An image published on a local controller (2.x PublishFirmware, L03)."""

    __tablename__ = "publication"
    __table_args__ = {"schema": SCHEMA}

    request_id: int = Field(primary_key=True)
    station_id: str = Field(max_length=48, index=True)
    image_id: str = Field(max_length=32)
    status: str = "Requested"  # then the PublishFirmwareStatusNotification statuses
    locations: list[str] = Field(default_factory=list, sa_type=JSON)
    unpublished: bool = False
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
