"""``csms.site-load``: an integrator's measurement of a site's non-EV load, as ``PUT .../load``."""

from csms_core.bus import Unprocessable
from csms_core.events import SiteLoadMeasured
from csms_smartcharging.charging.store import store_site_load
from csms_smartcharging.context import ChargingContext, events
from csms_smartcharging.topology.models import Site


@events.on(SiteLoadMeasured)
async def on_site_load(event: SiteLoadMeasured, ctx: ChargingContext) -> None:
    """Kept for the site it names (a bad event never gets here: its model refused it, and it
    was dead-lettered with the reason; an unknown site is dead-lettered too)."""
    measured = event.data
    site = await ctx.session.get(Site, measured.site_id)
    if site is None:
        raise Unprocessable(f"no site {measured.site_id}")
    await store_site_load(ctx.session, site, measured)
    ctx.site_id, ctx.dirty = measured.site_id, "site_load"
