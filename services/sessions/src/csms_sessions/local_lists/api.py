"""REST routes of a station's local authorization list: read, replace, change, sync, check."""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import OperatorDep, ViewerDep
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_ocpp import OcppVersion
from csms_sessions.api.deps import PageDep, ServiceDep, SessionDep, StationIdDep
from csms_sessions.api.pagination import Page
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands.api import send_command
from csms_sessions.local_lists import service
from csms_sessions.local_lists.models import LocalList
from csms_sessions.local_lists.service import TokenKey
from csms_sessions.stations.models import Station
from csms_sessions.tokens.models import IdToken

router = APIRouter(
    route_class=DocumentedRoute,
    prefix="/stations/{station_id}/local-list",
    tags=["local authorization lists"],
    responses=problem_responses(404, 422),
)


# Tokens one request may name (a longer list goes as several PATCHes, or as a group); a
# station's list is sent in chunks of its own SendLocalListMaxLength either way.
MAX_TOKENS_PER_REQUEST = 10_000


class TokenRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id_token: str = Field(min_length=1, max_length=255, examples=["04A2B3C4D5E6F7"])
    type: str | None = Field(
        default=None, max_length=20, description="needed only if the id exists with several types"
    )


class FullList(BaseModel):
    """The whole list: these tokens, or every token of a group (kept up to date)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"id_tokens": [{"id_token": "04A2B3C4D5E6F7"}]}]},
    )

    id_tokens: list[TokenRef] | None = Field(default=None, max_length=MAX_TOKENS_PER_REQUEST)
    group_id: str | None = Field(default=None, min_length=1, max_length=255)

    @model_validator(mode="after")
    def _one_source(self) -> "FullList":
        if (self.id_tokens is None) == (self.group_id is None):
            raise ValueError("give either id_tokens or group_id")
        return self


class ListChanges(BaseModel):
    """A differential change: tokens to add (or refresh) and tokens to take off."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"add": [{"id_token": "CARD-2"}], "remove": []}]},
    )

    add: list[TokenRef] = Field(default_factory=list, max_length=MAX_TOKENS_PER_REQUEST)
    remove: list[TokenRef] = Field(default_factory=list, max_length=MAX_TOKENS_PER_REQUEST)

    @model_validator(mode="after")
    def _something(self) -> "ListChanges":
        if not self.add and not self.remove:
            raise ValueError("give tokens to add or to remove")
        return self


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id_token: str
    type: str
    status: str = Field(examples=["Accepted"], description="the status the list carries")
    expiry_date: datetime | None = None
    group_id: str | None = None
    evse_ids: list[int] | None = None
    synced: bool = Field(description="the station confirmed the entry as shown")
    removed: bool = Field(description="waits to be taken off the station's list")


class LocalListOut(BaseModel):
    station_id: str
    version: int = Field(description="the last list version sent")
    station_version: int | None = Field(description="the version the station confirmed")
    group_id: str | None = None
    pending: bool = Field(description="changes wait to be sent")
    last_status: str | None = Field(
        default=None, examples=["Accepted"], description="the last SendLocalList outcome"
    )
    last_synced_at: datetime | None = None
    entries: Page[EntryOut]


class GetLocalListVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _get_local_list_version(
    command: GetLocalListVersion, version: OcppVersion
) -> tuple[str, dict[str, Any]]:
    return "GetLocalListVersion", {}


class VersionCheck(BaseModel):
    station_version: int = Field(description="GetLocalListVersion's answer (1.6: -1 unsupported)")
    version: int | None = Field(description="the version the station confirmed to us")
    matches: bool


async def known_station(sessions: ServiceDep, station_id: StationIdDep) -> str:
    async with sessions.factory() as session:  # its own: the route's session begins later
        known = await session.get(Station, station_id) is not None
    if not known:
        raise Problem(404, f"no station {station_id}", kind="unknown-station")
    return station_id


KnownStationDep = Annotated[str, Depends(known_station)]


async def _out(
    session: AsyncSession, station_id: str, offset: int = 0, limit: int = 50
) -> LocalListOut:
    local_list = await session.get(LocalList, station_id, populate_existing=True)
    local_list = local_list or LocalList(station_id=station_id, needs_full=False)
    entries = await service.entries_of(session, station_id)
    page = Page[EntryOut](
        items=[EntryOut.model_validate(e) for e in entries[offset : offset + limit]],
        total=len(entries),
        limit=limit,
        offset=offset,
    )
    return LocalListOut.model_validate(local_list.model_dump() | {"entries": page})


async def _resolve(session: AsyncSession, refs: Sequence[TokenRef]) -> list[IdToken]:
    """The stored tokens ``refs`` name; 422 naming every unknown or ambiguous one."""
    tokens: list[IdToken] = []
    problems: list[str] = []
    for ref in refs:
        query = select(IdToken).where(col(IdToken.id_token) == ref.id_token)
        if ref.type is not None:
            query = query.where(col(IdToken.type) == ref.type)
        found = (await session.exec(query)).all()
        if len(found) == 1:
            tokens.append(found[0])
        else:
            problems.append(f"{ref.id_token}: {'unknown' if not found else 'give its type'}")
    if problems:
        raise Problem(422, "; ".join(problems), kind="unknown-id-token")
    return tokens


async def _on_list(
    session: AsyncSession, station_id: str, refs: Sequence[TokenRef]
) -> list[TokenKey]:
    entries = await service.entries_of(session, station_id, include_removed=False)
    keys: list[TokenKey] = []
    for ref in refs:
        matching = [
            (e.id_token, e.type)
            for e in entries
            if e.id_token == ref.id_token and ref.type in (None, e.type)
        ]
        if not matching:
            raise Problem(422, f"{ref.id_token} is not on the list", kind="not-on-the-list")
        keys += matching
    return keys


@router.get("")
async def get_local_list(
    caller: ViewerDep, session: SessionDep, station_id: KnownStationDep, page: PageDep
) -> LocalListOut:
    """Read the list we hold for the station, its version and what the station confirmed."""
    return await _out(session, station_id, page.offset, page.limit)


@router.put("", responses=problem_responses(404, 422))
async def put_local_list(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: KnownStationDep,
    body: FullList,
) -> LocalListOut:
    """Replace the whole list (a Full SendLocalList), then send it if the station is online."""
    async with session.begin():
        if body.group_id is not None:
            query = select(IdToken).where(col(IdToken.group_id) == body.group_id)
            tokens = list((await session.exec(query)).all())
        else:
            tokens = await _resolve(session, body.id_tokens or [])
        await service.replace(session, station_id, tokens, body.group_id)
    await sessions.local_lists.sync(station_id)
    return await _out(session, station_id)


@router.patch("", responses=problem_responses(404, 422))
async def patch_local_list(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: KnownStationDep,
    body: ListChanges,
) -> LocalListOut:
    """Add, refresh or remove entries (a Differential SendLocalList), then send them."""
    async with session.begin():
        upserts = await _resolve(session, body.add)
        removals = await _on_list(session, station_id, body.remove)
        await service.change(session, station_id, upserts, removals)
    await sessions.local_lists.sync(station_id)
    return await _out(session, station_id)


@router.post("/sync", responses=problem_responses(404, 422))
async def sync_local_list(
    caller: OperatorDep, sessions: ServiceDep, session: SessionDep, station_id: KnownStationDep
) -> LocalListOut:
    """Send the whole list again now (a Full update)."""
    async with session.begin():
        await service.list_of(session, station_id)
    await sessions.local_lists.sync(station_id, full=True)
    return await _out(session, station_id)


@router.post("/version-check", responses=problem_responses(404, 409, 422, 502, 504))
async def check_local_list_version(
    caller: OperatorDep, sessions: ServiceDep, session: SessionDep, station_id: KnownStationDep
) -> VersionCheck:
    """Ask the station its list version (GetLocalListVersion); a mismatch schedules a Full."""
    result = await send_command(
        sessions, session, station_id, GetLocalListVersion(), _get_local_list_version, None
    )
    response = result.response or {}
    answer = int(response.get("versionNumber", response.get("listVersion", 0)))
    async with transaction(sessions.factory) as writing:
        local_list = await service.list_of(writing, station_id)
        matches = answer == (local_list.station_version or 0)
        if not matches and answer >= 0:
            local_list.needs_full = local_list.pending = True
            local_list.retry_at = None
    if not matches:
        sessions.local_lists.wake()
    return VersionCheck(station_version=answer, version=local_list.station_version, matches=matches)
