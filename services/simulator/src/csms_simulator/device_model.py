"""A station's settings: 1.6 configuration keys and the 2.x device model (components/variables).

Both views share the values that drive behaviour (heartbeat and meter intervals).
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class Setting:
    value: str
    readonly: bool = False
    integer: bool = False


# (2.x component, variable) ↔ 1.6 key, for the settings both versions know.
_V2_NAMES: dict[str, tuple[str, str]] = {
    "HeartbeatInterval": ("OCPPCommCtrlr", "HeartbeatInterval"),
    "MeterValueSampleInterval": ("SampledDataCtrlr", "TxUpdatedInterval"),
    "ClockAlignedDataInterval": ("AlignedDataCtrlr", "Interval"),
    "ConnectionTimeOut": ("TxCtrlr", "EVConnectionTimeOut"),
    "LocalAuthorizeOffline": ("AuthCtrlr", "LocalAuthorizeOffline"),
    "AuthorizeRemoteTxRequests": ("AuthCtrlr", "AuthorizeRemoteStart"),
    "LocalAuthListEnabled": ("LocalAuthListCtrlr", "Enabled"),
    "WebSocketPingInterval": ("OCPPCommCtrlr", "WebSocketPingInterval"),
    "ResetRetries": ("OCPPCommCtrlr", "ResetRetries"),
    "MeterValuesSampledData": ("SampledDataCtrlr", "TxUpdatedMeasurands"),
    "NumberOfConnectors": ("ChargingStation", "NumberOfConnectors"),
    "ChargeProfileMaxStackLevel": ("SmartChargingCtrlr", "ProfileStackLevel"),
    "ChargingScheduleAllowedChargingRateUnit": ("SmartChargingCtrlr", "RateUnit"),
    "SupportedFeatureProfiles": ("ChargingStation", "SupportedFeatureProfiles"),
    "LocalAuthListMaxLength": ("LocalAuthListCtrlr", "Entries"),
    "Model": ("ChargingStation", "Model"),
    "VendorName": ("ChargingStation", "VendorName"),
}


class DeviceModel:
    def __init__(
        self,
        heartbeat_interval_s: float,
        meter_interval_s: float,
        evses: int,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.on_change = on_change
        self.settings: dict[str, Setting] = {
            "HeartbeatInterval": Setting(str(int(heartbeat_interval_s)), integer=True),
            "MeterValueSampleInterval": Setting(str(int(meter_interval_s)), integer=True),
            "ClockAlignedDataInterval": Setting("0", integer=True),
            "ConnectionTimeOut": Setting("60", integer=True),
            "LocalAuthorizeOffline": Setting("true"),
            "AuthorizeRemoteTxRequests": Setting("false"),
            "LocalAuthListEnabled": Setting("true"),
            "WebSocketPingInterval": Setting("20", integer=True),
            "ResetRetries": Setting("1", integer=True),
            "MeterValuesSampledData": Setting("Energy.Active.Import.Register,Power.Active.Import"),
            "NumberOfConnectors": Setting(str(evses), readonly=True, integer=True),
            "ChargeProfileMaxStackLevel": Setting("10", readonly=True, integer=True),
            "ChargingScheduleAllowedChargingRateUnit": Setting("Current,Power", readonly=True),
            "SupportedFeatureProfiles": Setting(
                "Core,FirmwareManagement,LocalAuthListManagement,Reservation,"
                "SmartCharging,RemoteTrigger",
                readonly=True,
            ),
            "LocalAuthListMaxLength": Setting("1000", readonly=True, integer=True),
            "Model": Setting("VirtualCharger", readonly=True),
            "VendorName": Setting("CSMS-Sim", readonly=True),
        }

    def seconds(self, key: str) -> float:
        return float(self.settings[key].value)

    def set(self, key: str, value: str) -> str:
        """Change a setting: Accepted, Rejected (read-only or bad value) or NotSupported."""
        setting = self.settings.get(key)
        if setting is None:
            return "NotSupported"
        if setting.readonly or (setting.integer and not _is_non_negative_int(value)):
            return "Rejected"
        setting.value = value
        if self.on_change is not None:
            self.on_change(key)
        return "Accepted"

    def key_for(self, component: str, variable: str) -> str | None:
        """The setting a 2.x component/variable names, if any."""
        return next(
            (key for key, names in _V2_NAMES.items() if names == (component, variable)), None
        )

    def knows_component(self, component: str) -> bool:
        return any(names[0] == component for names in _V2_NAMES.values())

    def v2_entries(self) -> list[tuple[str, str, Setting]]:
        return [(*_V2_NAMES[key], setting) for key, setting in self.settings.items()]


def _is_non_negative_int(value: str) -> bool:
    return value.isdigit()
