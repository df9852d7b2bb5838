"""REST routes of id tokens: list, read, create or update, delete."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_sessions.api.deps import PageDep, SessionDep
from csms_sessions.api.pagination import Page
from csms_sessions.api.problems import Problem, problem_responses
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.db import utc_now
from csms_sessions.tokens.models import IdToken, TokenStatus

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
        "MacAddress, Local, ...) or idTag for a 1.6 idTag; a 1.6 station's idTag matches any type",
    )
    status: TokenStatus
    expiry_date: AwareDatetime | None = None
    group_id: str | None = Field(default=None, max_length=36, description="group id token")


class IdTokenOut(IdTokenBody):
    model_config = ConfigDict(from_attributes=True)

    id_token: str
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


@router.get("")
async def list_id_tokens(session: SessionDep, page: PageDep) -> Page[IdTokenOut]:
    """List id tokens."""
    query = select(IdToken).order_by(col(IdToken.id_token), col(IdToken.type))
    tokens = (await session.exec(query.offset(page.offset).limit(page.limit))).all()
    total = (await session.exec(select(func.count()).select_from(IdToken))).one()
    items = [IdTokenOut.model_validate(token) for token in tokens]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{id_token}", responses=problem_responses(404, 409))
async def get_id_token(
    session: SessionDep, id_token: IdTokenPath, token_type: TypeQuery = None
) -> IdTokenOut:
    """Read an id token."""
    return IdTokenOut.model_validate(await _one(session, id_token, token_type))


@router.put("/{id_token}", responses=problem_responses(422))
async def put_id_token(session: SessionDep, id_token: IdTokenPath, body: IdTokenBody) -> IdTokenOut:
    """Create or update an id token (keyed by token and type)."""
    async with session.begin():
        token = await session.get(IdToken, (id_token, body.type)) or IdToken(
            id_token=id_token, type=body.type, status=body.status
        )
        token.sqlmodel_update(body.model_dump())
        token.updated_at = utc_now()
        session.add(token)
    return IdTokenOut.model_validate(token)


@router.delete("/{id_token}", status_code=204, responses=problem_responses(404))
async def delete_id_token(
    session: SessionDep, id_token: IdTokenPath, token_type: TypeQuery = None
) -> Response:
    """Delete an id token (every type of it unless ``type`` is given)."""
    async with session.begin():
        query = delete(IdToken).where(col(IdToken.id_token) == id_token)
        if token_type is not None:
            query = query.where(col(IdToken.type) == token_type)
        deleted = await session.exec(query)
    if deleted.rowcount == 0:
        raise Problem(404, f"no id token {id_token}", kind="unknown-id-token")
    return Response(status_code=204)
