"""Minimal answers to transaction messages so stations keep charging.

PLACEHOLDER — issue 3 replaces this module with the real session model
(transactions, meter values, domain events on ``csms.sessions``). Until then
a transaction is not stored; only the authorization decision is made and,
for 1.6, a unique transactionId allocated.
"""

from typing import Any

from csms_sessions.context import EventContext
from csms_sessions.tokens.service import authorize, id_tag_info, id_token_info
from csms_sessions.transactions.models import TransactionId


async def on_start_transaction(ctx: EventContext) -> dict[str, Any]:
    """OCPP 1.6: allocate a transactionId and authorize the idTag."""
    allocation = TransactionId(station_id=ctx.station.station_id, event_id=ctx.envelope.id)
    ctx.session.add(allocation)
    await ctx.session.flush()  # the database assigns the id
    decision = await authorize(ctx.session, ctx.payload["idTag"], None)
    return {"transactionId": allocation.transaction_id, "idTagInfo": id_tag_info(decision)}


async def on_stop_transaction(ctx: EventContext) -> dict[str, Any]:
    """OCPP 1.6: idTagInfo only when the stop names an idTag."""
    id_tag = ctx.payload.get("idTag")
    if id_tag is None:
        return {}
    return {"idTagInfo": id_tag_info(await authorize(ctx.session, id_tag, None))}


async def on_transaction_event(ctx: EventContext) -> dict[str, Any]:
    """OCPP 2.x: the idTokenInfo of the event's idToken (only such events wait for us)."""
    token = ctx.payload.get("idToken")
    if token is None:
        return {}
    decision = await authorize(ctx.session, token["idToken"], token["type"])
    return {"idTokenInfo": id_token_info(decision)}
