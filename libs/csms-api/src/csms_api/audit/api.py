"""``GET /api/v1/audit``: the audit trail, for admins (a site-limited admin sees its sites'
stations' entries only)."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from csms_api.audit import store
from csms_api.auth import AdminDep, authenticator_of, visible_stations
from csms_api.problems import ProblemRoute, problem_responses

router = APIRouter(prefix="/audit", tags=["audit"], route_class=ProblemRoute)


class AuditEntryOut(BaseModel):
    """One audited action: who, what, on which station, when, with what outcome."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="The id of its csms.audit event")
    at: datetime
    kind: Literal["rest", "command"]
    actor: str = Field(examples=["api-key:3f9c2a7b1d04"])
    actor_kind: str = Field(examples=["api-key"])
    action: str = Field(examples=["POST /api/v1/stations/{station_id}/commands/reset"])
    path: str | None = Field(default=None, examples=["/api/v1/stations/CP-1/commands/reset"])
    station_id: str | None = Field(default=None, examples=["CP-1"])
    outcome: str = Field(examples=["200"])
    detail: str | None = None
    source: str = Field(examples=["sessions"])
    client: str | None = Field(default=None, examples=["203.0.113.7"])


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
    limit: int
    offset: int


@router.get("", responses=problem_responses(401, 403, 422))
async def list_audit_entries(
    request: Request,
    caller: AdminDep,
    station_id: Annotated[str | None, Query(min_length=1, max_length=48)] = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    kind: Annotated[Literal["rest", "command"] | None, Query()] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
    until: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AuditPage:
    """The audit trail, newest first: REST calls that change state and commands to stations."""
    async with authenticator_of(request).factory() as session:
        entries, total = await store.page(
            session,
            limit=limit,
            offset=offset,
            station_id=station_id,
            actor=actor,
            kind=kind,
            since=since,
            until=until,
            visible=visible_stations(caller),
        )
    items = [AuditEntryOut.model_validate(entry) for entry in entries]
    return AuditPage(items=items, total=total, limit=limit, offset=offset)
