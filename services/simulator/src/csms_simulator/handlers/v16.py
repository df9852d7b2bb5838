"""OCPP 1.6 (with the security whitepaper): answers to the CSMS's CALLs."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from csms_simulator import firmware, messages
from csms_simulator.clock import ocpp_time, parse_time
from csms_simulator.profiles import ChargingProfile, Purpose, from_watts, parse_profile

if TYPE_CHECKING:
    from csms_simulator.station import Station

JsonObject = dict[str, Any]
Handler = Callable[["Station", JsonObject], JsonObject]


def on_reset(station: "Station", payload: JsonObject) -> JsonObject:
    station.timers.after(0.0, lambda: station.reboot("RemoteReset", "Reset"))
    return {"status": "Accepted"}


def on_change_availability(station: "Station", payload: JsonObject) -> JsonObject:
    connector_id, operative = payload["connectorId"], payload["type"] == "Operative"
    charging = station.charging
    if connector_id != 0 and connector_id not in charging.evses:
        return {"status": "Rejected"}
    targets = list(charging.evses.values()) if connector_id == 0 else [charging.evses[connector_id]]
    if connector_id == 0:
        charging.station_operative = operative
    scheduled = False
    for evse in targets:
        if evse.session is not None and not operative:
            evse.pending_inoperative, scheduled = True, True  # after the transaction (§5.2)
            continue
        evse.operative, evse.pending_inoperative = operative, False
        if evse.session is None:
            charging.set_status(evse, charging.idle_status(evse))
    return {"status": "Scheduled" if scheduled else "Accepted"}


def on_change_configuration(station: "Station", payload: JsonObject) -> JsonObject:
    return {"status": station.device.set(payload["key"], payload["value"])}


def on_get_configuration(station: "Station", payload: JsonObject) -> JsonObject:
    settings = station.device.settings
    wanted = payload.get("key") or list(settings)
    answer: JsonObject = {
        "configurationKey": [
            {"key": key, "readonly": settings[key].readonly, "value": settings[key].value}
            for key in wanted
            if key in settings
        ]
    }
    unknown = [key for key in wanted if key not in settings]
    if unknown:
        answer["unknownKey"] = unknown
    return answer


def on_clear_cache(station: "Station", payload: JsonObject) -> JsonObject:
    return {"status": "Accepted"}


def on_data_transfer(station: "Station", payload: JsonObject) -> JsonObject:
    return {"status": "UnknownVendorId"}


def on_remote_start_transaction(station: "Station", payload: JsonObject) -> JsonObject:
    charging = station.charging
    evse = charging.free_evse(payload.get("connectorId"))
    if evse is None:
        return {"status": "Rejected"}
    profile = payload.get("chargingProfile")
    if profile is not None and profile["chargingProfilePurpose"] != "TxProfile":
        return {"status": "Rejected"}  # §5.11: only a TxProfile may come with it
    id_tag = payload["idTag"]

    def start() -> None:
        if evse.session is None:
            charging.plug_in(evse, id_tag, authorized=True)
            if profile is not None:
                station.profiles.install(
                    parse_profile(profile, evse.id, station.clock, is_2x=False)
                )
                charging.refresh_power()

    station.timers.after(0.0, start)
    return {"status": "Accepted"}


def on_remote_stop_transaction(station: "Station", payload: JsonObject) -> JsonObject:
    evse = station.charging.find_transaction(str(payload["transactionId"]))
    if evse is None:
        return {"status": "Rejected"}
    station.timers.after(0.0, lambda: station.charging.stop(evse, "Remote"))
    return {"status": "Accepted"}


def on_unlock_connector(station: "Station", payload: JsonObject) -> JsonObject:
    evse = station.charging.evses.get(payload["connectorId"])
    if evse is None:
        return {"status": "NotSupported"}
    station.timers.after(0.0, lambda: station.charging.stop(evse, "UnlockCommand"))
    return {"status": "Unlocked"}


def on_get_diagnostics(station: "Station", payload: JsonObject) -> JsonObject:
    firmware.start_log_upload(station, action="DiagnosticsStatusNotification", request_id=None)
    return {"fileName": f"{station.station_id}-diagnostics.zip"}


def on_get_log(station: "Station", payload: JsonObject) -> JsonObject:
    firmware.start_log_upload(
        station, action="LogStatusNotification", request_id=payload["requestId"]
    )
    return {"status": "Accepted", "filename": f"{station.station_id}-{payload['logType']}.log"}


def on_update_firmware(station: "Station", payload: JsonObject) -> JsonObject:
    delay = station.clock.to_sim(parse_time(payload["retrieveDate"])) - station.clock.now()
    firmware.start_firmware_update(
        station,
        action="FirmwareStatusNotification",
        request_id=None,
        delay_s=max(1.0, delay),
        signed=False,
    )
    return {}


def on_signed_update_firmware(station: "Station", payload: JsonObject) -> JsonObject:
    if station.firmware_busy:
        return {"status": "Rejected"}
    retrieve = payload["firmware"]["retrieveDateTime"]
    delay = station.clock.to_sim(parse_time(retrieve)) - station.clock.now()
    firmware.start_firmware_update(
        station,
        action="SignedFirmwareStatusNotification",
        request_id=payload["requestId"],
        delay_s=max(1.0, delay),
        signed=True,
    )
    return {"status": "Accepted"}


def on_send_local_list(station: "Station", payload: JsonObject) -> JsonObject:
    station.local_list_version = payload["listVersion"]
    return {"status": "Accepted"}


def on_get_local_list_version(station: "Station", payload: JsonObject) -> JsonObject:
    return {"listVersion": station.local_list_version}


def on_reserve_now(station: "Station", payload: JsonObject) -> JsonObject:
    evse = station.charging.evses.get(payload["connectorId"])
    if evse is None:
        return {"status": "Rejected"}  # connector 0: ReserveConnectorZeroSupported is false
    if evse.session is not None or evse.reservation is not None:
        return {"status": "Occupied"}
    if evse.status == "Unavailable":
        return {"status": "Unavailable"}
    expiry = station.clock.to_sim(parse_time(payload["expiryDate"]))
    station.charging.reserve(evse, payload["reservationId"], payload["idTag"], expiry)
    return {"status": "Accepted"}


def on_cancel_reservation(station: "Station", payload: JsonObject) -> JsonObject:
    cancelled = station.charging.cancel_reservation(payload["reservationId"])
    return {"status": "Accepted" if cancelled else "Rejected"}


def on_set_charging_profile(station: "Station", payload: JsonObject) -> JsonObject:
    connector_id, raw = payload["connectorId"], payload["csChargingProfiles"]
    profile = parse_profile(raw, connector_id, station.clock, is_2x=False)
    if not _acceptable(station, profile):
        return {"status": "Rejected"}
    station.profiles.install(profile)
    station.charging.refresh_power()
    return {"status": "Accepted"}


def _acceptable(station: "Station", profile: ChargingProfile) -> bool:
    charging = station.charging
    if profile.evse_id != 0 and profile.evse_id not in charging.evses:
        return False
    if profile.purpose is Purpose.STATION_MAX:
        return profile.evse_id == 0
    if profile.purpose is Purpose.TX:
        # §5.16.3: a TxProfile needs a transaction on that connector.
        evse = charging.evses.get(profile.evse_id)
        tx = charging.active_transaction(evse) if evse is not None else None
        return tx is not None and profile.transaction_id in (None, tx.transaction_id)
    return profile.purpose is Purpose.TX_DEFAULT


def on_clear_charging_profile(station: "Station", payload: JsonObject) -> JsonObject:
    purpose = payload.get("chargingProfilePurpose")
    removed = station.profiles.clear(
        profile_id=payload.get("id"),
        evse_id=payload.get("connectorId"),
        purpose=Purpose.parse(purpose) if purpose else None,
        stack_level=payload.get("stackLevel"),
    )
    station.charging.refresh_power()
    return {"status": "Accepted" if removed else "Unknown"}


def on_get_composite_schedule(station: "Station", payload: JsonObject) -> JsonObject:
    connector_id, duration = payload["connectorId"], payload["duration"]
    charging = station.charging
    if connector_id != 0 and connector_id not in charging.evses:
        return {"status": "Rejected"}
    unit = payload.get("chargingRateUnit", "W")
    evse = charging.evses.get(connector_id)
    rating = evse.rating_w if evse else sum(each.rating_w for each in charging.evses.values())
    now = station.clock.now()
    tx = charging.active_transaction(evse) if evse else None
    periods = station.profiles.composite(connector_id, now, duration, tx, rating)
    return {
        "status": "Accepted",
        "connectorId": connector_id,
        "scheduleStart": ocpp_time(station.clock.wall(now)),
        "chargingSchedule": {
            "duration": duration,
            "startSchedule": ocpp_time(station.clock.wall(now)),
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": [
                {"startPeriod": int(offset), "limit": round(from_watts(watts, unit), 1)}
                for offset, watts in periods
            ],
        },
    }


_V16_TRIGGERS = {
    "BootNotification",
    "DiagnosticsStatusNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
    "LogStatusNotification",
}


def on_trigger_message(station: "Station", payload: JsonObject) -> JsonObject:
    requested, connector_id = payload["requestedMessage"], payload.get("connectorId")
    if requested not in _V16_TRIGGERS:
        return {"status": "NotImplemented"}
    if connector_id is not None and connector_id not in station.charging.evses:
        return {"status": "Rejected"}
    station.timers.after(0.0, lambda: _send_triggered(station, requested, connector_id))
    return {"status": "Accepted"}


def _send_triggered(station: "Station", requested: str, connector_id: int | None) -> None:
    charging, version = station.charging, station.version
    evses = [charging.evses[connector_id]] if connector_id else list(charging.evses.values())
    if requested == "BootNotification":
        station.send_boot()
    elif requested == "Heartbeat":
        station.send_heartbeat()
    elif requested == "StatusNotification":
        for evse in evses:
            payload = messages.status_notification(version, evse.id, evse.status, station.now_iso())
            station.protocol.call("StatusNotification", _const(payload))
    elif requested == "MeterValues":
        for evse in evses:
            station.protocol.call("MeterValues", _meter_values(station, evse.id))
    else:  # the *StatusNotification of an idle station (§6.14)
        station.protocol.call(requested, lambda: {"status": "Idle"})


def _meter_values(station: "Station", evse_id: int) -> Callable[[], JsonObject]:
    evse = station.charging.evses[evse_id]
    power = evse.session.power_w if evse.session else 0.0
    value = messages.meter_value(
        station.version, station.now_iso(), evse.meter_wh, power, "Trigger"
    )
    payload: JsonObject = {"connectorId": evse_id, "meterValue": [value]}
    if evse.session is not None and evse.session.transaction_id is not None:
        payload["transactionId"] = int(evse.session.transaction_id)
    return lambda: payload


def _const(payload: JsonObject) -> Callable[[], JsonObject]:
    return lambda: payload


def on_extended_trigger_message(station: "Station", payload: JsonObject) -> JsonObject:
    requested = payload["requestedMessage"]
    if requested == "SignChargePointCertificate":
        return {"status": "Rejected"}  # no security profile 3 key pair in the simulator
    return on_trigger_message(station, payload)


HANDLERS: dict[str, Handler] = {
    "CancelReservation": on_cancel_reservation,
    "ChangeAvailability": on_change_availability,
    "ChangeConfiguration": on_change_configuration,
    "ClearCache": on_clear_cache,
    "ClearChargingProfile": on_clear_charging_profile,
    "DataTransfer": on_data_transfer,
    "ExtendedTriggerMessage": on_extended_trigger_message,
    "GetCompositeSchedule": on_get_composite_schedule,
    "GetConfiguration": on_get_configuration,
    "GetDiagnostics": on_get_diagnostics,
    "GetLocalListVersion": on_get_local_list_version,
    "GetLog": on_get_log,
    "RemoteStartTransaction": on_remote_start_transaction,
    "RemoteStopTransaction": on_remote_stop_transaction,
    "ReserveNow": on_reserve_now,
    "Reset": on_reset,
    "SendLocalList": on_send_local_list,
    "SetChargingProfile": on_set_charging_profile,
    "SignedUpdateFirmware": on_signed_update_firmware,
    "TriggerMessage": on_trigger_message,
    "UnlockConnector": on_unlock_connector,
    "UpdateFirmware": on_update_firmware,
}
