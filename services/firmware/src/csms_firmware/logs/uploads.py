"""Log uploads from stations at their per-request URLs (no bearer token: the URL is the key).

``PUT`` or ``POST`` the file to ``/firmware/uploads/{token}`` (or ``.../{token}/{name}``,
as stations that append the file name do), as the raw body or as a multipart form.
Refused clearly: a token nobody issued (404), an expired one (410, a late upload), a
second file for the same request (409), a file over the size limit (413).
"""

from fastapi import APIRouter, Request
from pydantic import BaseModel

from csms_api.auth import without_bearer
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_firmware.api.deps import ServiceDep
from csms_firmware.logs import service as logs
from csms_firmware.multipart import read_form
from csms_firmware.store import StoredBlob, TooLarge

router = without_bearer(
    APIRouter(prefix=logs.UPLOADS_PATH, tags=["station file transfer"]),
    "stations upload logs to a per-request URL whose unguessable token expires",
)
RESPONSES = problem_responses(404, 409, 410, 413)


class Received(BaseModel):
    request_id: int
    filename: str
    size: int
    sha256: str


async def _receive(
    request: Request, service: ServiceDep, token: str, filename: str | None
) -> Received:
    async with service.factory() as session:
        await logs.request_of_token(session, token)
    content_type = request.headers.get("content-type", "")
    async with transaction(service.factory) as session:
        # Locked, and checked again: two uploads at once store one file.
        target = await logs.request_of_token(session, token, lock=True)
        if content_type.startswith("multipart/form-data"):
            blob, name = await _receive_form(request, service, content_type)
            file = logs.store_file(
                session, target, blob.sha256, blob.size, filename or name, None, "http"
            )
        else:
            file = await logs.receive_file(
                session,
                service.store,
                target,
                request.stream(),
                filename=filename or target.filename or "log",
                content_type=content_type or None,
                limit=service.settings.max_log_bytes,
                protocol="http",
            )
    service.outbox.poke()
    return Received(
        request_id=file.request_id, filename=file.filename, size=file.size, sha256=file.sha256
    )


async def _receive_form(
    request: Request, service: ServiceDep, content_type: str
) -> tuple[StoredBlob, str]:
    try:
        async with service.store.writer(service.settings.max_log_bytes) as writer:
            form = await read_form(content_type, request.stream(), writer, file_field="*")
            if form.filename is None:
                raise Problem(422, "the form has no file part", kind="missing-file")
            return await writer.commit(), form.filename
    except TooLarge as exc:
        raise Problem(413, f"the log file is {exc}", kind="log-too-large", limit=exc.limit) from exc


@router.put("/{token}", status_code=201, responses=RESPONSES)
async def put_upload(token: str, request: Request, service: ServiceDep) -> Received:
    """Upload a requested log (raw body)."""
    return await _receive(request, service, token, None)


@router.post("/{token}", status_code=201, responses=RESPONSES)
async def post_upload(token: str, request: Request, service: ServiceDep) -> Received:
    """Upload a requested log (multipart form or raw body)."""
    return await _receive(request, service, token, None)


@router.put("/{token}/{filename}", status_code=201, responses=RESPONSES)
async def put_named_upload(
    token: str, filename: str, request: Request, service: ServiceDep
) -> Received:
    """Upload a requested log under its name (raw body)."""
    return await _receive(request, service, token, filename)


@router.post("/{token}/{filename}", status_code=201, responses=RESPONSES)
async def post_named_upload(
    token: str, filename: str, request: Request, service: ServiceDep
) -> Received:
    """Upload a requested log under its name (multipart form or raw body)."""
    return await _receive(request, service, token, filename)
