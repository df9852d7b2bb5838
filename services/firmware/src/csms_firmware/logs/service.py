"""Log requests: asking a station for a log, following its upload, storing the file.

1.6 GetDiagnostics answers with the name of the file it will upload (none: nothing to
upload) and reports DiagnosticsStatusNotification without a requestId; 1.6 security
GetLog and 2.x GetLog answer Accepted / Rejected / AcceptedCanceled and report
LogStatusNotification with the requestId (N01; without one only when triggered).
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.problems import Problem
from csms_core.events.firmware import LogReceivedData, LogStatusChangedData
from csms_firmware.campaigns.models import StatusRecord
from csms_firmware.campaigns.progress import repeated
from csms_firmware.db import utc_now
from csms_firmware.logs.models import LogFile, LogRequest
from csms_firmware.logs.schemas import LogRequestIn
from csms_firmware.models import StationRequest
from csms_firmware.outbox import emit
from csms_firmware.store import BlobStore, TooLarge
from csms_firmware.tokens import new_token, token_hash
from csms_firmware.wire import LogUpload

UPLOADS_PATH = "/firmware/uploads"
FAILED = frozenset(
    {"UploadFailed", "UploadFailure", "BadMessage", "PermissionDenied", "NotSupportedOperation"}
)


@dataclass(frozen=True, slots=True)
class NewLogRequest:
    request: LogRequest
    upload: LogUpload


async def create_request(
    session: AsyncSession,
    station_id: str,
    body: LogRequestIn,
    action: str,
    location_of: "LocationOf",
    ttl_s: float,
) -> NewLogRequest:
    record = StationRequest(station_id=station_id, kind="log")
    session.add(record)
    await session.flush()
    assert record.request_id is not None  # noqa: S101 - assigned by the flush
    token, hashed = new_token()
    request = LogRequest(
        request_id=record.request_id,
        station_id=station_id,
        log_type=body.log_type.value,
        action=action,
        protocol=body.protocol.value,
        token_hash=hashed,
        expires_at=utc_now() + timedelta(seconds=ttl_s),
    )
    session.add(request)
    upload = LogUpload(
        log_type=body.log_type.value,
        location=location_of(token, body.protocol.value),
        request_id=record.request_id,
        oldest=body.oldest,
        latest=body.latest,
        retries=body.retries,
        retry_interval_s=body.retry_interval_s,
    )
    return NewLogRequest(request, upload)


class LocationOf:
    """Upload URLs: HTTP at the service's public base, or FTP with the token as user."""

    def __init__(self, base_url: str, ftp_address: tuple[str, int] | None) -> None:
        self._base_url = base_url
        self._ftp = ftp_address

    def __call__(self, token: str, protocol: str) -> str:
        if protocol == "ftp":
            if self._ftp is None:
                raise Problem(422, "this CSMS runs no FTP server", kind="ftp-disabled")
            host, port = self._ftp
            return f"ftp://{token}:upload@{host}:{port}/"
        return f"{self._base_url}{UPLOADS_PATH}/{token}"


def record_answer(
    session: AsyncSession,
    request: LogRequest,
    status: str | None,
    filename: str | None,
    failure: str | None,
) -> None:
    """The station's answer to GetDiagnostics / GetLog."""
    request.updated_at = utc_now()
    if failure is not None:
        request.state, request.ocpp_status = "failed", failure
    elif request.action == "GetDiagnostics":
        request.filename = filename
        # 1.6 §6.23: no fileName when there is no diagnostic information.
        request.state = "accepted" if filename else "no-file"
    else:
        request.ocpp_status, request.filename = status, filename
        request.state = "accepted" if status in ("Accepted", "AcceptedCanceled") else "rejected"
    session.add(request)


async def _request_for(
    session: AsyncSession, station_id: str, request_id: int | None, action: str
) -> LogRequest | None:
    if request_id is not None:
        found = await session.get(LogRequest, request_id)
        return found if found is not None and found.station_id == station_id else None
    # 1.6 DiagnosticsStatusNotification has no requestId; a triggered 2.x one may not.
    actions = ["GetDiagnostics"] if action == "DiagnosticsStatusNotification" else ["GetLog"]
    query = (
        select(LogRequest)
        .where(LogRequest.station_id == station_id, col(LogRequest.action).in_(actions))
        .order_by(col(LogRequest.request_id).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def on_log_status(
    session: AsyncSession, station_id: str, action: str, status: str, request_id: int | None
) -> None:
    """A LogStatusNotification / DiagnosticsStatusNotification (repeats change nothing)."""
    if await repeated(session, "log", station_id, status, request_id):
        return
    request = await _request_for(session, station_id, request_id, action)
    session.add(
        StatusRecord(station_id=station_id, kind="log", status=status, request_id=request_id)
    )
    if request is None or status == "Idle":
        return
    request.ocpp_status, request.updated_at = status, utc_now()
    if status == "Uploading":
        request.state = "uploading" if not request.received else request.state
    elif status == "Uploaded":
        request.state = "uploaded"
    elif status == "AcceptedCanceled":
        request.state = "cancelled"  # a newer request replaced it (N01.FR.12)
    elif status in FAILED:
        request.state = "failed"
    session.add(request)
    emit(
        session,
        LogStatusChangedData(
            station_id=station_id,
            request_id=request.request_id,
            log_type=request.log_type,
            status=status,
        ),
        station_id=station_id,
    )


async def request_of_token(session: AsyncSession, token: str, *, lock: bool = False) -> LogRequest:
    """The log request a station uploads to; refused clearly when it cannot."""
    query = select(LogRequest).where(LogRequest.token_hash == token_hash(token))
    request = (await session.exec(query.with_for_update() if lock else query)).first()
    if request is None:
        raise Problem(404, "no log request has this upload URL", kind="unknown-upload")
    if request.expires_at <= utc_now():
        raise Problem(410, "this upload URL has expired", kind="upload-expired")
    if request.received:
        raise Problem(409, "a file was uploaded for this request already", kind="already-uploaded")
    return request


async def receive_file(
    session: AsyncSession,
    store: BlobStore,
    request: LogRequest,
    chunks: AsyncIterator[bytes],
    *,
    filename: str,
    content_type: str | None,
    limit: int,
    protocol: str,
) -> LogFile:
    try:
        async with store.writer(limit) as writer:
            async for chunk in chunks:
                await writer.write(chunk)
            blob = await writer.commit()
    except TooLarge as exc:
        raise Problem(413, f"the log file is {exc}", kind="log-too-large", limit=exc.limit) from exc
    return store_file(session, request, blob.sha256, blob.size, filename, content_type, protocol)


def store_file(
    session: AsyncSession,
    request: LogRequest,
    sha256: str,
    size: int,
    filename: str,
    content_type: str | None,
    protocol: str,
    received_at: datetime | None = None,
) -> LogFile:
    file = LogFile(
        request_id=request.request_id,
        station_id=request.station_id,
        filename=_safe_name(filename),
        size=size,
        sha256=sha256,
        content_type=content_type,
        protocol=protocol,
        received_at=received_at or utc_now(),
    )
    session.add(file)
    request.received, request.updated_at = True, utc_now()
    if request.state not in ("failed",):
        request.state = "uploaded"
    session.add(request)
    emit(
        session,
        LogReceivedData(
            station_id=request.station_id,
            request_id=request.request_id,
            log_type=request.log_type,
            filename=file.filename,
            size=size,
            sha256=sha256,
            protocol=protocol,
        ),
        station_id=request.station_id,
    )
    return file


def _safe_name(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip() or "log"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:255]
