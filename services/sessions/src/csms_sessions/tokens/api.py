"""REST routes of id tokens: list, read, create or update, delete."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import OperatorDep, ViewerDep, require_network_wide
from csms_api.problems import Problem, problem_responses
from csms_ocpp.station_id import InvalidStationId, parse_station_id
from csms_sessions.api.deps import PageDep, ServiceDep, SessionDep
from csms_sessions.api.pagination import Page
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.db import utc_now
from csms_sessions.local_lists.service import token_changed
from csms_sessions.tokens.models import TOKEN_TYPES, IdToken, TokenStatus

router = APIRouter(route_class=DocumentedRoute, prefix="/id-tokens", tags=["id tokens"])

IdTokenPath = Annotated[
    str, Path(min_length=1, max_length=255, examples=["04A2B3C4D5E6F7"], description="the token")
]
TypeQuery = Annotated[
    str | None,
    Query(
        alias="type",
        max_length=20,
        description="the token type; may be left out when there is only one",
    ),
]


class IdTokenBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"type": "ISO14443", "status": "Accepted", "expiry_date": "2030-01-01T00:00:00Z"}
            ]
        },
    )

    type: str = Field(
        min_length=1,
        max_length=20,
        description="2.x IdTokenEnumType (ISO14443, ISO15693, eMAID, KeyCode, Central, "
        "MacAddress, Local, NoAuthorization; 2.1 also DirectPayment, EVCCID, NEVI, VIN) or "
        "idTag for a 1.6 idTag; a 1.6 station's idTag matches any type",
    )
    status: TokenStatus = Field(
        description="Accepted, Blocked, Expired, Invalid or NoCredit (a 1.6 station hears "
        "Invalid for NoCredit)"
    )
    expiry_date: AwareDatetime | None = Field(default=None, description="Expired after it")
    group_id: str | None = Field(
        default=None, max_length=36, description="1.6 parentIdTag / 2.x groupIdToken"
    )
    allowed_station_ids: list[str] | None = Field(
        default=None,
        max_length=1000,
        description="only at these stations (elsewhere: 2.x NotAtThisLocation, 1.6 Invalid)",
    )
    allowed_evse_ids: list[Annotated[int, Field(ge=1)]] | None = Field(
        default=None, max_length=100, description="2.x: only at these EVSE ids (idTokenInfo.evseId)"
    )

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in TOKEN_TYPES:
            raise ValueError(f"unknown token type; one of {', '.join(sorted(TOKEN_TYPES))}")
        return value

    @field_validator("status")
    @classmethod
    def _settable_status(cls, value: TokenStatus) -> TokenStatus:
        if value is TokenStatus.NOT_AT_THIS_LOCATION:
            raise ValueError("NotAtThisLocation follows from allowed_station_ids; not settable")
        return value

    @field_validator("allowed_station_ids")
    @classmethod
    def _valid_station_ids(cls, value: list[str] | None) -> list[str] | None:
        try:
            return None if value is None else [parse_station_id(v) for v in value]
        except InvalidStationId as exc:
            raise ValueError(str(exc)) from exc


class IdTokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id_token: str
    type: str
    status: TokenStatus
    expiry_date: datetime | None = None
    group_id: str | None = None
    allowed_station_ids: list[str] | None = None
    allowed_evse_ids: list[int] | None = None
    created_at: datetime
    updated_at: datetime


async def _one(session: AsyncSession, id_token: str, token_type: str | None) -> IdToken:
    query = select(IdToken).where(col(IdToken.id_token) == id_token)
    if token_type is not None:
        query = query.where(col(IdToken.type) == token_type)
    tokens = (await session.exec(query)).all()
    if not tokens:
        raise Problem(404, f"no id token {id_token}", kind="unknown-id-token")
    if len(tokens) > 1:
        types = ", ".join(sorted(token.type for token in tokens))
        raise Problem(409, f"{id_token} exists with types {types}; pass ?type=", kind="ambiguous")
    return tokens[0]


@router.get("", responses=problem_responses(422))
async def list_id_tokens(
    caller: ViewerDep,
    session: SessionDep,
    page: PageDep,
    token_type: TypeQuery = None,
    status: Annotated[TokenStatus | None, Query()] = None,
    group_id: Annotated[str | None, Query(max_length=36)] = None,
) -> Page[IdTokenOut]:
    """List id tokens, optionally of one type, status or group."""
    query, counted = select(IdToken), select(func.count()).select_from(IdToken)
    for column, wanted in (
        (IdToken.type, token_type),
        (IdToken.status, status),
        (IdToken.group_id, group_id),
    ):
        if wanted is not None:
            query, counted = (
                query.where(col(column) == wanted),
                counted.where(col(column) == wanted),
            )
    query = query.order_by(col(IdToken.id_token), col(IdToken.type))
    tokens = (await session.exec(query.offset(page.offset).limit(page.limit))).all()
    total = (await session.exec(counted)).one()
    items = [IdTokenOut.model_validate(token) for token in tokens]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{id_token}", responses=problem_responses(404, 409))
async def get_id_token(
    caller: ViewerDep, session: SessionDep, id_token: IdTokenPath, token_type: TypeQuery = None
) -> IdTokenOut:
    """Read an id token."""
    return IdTokenOut.model_validate(await _one(session, id_token, token_type))


@router.put("/{id_token}", responses=problem_responses(422))
async def put_id_token(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    id_token: IdTokenPath,
    body: IdTokenBody,
) -> IdTokenOut:
    """Create or update an id token (keyed by token and type); local lists holding it follow."""
    require_network_wide(caller, "id tokens (they work at every site)")
    async with session.begin():
        token = await session.get(IdToken, (id_token, body.type)) or IdToken(
            id_token=id_token, type=body.type, status=body.status
        )
        token.sqlmodel_update(body.model_dump())
        token.updated_at = utc_now()
        session.add(token)
        lists_changed = await token_changed(session, id_token, body.type, token)
    if lists_changed:
        sessions.local_lists.wake()
    return IdTokenOut.model_validate(token)


@router.delete("/{id_token}", status_code=204, responses=problem_responses(404))
async def delete_id_token(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    id_token: IdTokenPath,
    token_type: TypeQuery = None,
) -> Response:
    """Delete an id token (every type of it unless ``type`` is given); lists drop it."""
    require_network_wide(caller, "id tokens (they work at every site)")
    async with session.begin():
        query = delete(IdToken).where(col(IdToken.id_token) == id_token)
        if token_type is not None:
            query = query.where(col(IdToken.type) == token_type)
        deleted = await session.exec(query)
        lists_changed = await token_changed(session, id_token, token_type, None)
    if deleted.rowcount == 0:
        raise Problem(404, f"no id token {id_token}", kind="unknown-id-token")
    if lists_changed:
        sessions.local_lists.wake()
    return Response(status_code=204)
