"""REST: campaigns (``/api/v1/firmware/campaigns``)."""

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import ColumnElement, exists
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import AdminDep, Principal, ViewerDep, visible_stations
from csms_api.limits import body_limit
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_firmware.api.deps import LimitQuery, OffsetQuery, Page, ServiceDep, SessionDep
from csms_firmware.campaigns import service as campaigns
from csms_firmware.campaigns.models import Campaign, CampaignStation
from csms_firmware.campaigns.schemas import CampaignIn, CampaignOut, CampaignStationOut
from csms_firmware.campaigns.states import CampaignState, StationState

router = APIRouter(prefix="/firmware/campaigns", tags=["firmware campaigns"])
CampaignIdPath = Annotated[str, Path(max_length=32)]


def _within_sites(caller: Principal) -> ColumnElement[bool] | None:
    """Campaigns a site-limited caller may see: those of its sites' stations only."""
    visible = visible_stations(caller)
    if visible is None:
        return None
    return ~exists().where(
        col(CampaignStation.campaign_id) == col(Campaign.campaign_id),
        col(CampaignStation.station_id).not_in(visible),
    )


async def _visible(session: AsyncSession, caller: Principal, campaign_id: str) -> Campaign:
    """The campaign (404 for one that reaches a station the caller may not see)."""
    campaign = await campaigns.get(session, campaign_id)
    within = _within_sites(caller)
    if within is not None:
        query = select(Campaign.campaign_id).where(Campaign.campaign_id == campaign_id, within)
        if (await session.exec(query)).first() is None:
            raise Problem(404, f"no campaign {campaign_id}", kind="unknown-campaign")
    return campaign


# An explicit target may name up to 100,000 stations: more than the apps' 1 MiB default.
MAX_CAMPAIGN_BODY_BYTES = 8 * 1024 * 1024


@router.post("", status_code=201, responses=problem_responses(404, 409, 413, 422))
@body_limit(MAX_CAMPAIGN_BODY_BYTES)
async def create_campaign(caller: AdminDep, body: CampaignIn, service: ServiceDep) -> CampaignOut:
    """Roll an image out to a target, by the plan's waves, windows and limits (a
    site-limited caller's target is narrowed to its sites' stations)."""
    async with transaction(service.factory) as session:
        campaign = await campaigns.create(session, body, visible_stations(caller))
        view = await campaigns.view(session, campaign)
    service.changed()
    return view


@router.get("")
async def list_campaigns(
    caller: ViewerDep,
    session: SessionDep,
    state: CampaignState | None = None,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
) -> Page[CampaignOut]:
    """Campaigns, newest first."""
    query = select(Campaign)
    within = _within_sites(caller)
    if within is not None:
        query = query.where(within)
    if state is not None:
        query = query.where(Campaign.state == state)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(Campaign.created_at).desc()).limit(limit).offset(offset)
    )
    items = [await campaigns.view(session, campaign) for campaign in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{campaign_id}", responses=problem_responses(404))
async def read_campaign(
    caller: ViewerDep, campaign_id: CampaignIdPath, session: SessionDep
) -> CampaignOut:
    """A campaign's live progress: stations per state, its current wave."""
    return await campaigns.view(session, await _visible(session, caller, campaign_id))


@router.get("/{campaign_id}/stations", responses=problem_responses(404))
async def campaign_stations(
    caller: ViewerDep,
    campaign_id: CampaignIdPath,
    session: SessionDep,
    state: StationState | None = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> Page[CampaignStationOut]:
    """Each station's state in the campaign, in wave order."""
    await _visible(session, caller, campaign_id)
    query = select(CampaignStation).where(CampaignStation.campaign_id == campaign_id)
    if state is not None:
        query = query.where(CampaignStation.state == state)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(CampaignStation.position)).limit(limit).offset(offset)
    )
    return Page(
        items=[CampaignStationOut.of(row) for row in rows], total=total, limit=limit, offset=offset
    )


async def _steer(
    caller: Principal, service: ServiceDep, campaign_id: str, action: str
) -> CampaignOut:
    steer = {"pause": campaigns.pause, "resume": campaigns.resume, "cancel": campaigns.cancel}
    async with transaction(service.factory) as session:
        await _visible(session, caller, campaign_id)
        campaign = await steer[action](session, campaign_id)
        view = await campaigns.view(session, campaign)
    service.changed()
    return view


@router.post("/{campaign_id}/pause", responses=problem_responses(404, 409))
async def pause_campaign(
    caller: AdminDep, campaign_id: CampaignIdPath, service: ServiceDep
) -> CampaignOut:
    """Send no more updates (those under way go on)."""
    return await _steer(caller, service, campaign_id, "pause")


@router.post("/{campaign_id}/resume", responses=problem_responses(404, 409))
async def resume_campaign(
    caller: AdminDep, campaign_id: CampaignIdPath, service: ServiceDep
) -> CampaignOut:
    """Go on; the failure threshold counts afresh from now."""
    return await _steer(caller, service, campaign_id, "resume")


@router.post("/{campaign_id}/cancel", responses=problem_responses(404, 409))
async def cancel_campaign(
    caller: AdminDep, campaign_id: CampaignIdPath, service: ServiceDep
) -> CampaignOut:
    """Stop for good; its stations are free for another campaign."""
    return await _steer(caller, service, campaign_id, "cancel")
