"""``csms.charging-limits`` events: every limit sent to a station, with how it was taken."""

from datetime import datetime

from csms_core.events import ChargingLimitChanged, ChargingLimitChangedData
from csms_smartcharging.profiles.sender import Sent

SOURCE = "csms/smartcharging"


def limit_changed(
    sent: Sent, *, site_id: str, reason: str, voltage_v: float, valid_from: datetime
) -> ChargingLimitChanged:
    change = sent.change
    return ChargingLimitChanged(
        source=SOURCE,
        station_id=change.station_id,
        ocpp_version=change.ocpp_version,
        data=ChargingLimitChangedData(
            site_id=site_id,
            station_id=change.station_id,
            evse_id=change.evse_id,
            session_id=change.session_id,
            limit_a=change.limit_a,
            limit_w=round(change.limit_a * voltage_v * change.phases, 1),
            phases=change.phases,
            reason=reason,
            valid_from=valid_from,
            outcome=sent.outcome,
        ),
    )
