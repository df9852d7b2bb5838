"""Local controllers: PublishFirmware / UnpublishFirmware (2.0.1 L03/L04) and their statuses,
and asking any station for its firmware status (TriggerMessage)."""

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import AdminDep
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_core.events.firmware import PublicationStatusChangedData
from csms_core.router import StationOffline
from csms_firmware.api.deps import ServiceDep
from csms_firmware.campaigns.models import StatusRecord
from csms_firmware.campaigns.progress import repeated
from csms_firmware.catalogue.api import ImageIdPath, get_image
from csms_firmware.catalogue.models import Publication
from csms_firmware.catalogue.service import new_download_link
from csms_firmware.commands import Answer, Build
from csms_firmware.db import utc_now
from csms_firmware.models import StationRequest
from csms_firmware.outbox import emit
from csms_firmware.stations.api import StationDep
from csms_firmware.wire import (
    NotInVersion,
    publish_firmware,
    trigger_firmware_status,
    unpublish_firmware,
)

router = APIRouter(prefix="/firmware/stations/{station_id}", tags=["firmware stations"])
RESPONSES = problem_responses(404, 409, 422, 502, 504)


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_id: str = Field(max_length=32)
    retries: int | None = Field(default=None, ge=0, le=100)
    retry_interval_s: int | None = Field(default=None, ge=0, le=86400)


class PublicationOut(BaseModel):
    request_id: int
    station_id: str
    image_id: str
    status: str
    locations: list[str]
    unpublished: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, publication: Publication) -> "PublicationOut":
        return cls.model_validate(publication, from_attributes=True)


class StatusOut(BaseModel):
    action: str
    status: str | None = Field(description="the station's answer")


async def _call(service: ServiceDep, station_id: str, build: Build) -> Answer:
    try:
        answer = await service.commands.call(station_id, build)
    except StationOffline:
        raise Problem(
            409, f"no gateway holds a connection to {station_id}", kind="station-offline"
        ) from None
    except NotInVersion as exc:
        raise Problem(422, str(exc), kind="not-in-this-ocpp-version") from exc
    if not answer.answered:
        status = 504 if answer.result.outcome.value == "timeout" else 502
        raise Problem(status, f"{station_id}: {answer.failure}", kind="station-error")
    return answer


@router.post("/publications", status_code=201, responses=RESPONSES)
async def publish(
    caller: AdminDep, station: StationDep, body: PublishIn, service: ServiceDep
) -> PublicationOut:
    """Have a local controller publish an image to the stations behind it."""
    async with transaction(service.factory) as session:
        image = await get_image(body.image_id, session)
        record = StationRequest(station_id=station.station_id, kind="publish")
        session.add(record)
        await session.flush()
        assert record.request_id is not None  # noqa: S101
        location = new_download_link(
            session,
            image,
            station_id=station.station_id,
            request_id=record.request_id,
            base_url=service.settings.station_base_url(),
            ttl_s=service.settings.download_url_ttl_s,
        )
        publication = Publication(
            request_id=record.request_id, station_id=station.station_id, image_id=image.image_id
        )
        session.add(publication)
    request_id, md5 = record.request_id, image.md5
    answer = await _call(
        service,
        station.station_id,
        lambda v: publish_firmware(
            v,
            location=location,
            md5=md5,
            request_id=request_id,
            retries=body.retries,
            retry_interval_s=body.retry_interval_s,
        ),
    )
    async with transaction(service.factory) as session:
        stored = await session.get(Publication, request_id)
        assert stored is not None  # noqa: S101
        stored.status = answer.status or "Accepted"
        if stored.status != "Accepted":
            stored.status = f"Rejected:{stored.status}"
        stored.updated_at = utc_now()
        session.add(stored)
    return PublicationOut.of(stored)


@router.delete("/publications/{image_id}", responses=RESPONSES)
async def unpublish(
    caller: AdminDep, station: StationDep, image_id: ImageIdPath, service: ServiceDep
) -> StatusOut:
    """Have a local controller stop publishing an image (Unpublished, NoFirmware or
    DownloadOngoing)."""
    async with service.factory() as session:
        image = await get_image(image_id, session)
    answer = await _call(
        service, station.station_id, lambda v: unpublish_firmware(v, md5=image.md5)
    )
    if answer.status == "Unpublished":
        async with transaction(service.factory) as session:
            rows = await session.exec(
                select(Publication).where(
                    Publication.station_id == station.station_id,
                    Publication.image_id == image_id,
                )
            )
            for row in rows:
                row.unpublished, row.updated_at = True, utc_now()
                session.add(row)
    return StatusOut(action=answer.action, status=answer.status)


@router.post("/firmware-status", responses=RESPONSES)
async def trigger_status(caller: AdminDep, station: StationDep, service: ServiceDep) -> StatusOut:
    """Ask the station to report its firmware status now (TriggerMessage)."""
    answer = await _call(service, station.station_id, lambda v: trigger_firmware_status(v))
    return StatusOut(action=answer.action, status=answer.status)


async def on_publish_status(
    session: AsyncSession,
    station_id: str,
    status: str,
    request_id: int | None,
    locations: list[str],
) -> None:
    """A PublishFirmwareStatusNotification (repeats change nothing)."""
    if await repeated(session, "publish", station_id, status, request_id):
        return
    session.add(
        StatusRecord(station_id=station_id, kind="publish", status=status, request_id=request_id)
    )
    query = select(Publication).where(Publication.station_id == station_id)
    if request_id is not None:
        query = query.where(Publication.request_id == request_id)
    publication = (
        await session.exec(query.order_by(col(Publication.request_id).desc()).limit(1))
    ).first()
    if publication is None:
        return
    publication.status, publication.updated_at = status, utc_now()
    if locations:
        publication.locations = locations
    session.add(publication)
    emit(
        session,
        PublicationStatusChangedData(
            station_id=station_id,
            request_id=publication.request_id,
            image_id=publication.image_id,
            status=status,
            locations=publication.locations,
        ),
        station_id=station_id,
    )
