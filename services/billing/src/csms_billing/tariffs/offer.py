"""The driver's tariff in a 2.1 AuthorizeResponse (``tariff``): the price shown before
charging, for a station with a local cost calculator.

The tariff is chosen by the rules that price the driver's sessions (``service.resolve``:
the token group's tariff first, then EVSE, station, site, default; ad-hoc payment tokens
get an ad-hoc tariff where there is one). An Authorize names the token, not its group;
the group is the one the sessions service gave the token's latest session billing knows
(its ``session.started``), so a token billing never saw charge is offered the station's
tariff. The tariff goes as the 2.1 TariffType that SetDefaultTariff sends
(``ocpp21.to_ocpp21``), its id the tariff's version (``wire_tariff_id``); one 2.1 cannot
express is not offered.
"""

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.sessions.models import BilledSession
from csms_billing.sessions.service import AD_HOC_TOKEN_TYPES
from csms_billing.tariffs import service
from csms_billing.tariffs.ocpp21 import Untranslatable, to_ocpp21, wire_tariff_id
from csms_core.identity import site_of
from csms_ocpp.messages import JsonObject


async def tariff_offered(
    session: AsyncSession, station_id: str, id_token: JsonObject, at: datetime
) -> JsonObject | None:
    """The tariff the driver of ``id_token`` would be priced by at ``at``, as a 2.1 TariffType;
    None when none applies or 2.1 cannot express it."""
    token, token_type = id_token.get("idToken"), id_token.get("type")
    where = service.Whereabouts(
        station_id=station_id,
        site_id=await site_of(session, station_id),
        group_id=await known_group(session, token) if isinstance(token, str) else None,
        ad_hoc=token_type in AD_HOC_TOKEN_TYPES,
    )
    found = await service.resolve(session, where, at)
    if found is None:
        return None
    record, version = found
    try:
        tariff = to_ocpp21(
            service.ocpi_tariff(version),
            wire_tariff_id(record.tariff_id, version.version),
            service.taxes_of(record),
        )
    except Untranslatable:
        return None
    return dict(tariff.wire())


async def known_group(session: AsyncSession, id_token: str) -> str | None:
    """The token's group as its latest session billing knows carried it."""
    query = (
        select(BilledSession.group_id)
        .where(col(BilledSession.id_token) == id_token)
        .order_by(col(BilledSession.started_at).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()
