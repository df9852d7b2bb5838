"""REST: a station's security profile and raising it."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field
from sqlmodel import col, select

from csms_api.auth import AdminDep, ViewerDep
from csms_api.problems import Problem, ProblemRoute, problem_responses
from csms_core.identity import StationIdentity
from csms_security.api.deps import ServiceDep, SessionDep, StationIdDep
from csms_security.profiles.models import ProfileUpgrade, StationLink, UpgradeState
from csms_security.profiles.service import UpgradeRefused, UpgradeRequest

router = APIRouter(route_class=ProblemRoute, tags=["security profile"])


class UpgradeOut(BaseModel):
    id: str
    station_id: str
    from_profile: int
    target_profile: int
    state: UpgradeState
    configuration_slot: int | None
    steps: list[dict[str, Any]] = Field(description="Each call sent and what came back")
    error: str | None
    created_at: datetime
    updated_at: datetime
    deadline: datetime


class SecurityProfileOut(BaseModel):
    station_id: str
    recorded_profile: int | None = Field(
        description="The lowest profile the gateway admits the station with (null: the "
        "gateway's minimum)"
    )
    connected: bool
    connected_profile: int | None = Field(description="The profile of its latest connection")
    upgrade: UpgradeOut | None = Field(description="The latest upgrade, if any")


@router.get("/stations/{station_id}/security-profile", responses=problem_responses(404))
async def security_profile(
    caller: ViewerDep, session: SessionDep, station_id: StationIdDep
) -> SecurityProfileOut:
    """A station's recorded and current security profile, and its latest upgrade."""
    link = await session.get(StationLink, station_id)
    identity = await session.get(StationIdentity, station_id)
    if link is None and identity is None:
        raise Problem(404, f"no station {station_id}", kind="unknown-station")
    rows = await session.exec(
        select(ProfileUpgrade)
        .where(ProfileUpgrade.station_id == station_id)
        .order_by(col(ProfileUpgrade.created_at).desc())
        .limit(1)
    )
    latest = rows.first()
    return SecurityProfileOut(
        station_id=station_id,
        recorded_profile=identity.security_profile if identity is not None else None,
        connected=link is not None and link.connected,
        connected_profile=link.security_profile if link is not None else None,
        upgrade=UpgradeOut.model_validate(latest, from_attributes=True) if latest else None,
    )


@router.post(
    "/stations/{station_id}/security-profile/upgrades",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(404, 409, 422),
)
async def start_upgrade(
    caller: AdminDep, service: ServiceDep, station_id: StationIdDep, body: UpgradeRequest
) -> UpgradeOut:
    """Raise a station's security profile (2.x SetNetworkProfile, 1.6 ChangeConfiguration)."""
    try:
        upgrade = await service.upgrades.start(station_id, body)
    except UpgradeRefused as refused:
        raise Problem(refused.status, refused.detail, kind=refused.kind) from refused
    return UpgradeOut.model_validate(upgrade, from_attributes=True)


@router.get(
    "/stations/{station_id}/security-profile/upgrades/{upgrade_id}",
    responses=problem_responses(404),
)
async def get_upgrade(
    caller: ViewerDep,
    session: SessionDep,
    station_id: StationIdDep,
    upgrade_id: Annotated[str, Path(max_length=32, pattern="^[0-9a-f]+$")],
) -> UpgradeOut:
    """One upgrade and how far it got."""
    upgrade = await session.get(ProfileUpgrade, upgrade_id)
    if upgrade is None or upgrade.station_id != station_id:
        raise Problem(404, f"no upgrade {upgrade_id} of {station_id}", kind="unknown-upgrade")
    return UpgradeOut.model_validate(upgrade, from_attributes=True)
