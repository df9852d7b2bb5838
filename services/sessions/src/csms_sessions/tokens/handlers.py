"""Handlers of a station's Authorize request (1.6 idTag, 2.x idToken)."""

from csms_ocpp.messages import (
    AUTHORIZE,
    AUTHORIZE_16,
    AuthorizeRequest,
    AuthorizeRequest16,
    AuthorizeResponse,
    AuthorizeResponse16,
)
from csms_sessions.context import EventContext, calls
from csms_sessions.tokens.service import authorize, id_tag_info, id_token_info


@calls.decides(AUTHORIZE_16)
async def on_authorize_16(ctx: EventContext, request: AuthorizeRequest16) -> AuthorizeResponse16:
    """Whether the presented idTag may charge here."""
    station_id = ctx.station.station_id
    decision = await authorize(ctx.session, request["idTag"], None, station_id=station_id)
    return {"idTagInfo": id_tag_info(decision)}


@calls.decides(AUTHORIZE)
async def on_authorize(ctx: EventContext, request: AuthorizeRequest) -> AuthorizeResponse:
    """Whether the presented idToken may charge here (its ISO 15118 certificate status is
    the security service's part of the answer)."""
    token = request["idToken"]
    station_id = ctx.station.station_id
    decision = await authorize(ctx.session, token["idToken"], token["type"], station_id=station_id)
    return {"idTokenInfo": id_token_info(decision)}
