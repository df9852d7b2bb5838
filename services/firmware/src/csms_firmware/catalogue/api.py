"""REST: the firmware catalogue (``/api/v1/firmware/images``, ``/api/v1/firmware/outdated``)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import AdminDep, ViewerDep, require_network_wide, visible_stations
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_firmware.api.deps import LimitQuery, OffsetQuery, Page, ServiceDep, SessionDep
from csms_firmware.campaigns.models import Campaign
from csms_firmware.campaigns.states import CampaignState
from csms_firmware.catalogue import service as catalogue
from csms_firmware.catalogue.models import FirmwareImage
from csms_firmware.catalogue.schemas import ImageOut, OutdatedStation
from csms_firmware.stations.schemas import FirmwareStationOut

router = APIRouter(prefix="/firmware", tags=["firmware catalogue"])
ImageIdPath = Annotated[str, Path(max_length=32, examples=["4f2a9c0d5e6b7a8c9d0e1f2a3b4c5d6e"])]

UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "vendor", "models", "version"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "vendor": {"type": "string", "maxLength": 50},
                        "models": {"type": "string", "description": "comma-separated"},
                        "version": {"type": "string", "maxLength": 50},
                        "release_notes": {"type": "string"},
                        "sha256": {"type": "string", "description": "verified on upload"},
                        "md5": {"type": "string", "description": "verified on upload"},
                        "signature": {"type": "string", "description": "base64"},
                        "signing_certificate": {"type": "string", "description": "PEM"},
                    },
                }
            }
        },
    }
}


async def get_image(image_id: ImageIdPath, session: SessionDep) -> FirmwareImage:
    image = await session.get(FirmwareImage, image_id)
    if image is None:
        raise Problem(404, f"no firmware image {image_id}", kind="unknown-image")
    return image


ImageDep = Annotated[FirmwareImage, Depends(get_image)]


@router.post(
    "/images",
    status_code=201,
    openapi_extra=UPLOAD_FORM,
    responses=problem_responses(409, 413, 415, 422),
)
async def upload_image(caller: AdminDep, request: Request, service: ServiceDep) -> ImageOut:
    """Add a firmware image (multipart: the file and its metadata; a checksum is verified)."""
    require_network_wide(caller, "the firmware catalogue")
    async with transaction(service.factory) as session:
        image = await catalogue.receive_image(
            session,
            service.store,
            request.headers.get("content-type", ""),
            request.stream(),
            service.settings.max_image_bytes,
        )
    service.outbox.poke()
    return ImageOut.of(image, 0)


@router.get("/images")
async def list_images(
    caller: ViewerDep,
    session: SessionDep,
    vendor: str | None = None,
    model: str | None = None,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
) -> Page[ImageOut]:
    """The catalogue, newest first, with how many stations run each image."""
    query = select(FirmwareImage)
    if vendor is not None:
        query = query.where(FirmwareImage.vendor == vendor)
    images = list(await session.exec(query.order_by(col(FirmwareImage.created_at).desc())))
    if model is not None:
        images = [image for image in images if model in image.models]
    page = images[offset : offset + limit]
    counts = await catalogue.station_counts(session, page, visible_stations(caller))
    items = [ImageOut.of(image, counts[image.image_id]) for image in page]
    return Page(items=items, total=len(images), limit=limit, offset=offset)


@router.get("/images/{image_id}", responses=problem_responses(404))
async def read_image(caller: ViewerDep, image: ImageDep, session: SessionDep) -> ImageOut:
    """One image."""
    counts = await catalogue.station_counts(session, [image], visible_stations(caller))
    return ImageOut.of(image, counts[image.image_id])


@router.get("/images/{image_id}/stations", responses=problem_responses(404))
async def image_stations(
    caller: ViewerDep,
    image: ImageDep,
    session: SessionDep,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> Page[FirmwareStationOut]:
    """The stations whose last boot reported this image's version."""
    rows, total = await catalogue.stations_running(
        session, image, limit, offset, visible_stations(caller)
    )
    return Page(
        items=[FirmwareStationOut.of(row) for row in rows], total=total, limit=limit, offset=offset
    )


@router.delete("/images/{image_id}", status_code=204, responses=problem_responses(404, 409))
async def delete_image(caller: AdminDep, image: ImageDep, service: ServiceDep) -> Response:
    """Remove an image no unfinished campaign uses."""
    require_network_wide(caller, "the firmware catalogue")
    async with transaction(service.factory) as session:
        await _refuse_if_in_use(session, image)
        await session.delete(await session.merge(image))
    if not await _blob_shared(service, image):
        await service.store.delete(image.sha256)
    return Response(status_code=204)


async def _refuse_if_in_use(session: AsyncSession, image: FirmwareImage) -> None:
    unfinished = (CampaignState.SCHEDULED, CampaignState.RUNNING, CampaignState.PAUSED)
    campaign = (
        await session.exec(
            select(Campaign).where(
                Campaign.image_id == image.image_id, col(Campaign.state).in_(unfinished)
            )
        )
    ).first()
    if campaign is not None:
        raise Problem(
            409,
            f"campaign {campaign.campaign_id} still rolls this image out",
            kind="image-in-use",
            campaign_id=campaign.campaign_id,
        )


async def _blob_shared(service: ServiceDep, image: FirmwareImage) -> bool:
    async with service.factory() as session:
        query = select(func.count()).where(FirmwareImage.sha256 == image.sha256)
        return bool((await session.exec(query)).one())


@router.get("/outdated")
async def outdated_stations(
    caller: ViewerDep, session: SessionDep, limit: LimitQuery = 100, offset: OffsetQuery = 0
) -> Page[OutdatedStation]:
    """Stations not on the newest image for their vendor and model."""
    rows, total = await catalogue.outdated(session, limit, offset, visible_stations(caller))
    items = [
        OutdatedStation(
            station_id=station.station_id,
            vendor=station.vendor or "",
            model=station.model or "",
            firmware_version=station.firmware_version,
            newest_version=image.version,
            newest_image_id=image.image_id,
            online=station.online,
        )
        for station, image in rows
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)
