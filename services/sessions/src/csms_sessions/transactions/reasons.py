"""Why a session stopped: OCPP 1.6 Reason and 2.x ReasonEnumType as one neutral vocabulary."""

from enum import StrEnum


class StopReason(StrEnum):
    LOCAL = "local"
    REMOTE = "remote"
    EV_DISCONNECTED = "ev_disconnected"
    DEAUTHORIZED = "deauthorized"
    EMERGENCY_STOP = "emergency_stop"
    POWER_LOSS = "power_loss"
    REBOOT = "reboot"
    RESET = "reset"
    UNLOCK_COMMAND = "unlock_command"
    ENERGY_LIMIT_REACHED = "energy_limit_reached"
    SOC_LIMIT_REACHED = "soc_limit_reached"
    TIME_LIMIT_REACHED = "time_limit_reached"
    STOPPED_BY_EV = "stopped_by_ev"
    TIMEOUT = "timeout"
    FAULT = "fault"
    OUT_OF_CREDIT = "out_of_credit"
    MASTER_PASS = "master_pass"  # noqa: S105 - a stop reason, not a secret
    REJECTED = "rejected"
    OTHER = "other"
    # Ended by the CSMS, not the station (docs/sessions.md: no phantom sessions).
    SUPERSEDED = "superseded"  # another transaction started on the EVSE
    EVSE_IDLE = "evse_idle"  # 1.6: the connector stayed Available past the grace
    NOT_ONGOING = "not_ongoing"  # 2.x: GetTransactionStatus said it is not ongoing


# Both versions' values; they share the common names (Local, Remote, EVDisconnected, ...).
_BY_OCPP = {
    "Local": StopReason.LOCAL,
    "Remote": StopReason.REMOTE,
    "EVDisconnected": StopReason.EV_DISCONNECTED,
    "DeAuthorized": StopReason.DEAUTHORIZED,
    "EmergencyStop": StopReason.EMERGENCY_STOP,
    "PowerLoss": StopReason.POWER_LOSS,
    "Reboot": StopReason.REBOOT,
    "HardReset": StopReason.RESET,  # 1.6
    "SoftReset": StopReason.RESET,  # 1.6
    "ImmediateReset": StopReason.RESET,  # 2.x
    "UnlockCommand": StopReason.UNLOCK_COMMAND,  # 1.6
    "EnergyLimitReached": StopReason.ENERGY_LIMIT_REACHED,
    "SOCLimitReached": StopReason.SOC_LIMIT_REACHED,
    "TimeLimitReached": StopReason.TIME_LIMIT_REACHED,
    "StoppedByEV": StopReason.STOPPED_BY_EV,
    "Timeout": StopReason.TIMEOUT,
    "GroundFault": StopReason.FAULT,
    "OvercurrentFault": StopReason.FAULT,
    "PowerQuality": StopReason.FAULT,
    "LocalOutOfCredit": StopReason.OUT_OF_CREDIT,
    "MasterPass": StopReason.MASTER_PASS,
    "ReqEnergyTransferRejected": StopReason.REJECTED,  # 2.1
    "Other": StopReason.OTHER,
}
# OCPP 1.6 StopTransaction.req reason / 2.0.1 stoppedReason: omitted means Local.
DEFAULT_OCPP_REASON = "Local"


def neutral_stop_reason(ocpp_reason: str | None) -> StopReason:
    """The neutral reason of an OCPP one (an unknown value is ``other``)."""
    return _BY_OCPP.get(ocpp_reason or DEFAULT_OCPP_REASON, StopReason.OTHER)
