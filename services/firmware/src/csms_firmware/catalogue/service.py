"""The catalogue: adding images, who runs which, and who is behind the newest for its model."""

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from uuid import uuid4

from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from csms_api.problems import Problem
from csms_core.events.firmware import FirmwareImageAddedData
from csms_firmware.catalogue.models import DownloadLink, FirmwareImage
from csms_firmware.catalogue.schemas import ImageMetadata
from csms_firmware.catalogue.signature import SignatureCheck, check_signature
from csms_firmware.db import utc_now
from csms_firmware.multipart import read_form
from csms_firmware.outbox import emit
from csms_firmware.stations.models import FirmwareStation
from csms_firmware.store import BlobStore, TooLarge
from csms_firmware.tokens import new_token
from csms_firmware.versions import version_key

FILES_PATH = "/firmware/files"

logger = logging.getLogger(__name__)


Visible = SelectOfScalar[str] | None  # the station ids a caller may see; None: all


def _running(image: FirmwareImage, visible: Visible = None) -> ColumnElement[bool]:
    return and_(
        col(FirmwareStation.vendor) == image.vendor,
        col(FirmwareStation.model).in_(image.models),
        col(FirmwareStation.firmware_version) == image.version,
        *_among(visible),
    )


def _among(visible: Visible) -> list[ColumnElement[bool]]:
    return [] if visible is None else [col(FirmwareStation.station_id).in_(visible)]


async def receive_image(
    session: AsyncSession,
    store: BlobStore,
    content_type: str,
    body: AsyncIterator[bytes],
    limit: int,
) -> FirmwareImage:
    """Stream an upload into the store, verify it and add it to the catalogue."""
    try:
        async with store.writer(limit) as writer:
            form = await read_form(content_type, body, writer)
            if form.filename is None:
                raise Problem(422, "the form has no file part named 'file'", kind="missing-file")
            metadata = _metadata(form.fields)
            blob = writer.summary()
            _verify(metadata, blob.sha256, blob.md5)
            checked = _check_signature(metadata, blob.sha256)
            await _refuse_duplicate(session, metadata)
            blob = await writer.commit()
    except TooLarge as exc:
        raise Problem(413, f"the image is {exc}", kind="image-too-large", limit=exc.limit) from exc
    image = FirmwareImage(
        image_id=uuid4().hex,
        vendor=metadata.vendor,
        models=metadata.models,
        version=metadata.version,
        release_notes=metadata.release_notes,
        filename=_safe_name(form.filename),
        size=blob.size,
        sha256=blob.sha256,
        md5=blob.md5,
        signature=metadata.signature,
        signing_certificate=metadata.signing_certificate,
    )
    session.add(image)
    if checked is not None:
        logger.info(
            "signed image %s %s: %s, %s",
            image.vendor,
            image.version,
            checked.scheme,
            "verified" if checked.verified else "not verified here",
        )
    emit(
        session,
        FirmwareImageAddedData(
            image_id=image.image_id,
            vendor=image.vendor,
            models=image.models,
            version=image.version,
            size=image.size,
            sha256=image.sha256,
            signed=image.signed,
        ),
        station_id=f"image:{image.image_id}",
    )
    return image


def _metadata(fields: dict[str, list[str]]) -> ImageMetadata:
    values: dict[str, object] = {
        name: (items if name == "models" else items[0]) for name, items in fields.items()
    }
    try:
        return ImageMetadata.model_validate(values)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'form'}: {e['msg']}" for e in errors)
        raise Problem(422, detail, kind="invalid-request", errors=errors) from exc


def _verify(metadata: ImageMetadata, sha256: str, md5: str) -> None:
    for name, expected, actual in (("sha256", metadata.sha256, sha256), ("md5", metadata.md5, md5)):
        if expected is not None and expected.lower() != actual:
            raise Problem(
                422,
                f"the file's {name} is {actual}, not {expected.lower()}: the upload was damaged "
                "or the checksum is wrong; nothing was stored",
                kind="checksum-mismatch",
                expected=expected.lower(),
                actual=actual,
            )


def _check_signature(metadata: ImageMetadata, sha256: str) -> SignatureCheck | None:
    if metadata.signature is None or metadata.signing_certificate is None:
        return None
    return check_signature(metadata.signature, metadata.signing_certificate, sha256)


async def _refuse_duplicate(session: AsyncSession, metadata: ImageMetadata) -> None:
    existing = (
        await session.exec(
            select(FirmwareImage).where(
                FirmwareImage.vendor == metadata.vendor, FirmwareImage.version == metadata.version
            )
        )
    ).first()
    if existing is not None:
        raise Problem(
            409,
            f"{metadata.vendor} {metadata.version} is in the catalogue already "
            f"(image {existing.image_id})",
            kind="image-exists",
            image_id=existing.image_id,
        )


def _safe_name(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip() or "firmware.bin"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:255]


async def station_counts(
    session: AsyncSession, images: Sequence[FirmwareImage], visible: Visible = None
) -> dict[str, int]:
    counts: dict[str, int] = {}
    for image in images:
        query = select(func.count()).select_from(FirmwareStation).where(_running(image, visible))
        counts[image.image_id] = (await session.exec(query)).one()
    return counts


async def stations_running(
    session: AsyncSession, image: FirmwareImage, limit: int, offset: int, visible: Visible = None
) -> tuple[list[FirmwareStation], int]:
    query = select(FirmwareStation).where(_running(image, visible))
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(FirmwareStation.station_id)).limit(limit).offset(offset)
    )
    return list(rows), total


async def newest_images(session: AsyncSession) -> dict[tuple[str, str], FirmwareImage]:
    """The newest image of every (vendor, model) the catalogue has one for."""
    newest: dict[tuple[str, str], FirmwareImage] = {}
    by_model: dict[tuple[str, str], list[FirmwareImage]] = defaultdict(list)
    for image in await session.exec(select(FirmwareImage)):
        for model in image.models:
            by_model[(image.vendor, model)].append(image)
    for key, images in by_model.items():
        newest[key] = max(images, key=lambda i: (version_key(i.version), i.created_at))
    return newest


async def outdated(
    session: AsyncSession, limit: int, offset: int, visible: Visible = None
) -> tuple[list[tuple[FirmwareStation, FirmwareImage]], int]:
    """Stations not on the newest image for their vendor and model."""
    newest = await newest_images(session)
    if not newest:
        return [], 0
    behind = or_(
        *(
            and_(
                col(FirmwareStation.vendor) == vendor,
                col(FirmwareStation.model) == model,
                or_(
                    col(FirmwareStation.firmware_version).is_(None),
                    col(FirmwareStation.firmware_version) != image.version,
                ),
            )
            for (vendor, model), image in newest.items()
        )
    )
    query = select(FirmwareStation).where(behind, *_among(visible))
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(FirmwareStation.station_id)).limit(limit).offset(offset)
    )
    return [
        (station, newest[(station.vendor or "", station.model or "")]) for station in rows
    ], total


def new_download_link(
    session: AsyncSession,
    image: FirmwareImage,
    *,
    station_id: str,
    request_id: int | None,
    base_url: str,
    ttl_s: float,
    now: datetime | None = None,
) -> str:
    """A URL only this request knows, valid for ``ttl_s``."""
    token, hashed = new_token()
    session.add(
        DownloadLink(
            token_hash=hashed,
            image_id=image.image_id,
            station_id=station_id,
            request_id=request_id,
            expires_at=(now or utc_now()) + timedelta(seconds=ttl_s),
        )
    )
    return f"{base_url}{FILES_PATH}/{token}/{image.filename}"
