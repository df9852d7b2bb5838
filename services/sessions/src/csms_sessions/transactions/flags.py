"""Why a session needs a second look: the station's own data disagree, or the CSMS ended it.

A flag is raised once per reason (the first detail is kept), visible over REST and
announced on ``csms.sessions`` as ``session.flagged`` (docs/sessions.md).
"""

from enum import StrEnum

from csms_sessions.context import EventContext
from csms_sessions.db import ocpp_time
from csms_sessions.transactions.events import publish_flagged
from csms_sessions.transactions.models import ChargingSession


class FlagReason(StrEnum):
    SUPERSEDED = "superseded"  # another transaction started on its EVSE: ended by the CSMS
    RESOLVED_IDLE = "resolved_idle"  # 1.6: EVSE Available past the grace: ended by the CSMS
    RESOLVED_NOT_ONGOING = "resolved_not_ongoing"  # 2.x: the station said it is not ongoing
    LATE_DATA = "late_data"  # messages arrived after the end: stored, not applied
    REPEATED_STOP = "repeated_stop"  # a second, different end message
    REPEATED_START = "repeated_start"  # a second start message with another time
    SEQ_NO_REUSED = "seq_no_reused"  # 2.x: one seqNo with two contents
    METER_READINGS_DISAGREE = "meter_readings_disagree"  # samples outside [start, stop]
    STOP_BELOW_START = "stop_below_start"  # the stop reading is below the start reading
    REGISTER_DECREASED = "register_decreased"  # the register fell inside the session


def raise_flag(
    ctx: EventContext, charging: ChargingSession, reason: FlagReason, detail: str
) -> None:
    """Flag the session for ``reason`` (once) and announce it."""
    if has_flag(charging, reason):
        return
    flag = {"reason": reason.value, "detail": detail, "flagged_at": ocpp_time(ctx.received_at)}
    # A new list: SQLAlchemy does not see a JSON list changed in place.
    charging.flags = [*charging.flags, flag]
    publish_flagged(ctx, charging, flag)


def has_flag(charging: ChargingSession, reason: FlagReason) -> bool:
    return any(flag["reason"] == reason for flag in charging.flags)
