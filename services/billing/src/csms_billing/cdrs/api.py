"""``/cdrs``: OCPI 2.2.1 charge detail records, filtered and paged, and exports by period."""

import csv
import io
from collections.abc import AsyncIterator, Callable
from enum import StrEnum
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from csms_api.auth import PartnerDep, sees_station, visible_stations
from csms_api.problems import Problem, ProblemRoute, problem_responses
from csms_billing.api.deps import Limit, Offset, Page, ServiceDep, SessionDep
from csms_billing.cdrs import service
from csms_billing.cdrs.models import CdrRecord
from csms_billing.cdrs.ocpi import Cdr

router = APIRouter(prefix="/cdrs", tags=["billing: CDRs"], route_class=ProblemRoute)

EXPORT_CHUNK = 500
StationFilter = Annotated[str | None, Query(max_length=48)]
TokenFilter = Annotated[str | None, Query(max_length=255)]
SiteFilter = Annotated[str | None, Query(max_length=64)]
SessionFilter = Annotated[str | None, Query(max_length=36)]
From = Annotated[AwareDatetime | None, Query(description="created at or after (inclusive)")]
To = Annotated[AwareDatetime | None, Query(description="created before (exclusive)")]


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


@router.get("", response_model=Page[Cdr], response_model_exclude_none=True)
async def list_cdrs(
    caller: PartnerDep,
    session: SessionDep,
    station_id: StationFilter = None,
    id_token: TokenFilter = None,
    site_id: SiteFilter = None,
    session_id: SessionFilter = None,
    date_from: From = None,
    date_to: To = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> Page[Cdr]:
    """CDRs by creation time, filtered by station, token, site, session and period."""
    found, total = await service.find_cdrs(
        session,
        offset=offset,
        limit=limit,
        station_id=station_id,
        id_token=id_token,
        site_id=site_id,
        session_id=session_id,
        date_from=date_from,
        date_to=date_to,
        stations=visible_stations(caller),
    )
    items = [service.cdr_of(record) for record in found]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/json": {}}}},
)
async def export_cdrs(
    caller: PartnerDep,
    billing: ServiceDep,
    format: ExportFormat = ExportFormat.CSV,
    station_id: StationFilter = None,
    id_token: TokenFilter = None,
    site_id: SiteFilter = None,
    date_from: From = None,
    date_to: To = None,
) -> StreamingResponse:
    """Every CDR of a period (and site, token, station) as CSV or as a JSON array."""
    filters: dict[str, Any] = {
        "station_id": station_id,
        "id_token": id_token,
        "site_id": site_id,
        "date_from": date_from,
        "date_to": date_to,
        "stations": visible_stations(caller),
    }

    async def records() -> AsyncIterator[CdrRecord]:
        offset = 0
        while True:
            async with billing.factory() as session:
                page, _ = await service.find_cdrs(
                    session, offset=offset, limit=EXPORT_CHUNK, **filters
                )
            for record in page:
                yield record
            if len(page) < EXPORT_CHUNK:
                return
            offset += EXPORT_CHUNK

    writer = _csv if format is ExportFormat.CSV else _json
    media = "text/csv" if format is ExportFormat.CSV else "application/json"
    name = f"cdrs.{format.value}"
    return StreamingResponse(
        writer(records()),
        media_type=media,
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/{cdr_id}",
    response_model=Cdr,
    response_model_exclude_none=True,
    responses=problem_responses(404),
)
async def get_cdr(
    caller: PartnerDep,
    request: Request,
    cdr_id: Annotated[str, Path(max_length=39)],
    session: SessionDep,
) -> Cdr:
    """One CDR."""
    record = await session.get(CdrRecord, cdr_id)
    if record is None or not await sees_station(request, caller, record.station_id):
        raise Problem(404, f"no CDR {cdr_id}", kind="unknown-cdr")
    return service.cdr_of(record)


CSV_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], object]], ...] = (
    ("cdr_id", lambda c: c["id"]),
    ("credit", lambda c: bool(c.get("credit"))),
    ("credit_reference_id", lambda c: c.get("credit_reference_id", "")),
    ("session_id", lambda c: c.get("session_id", "")),
    ("location_id", lambda c: c["cdr_location"]["id"]),
    ("evse_id", lambda c: c["cdr_location"]["evse_id"]),
    ("connector_id", lambda c: c["cdr_location"]["connector_id"]),
    ("token_uid", lambda c: c["cdr_token"]["uid"]),
    ("start_date_time", lambda c: c["start_date_time"]),
    ("end_date_time", lambda c: c["end_date_time"]),
    ("currency", lambda c: c["currency"]),
    ("total_energy_kwh", lambda c: c["total_energy"]),
    ("total_time_h", lambda c: c["total_time"]),
    ("total_parking_time_h", lambda c: c.get("total_parking_time", 0)),
    ("total_cost_excl_vat", lambda c: c["total_cost"]["excl_vat"]),
    ("total_cost_incl_vat", lambda c: c["total_cost"].get("incl_vat", "")),
    ("tariff_id", lambda c: ",".join(t["id"] for t in c.get("tariffs", []))),
    ("last_updated", lambda c: c["last_updated"]),
)


async def _csv(records: AsyncIterator[CdrRecord]) -> AsyncIterator[bytes]:
    yield _csv_line([name for name, _ in CSV_COLUMNS])
    async for record in records:
        yield _csv_line([value(record.body) for _, value in CSV_COLUMNS])


def _csv_line(values: list[object]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode()


async def _json(records: AsyncIterator[CdrRecord]) -> AsyncIterator[bytes]:
    yield b"["
    first = True
    async for record in records:
        yield (b"" if first else b",") + orjson.dumps(record.body)
        first = False
    yield b"]"
