"""REST routes of API keys (admins only): create, list, read, revoke."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from csms_api.access.store import ApiKey
from csms_api.auth import AdminDep, authenticator_of, require_network_wide
from csms_api.problems import Problem, ProblemRoute, problem_responses
from csms_api.roles import Role
from csms_core.db import utc_now

router = APIRouter(prefix="/api-keys", tags=["access"], route_class=ProblemRoute)
KeyIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", examples=["3f9c2a7b1d04"])]
SiteId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class ApiKeyIn(BaseModel):
    """A new API key: its role, optionally limited to sites and expiring."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"role": "operator", "name": "depot app", "sites": ["depot-1"]}]
        },
    )

    role: Role
    name: str = Field(default="", max_length=200)
    sites: list[SiteId] | None = Field(
        default=None, max_length=1000, description="only these sites' stations; null: every site"
    )
    expires_at: AwareDatetime | None = None


class ApiKeyOut(BaseModel):
    """An API key as stored: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    key_id: str = Field(examples=["3f9c2a7b1d04"])
    name: str
    role: Role
    sites: list[str] | None
    created_at: datetime
    created_by: str | None
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    active: bool


class CreatedApiKey(ApiKeyOut):
    token: str = Field(description="the key itself: shown this once, never again")


class ApiKeyPage(BaseModel):
    items: list[ApiKeyOut]
    total: int
    limit: int
    offset: int


def _out(key: ApiKey) -> ApiKeyOut:
    now = utc_now()
    active = key.revoked_at is None and (key.expires_at is None or key.expires_at > now)
    return ApiKeyOut.model_validate({**key.model_dump(), "active": active})


@router.post("", status_code=201, responses=problem_responses(401, 403, 422))
async def create_api_key(request: Request, caller: AdminDep, body: ApiKeyIn) -> CreatedApiKey:
    """Create an API key; the answer holds the key, shown only this once."""
    require_network_wide(caller, "API keys")
    if body.expires_at is not None and body.expires_at <= utc_now():
        raise Problem(422, "expires_at is in the past", kind="invalid-expiry")
    key, token = await authenticator_of(request).keys.create(
        body.role,
        sites=body.sites,
        expires_at=body.expires_at,
        name=body.name,
        created_by=f"{caller.kind}:{caller.subject}",
    )
    return CreatedApiKey(**_out(key).model_dump(), token=token)


@router.get("", responses=problem_responses(401, 403, 422))
async def list_api_keys(
    request: Request,
    caller: AdminDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ApiKeyPage:
    """List API keys, newest first (never their secrets)."""
    keys, total = await authenticator_of(request).keys.page(limit=limit, offset=offset)
    return ApiKeyPage(items=[_out(key) for key in keys], total=total, limit=limit, offset=offset)


@router.get("/{key_id}", responses=problem_responses(401, 403, 404, 422))
async def get_api_key(request: Request, caller: AdminDep, key_id: KeyIdPath) -> ApiKeyOut:
    """Read one API key: its role, sites, expiry and last use."""
    key = await authenticator_of(request).keys.get(key_id)
    if key is None:
        raise Problem(404, f"no API key {key_id}", kind="unknown-api-key")
    return _out(key)


@router.delete("/{key_id}", status_code=204, responses=problem_responses(401, 403, 404, 422))
async def revoke_api_key(request: Request, caller: AdminDep, key_id: KeyIdPath) -> Response:
    """Revoke an API key: it stops working at once (the record stays)."""
    require_network_wide(caller, "API keys")
    if await authenticator_of(request).keys.revoke(key_id) is None:
        raise Problem(404, f"no API key {key_id}", kind="unknown-api-key")
    return Response(status_code=204)
