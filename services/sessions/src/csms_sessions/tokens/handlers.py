"""Handler of a station's Authorize request."""

from typing import Any

from csms_sessions.context import EventContext
from csms_sessions.tokens.service import authorize, id_tag_info, id_token_info


async def on_authorize(ctx: EventContext) -> dict[str, Any]:
    """Answer whether the presented token may charge here (1.6 idTagInfo / 2.x idTokenInfo)."""
    station_id = ctx.station.station_id
    if ctx.version.is_2x:
        token = ctx.payload["idToken"]
        decision = await authorize(
            ctx.session, token["idToken"], token["type"], station_id=station_id
        )
        return {"idTokenInfo": id_token_info(decision)}
    decision = await authorize(ctx.session, ctx.payload["idTag"], None, station_id=station_id)
    return {"idTagInfo": id_tag_info(decision)}
