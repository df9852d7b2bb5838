"""The ``firmware.log_request`` and ``firmware.log_file`` tables."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from csms_firmware.db import SCHEMA, UtcDateTime, utc_now


class LogRequest(SQLModel, table=True):
    """One GetDiagnostics / GetLog: its upload URL (token hashed), expiry and progress."""

    __tablename__ = "log_request"
    __table_args__ = {"schema": SCHEMA}

    request_id: int = Field(primary_key=True)
    station_id: str = Field(max_length=48, index=True)
    log_type: str  # DiagnosticsLog | SecurityLog | DataCollectorLog
    action: str  # GetDiagnostics | GetLog
    protocol: str = "http"  # http | ftp
    token_hash: str = Field(max_length=64, index=True, unique=True)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    state: str = "requested"  # requested | accepted | rejected | uploading | uploaded | failed
    ocpp_status: str | None = None  # the last LogStatusNotification / DiagnosticsStatus...
    filename: str | None = None  # as the station announced it
    received: bool = False
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)


class LogFile(SQLModel, table=True):
    __tablename__ = "log_file"
    __table_args__ = {"schema": SCHEMA}

    request_id: int = Field(primary_key=True)
    station_id: str = Field(max_length=48, index=True)
    filename: str = Field(max_length=255)
    size: int
    sha256: str = Field(max_length=64)
    content_type: str | None = None
    protocol: str = "http"
    received_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
