"""What the log routes take and answer."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from csms_firmware.logs.models import LogFile, LogRequest


class LogType(StrEnum):
    DIAGNOSTICS = "DiagnosticsLog"
    SECURITY = "SecurityLog"
    DATA_COLLECTOR = "DataCollectorLog"  # OCPP 2.1


class UploadProtocol(StrEnum):
    HTTP = "http"
    FTP = "ftp"


class LogRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    log_type: LogType = LogType.DIAGNOSTICS
    oldest: datetime | None = Field(default=None, description="oldest entries to include")
    latest: datetime | None = Field(default=None, description="latest entries to include")
    retries: int | None = Field(default=None, ge=0, le=100)
    retry_interval_s: int | None = Field(default=None, ge=0, le=86400)
    protocol: UploadProtocol = Field(
        default=UploadProtocol.HTTP,
        description="how the station uploads: HTTP PUT/POST, or FTP for 1.6 chargers",
    )


class LogFileOut(BaseModel):
    filename: str
    size: int
    sha256: str
    content_type: str | None
    protocol: str
    received_at: datetime

    @classmethod
    def of(cls, file: LogFile) -> "LogFileOut":
        return cls.model_validate(file, from_attributes=True)


class LogRequestOut(BaseModel):
    request_id: int
    station_id: str
    log_type: str
    action: str
    protocol: str
    state: str = Field(
        examples=["accepted"],
        description="requested, accepted, rejected, no-file, uploading, uploaded, failed, "
        "cancelled",
    )
    ocpp_status: str | None
    filename: str | None
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    file: LogFileOut | None

    @classmethod
    def of(cls, request: LogRequest, file: LogFile | None) -> "LogRequestOut":
        return cls(
            request_id=request.request_id,
            station_id=request.station_id,
            log_type=request.log_type,
            action=request.action,
            protocol=request.protocol,
            state=request.state,
            ocpp_status=request.ocpp_status,
            filename=request.filename,
            expires_at=request.expires_at,
            created_at=request.created_at,
            updated_at=request.updated_at,
            file=LogFileOut.of(file) if file is not None else None,
        )
