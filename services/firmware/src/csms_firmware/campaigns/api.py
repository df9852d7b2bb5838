"""REST: campaigns (``/api/v1/firmware/campaigns``)."""

from typing import Annotated

from fastapi import APIRouter, Path
from sqlmodel import col, func, select

from csms_api.problems import problem_responses
from csms_core.db import transaction
from csms_firmware.api.deps import LimitQuery, OffsetQuery, Page, ServiceDep, SessionDep
from csms_firmware.campaigns import service as campaigns
from csms_firmware.campaigns.models import Campaign, CampaignStation
from csms_firmware.campaigns.schemas import CampaignIn, CampaignOut, CampaignStationOut
from csms_firmware.campaigns.states import CampaignState, StationState

router = APIRouter(prefix="/firmware/campaigns", tags=["firmware campaigns"])
CampaignIdPath = Annotated[str, Path(max_length=32)]


@router.post("", status_code=201, responses=problem_responses(404, 409, 422))
async def create_campaign(body: CampaignIn, service: ServiceDep) -> CampaignOut:
    """Roll an image out to a target, by the plan's waves, windows and limits."""
    async with transaction(service.factory) as session:
        campaign = await campaigns.create(session, body)
        view = await campaigns.view(session, campaign)
    service.changed()
    return view


@router.get("")
async def list_campaigns(
    session: SessionDep,
    state: CampaignState | None = None,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
) -> Page[CampaignOut]:
    """Campaigns, newest first."""
    query = select(Campaign)
    if state is not None:
        query = query.where(Campaign.state == state)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(Campaign.created_at).desc()).limit(limit).offset(offset)
    )
    items = [await campaigns.view(session, campaign) for campaign in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{campaign_id}", responses=problem_responses(404))
async def read_campaign(campaign_id: CampaignIdPath, session: SessionDep) -> CampaignOut:
    """A campaign's live progress: stations per state, its current wave."""
    return await campaigns.view(session, await campaigns.get(session, campaign_id))


@router.get("/{campaign_id}/stations", responses=problem_responses(404))
async def campaign_stations(
    campaign_id: CampaignIdPath,
    session: SessionDep,
    state: StationState | None = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> Page[CampaignStationOut]:
    """Each station's state in the campaign, in wave order."""
    await campaigns.get(session, campaign_id)
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


async def _steer(service: ServiceDep, campaign_id: str, action: str) -> CampaignOut:
    steer = {"pause": campaigns.pause, "resume": campaigns.resume, "cancel": campaigns.cancel}
    async with transaction(service.factory) as session:
        campaign = await steer[action](session, campaign_id)
        view = await campaigns.view(session, campaign)
    service.changed()
    return view


@router.post("/{campaign_id}/pause", responses=problem_responses(404, 409))
async def pause_campaign(campaign_id: CampaignIdPath, service: ServiceDep) -> CampaignOut:
    """Send no more updates (those under way go on)."""
    return await _steer(service, campaign_id, "pause")


@router.post("/{campaign_id}/resume", responses=problem_responses(404, 409))
async def resume_campaign(campaign_id: CampaignIdPath, service: ServiceDep) -> CampaignOut:
    """Go on; the failure threshold counts afresh from now."""
    return await _steer(service, campaign_id, "resume")


@router.post("/{campaign_id}/cancel", responses=problem_responses(404, 409))
async def cancel_campaign(campaign_id: CampaignIdPath, service: ServiceDep) -> CampaignOut:
    """Stop for good; its stations are free for another campaign."""
    return await _steer(service, campaign_id, "cancel")
