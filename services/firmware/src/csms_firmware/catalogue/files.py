"""Images served to stations at their per-request URLs (no bearer token: the URL is the key).

``GET /firmware/files/{token}/{filename}``: 404 for a token nobody issued, 410 once it
expired. Range requests are served (a station may resume a download).
"""

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from sqlalchemy import update
from sqlmodel import col

from csms_api.auth import without_bearer
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_firmware.api.deps import ServiceDep
from csms_firmware.catalogue.models import DownloadLink, FirmwareImage
from csms_firmware.db import utc_now
from csms_firmware.tokens import token_hash

router = without_bearer(
    APIRouter(prefix="/firmware/files", tags=["station file transfer"]),
    "stations download images at a per-request URL whose unguessable token expires",
)


@router.get(
    "/{token}/{filename}",
    response_class=FileResponse,
    responses=problem_responses(404, 410),
)
async def download_image(
    token: str, filename: str, request: Request, service: ServiceDep
) -> FileResponse:
    """A firmware image, for the station its URL was made for."""
    async with transaction(service.factory) as session:
        link = await session.get(DownloadLink, token_hash(token))
        if link is None:
            raise Problem(404, "no such download", kind="unknown-download")
        if link.expires_at <= utc_now():
            raise Problem(410, "this download URL has expired", kind="download-expired")
        image = await session.get(FirmwareImage, link.image_id)
        if image is None:
            raise Problem(410, "the image was removed from the catalogue", kind="image-removed")
        if "range" not in request.headers:
            await session.exec(
                update(DownloadLink)
                .where(col(DownloadLink.token_hash) == link.token_hash)
                .values(downloads=DownloadLink.downloads + 1)
            )
    path = service.store.path(image.sha256)
    if path is None:
        raise Problem(410, "the image file is missing from the store", kind="image-removed")
    service.downloads_served.inc()
    return FileResponse(path, media_type="application/octet-stream", filename=image.filename)
