"""OCPP 2.0.1 and 2.1: answers to the CSMS's CALLs (2.1-only actions fall to rejections)."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from csms_simulator import firmware, messages
from csms_simulator.clock import ocpp_time, parse_time
from csms_simulator.handlers import monitoring
from csms_simulator.profiles import ChargingProfile, Purpose, from_watts, parse_profile

if TYPE_CHECKING:
    from csms_simulator.sessions import Evse
    from csms_simulator.station import Station

JsonObject = dict[str, Any]
Handler = Callable[["Station", JsonObject], JsonObject]
REPORT_CHUNK = 20  # reportData entries per NotifyReport


def on_reset(station: "Station", payload: JsonObject) -> JsonObject:
    if "evseId" in payload:
        return {"status": "Rejected"}  # resetting a single EVSE is not supported (B11.FR.08)
    if payload["type"] == "OnIdle" and station.charging_active():
        station.pending_reset = True  # B12.FR.01: after the last transaction ends
        return {"status": "Scheduled"}
    station.timers.after(0.0, lambda: station.reboot("RemoteReset", "Reset"))
    return {"status": "Accepted"}


def on_change_availability(station: "Station", payload: JsonObject) -> JsonObject:
    charging, operative = station.charging, payload["operationalStatus"] == "Operative"
    evse_id = payload.get("evse", {}).get("id", 0)
    if evse_id != 0 and evse_id not in charging.evses:
        return {"status": "Rejected"}
    if evse_id == 0:
        charging.station_operative = operative
    targets = list(charging.evses.values()) if evse_id == 0 else [charging.evses[evse_id]]
    scheduled = False
    for evse in targets:
        if evse.session is not None and not operative:
            evse.pending_inoperative, scheduled = True, True  # G03.FR.05
            continue
        evse.operative, evse.pending_inoperative = operative, False
        if evse.session is None:
            charging.set_status(evse, charging.idle_status(evse))
    return {"status": "Scheduled" if scheduled else "Accepted"}


def on_request_start_transaction(station: "Station", payload: JsonObject) -> JsonObject:
    charging = station.charging
    evse = charging.free_evse(payload.get("evseId"))
    if evse is None:
        return {"status": "Rejected"}
    profile = payload.get("chargingProfile")
    if profile is not None and profile["chargingProfilePurpose"] != "TxProfile":
        return {"status": "Rejected"}  # F01.FR.12
    transaction_id = charging.new_transaction_id()

    def start() -> None:
        # After the answer (F01.FR.01): the EV plugs in, the transaction starts.
        if evse.session is not None:
            return
        charging.plug_in(
            evse,
            payload["idToken"]["idToken"],
            remote_start_id=payload["remoteStartId"],
            authorized=True,
            transaction_id=transaction_id,
        )
        if profile is not None:
            station.profiles.install(parse_profile(profile, evse.id, station.clock, is_2x=True))
            charging.refresh_power()

    station.timers.after(0.0, start)
    return {"status": "Accepted", "transactionId": transaction_id}


def on_request_stop_transaction(station: "Station", payload: JsonObject) -> JsonObject:
    evse = station.charging.find_transaction(payload["transactionId"])
    if evse is None:
        return {"status": "Rejected"}
    station.timers.after(0.0, lambda: station.charging.stop(evse, "Remote"))
    return {"status": "Accepted"}


def on_unlock_connector(station: "Station", payload: JsonObject) -> JsonObject:
    evse = station.charging.evses.get(payload["evseId"])
    if evse is None or payload["connectorId"] != 1:
        return {"status": "UnknownConnector"}
    if evse.charging:
        return {"status": "OngoingAuthorizedTransaction"}  # F05.FR.02
    return {"status": "Unlocked"}


def on_get_variables(station: "Station", payload: JsonObject) -> JsonObject:
    return {
        "getVariableResult": [_get_variable(station, item) for item in payload["getVariableData"]]
    }


def _get_variable(station: "Station", item: JsonObject) -> JsonObject:
    component, variable = item["component"], item["variable"]
    result: JsonObject = {"component": component, "variable": variable}
    attribute = item.get("attributeType", "Actual")
    if attribute != "Actual":
        result["attributeType"] = attribute
    key = station.device.key_for(component["name"], variable["name"])
    if key is None:
        known = station.device.knows_component(component["name"])
        result["attributeStatus"] = "UnknownVariable" if known else "UnknownComponent"
    elif attribute != "Actual":
        result["attributeStatus"] = "NotSupportedAttributeType"
    else:
        result["attributeStatus"] = "Accepted"
        result["attributeValue"] = station.device.settings[key].value
    return result


def on_set_variables(station: "Station", payload: JsonObject) -> JsonObject:
    return {
        "setVariableResult": [_set_variable(station, item) for item in payload["setVariableData"]]
    }


def _set_variable(station: "Station", item: JsonObject) -> JsonObject:
    component, variable = item["component"], item["variable"]
    result: JsonObject = {"component": component, "variable": variable}
    attribute = item.get("attributeType", "Actual")
    if "attributeType" in item:
        result["attributeType"] = attribute
    key = station.device.key_for(component["name"], variable["name"])
    if key is None:
        known = station.device.knows_component(component["name"])
        result["attributeStatus"] = "UnknownVariable" if known else "UnknownComponent"
    elif attribute != "Actual":
        result["attributeStatus"] = "NotSupportedAttributeType"
    else:
        status = station.device.set(key, item["attributeValue"])
        result["attributeStatus"] = "Rejected" if status == "NotSupported" else status
    return result


def on_get_base_report(station: "Station", payload: JsonObject) -> JsonObject:
    _send_report(station, payload["requestId"], _report_data(station))
    return {"status": "Accepted"}


def on_get_report(station: "Station", payload: JsonObject) -> JsonObject:
    wanted = {
        (entry["component"]["name"], entry.get("variable", {}).get("name"))
        for entry in payload.get("componentVariable", [])
    }
    data = [
        entry
        for entry in _report_data(station)
        if not wanted
        or (entry["component"]["name"], entry["variable"]["name"]) in wanted
        or (entry["component"]["name"], None) in wanted
    ]
    if not data or payload.get("componentCriteria"):
        return {"status": "EmptyResultSet"}  # no monitoring-based criteria are kept
    _send_report(station, payload["requestId"], data)
    return {"status": "Accepted"}


def _report_data(station: "Station") -> list[JsonObject]:
    return [
        {
            "component": {"name": component},
            "variable": {"name": variable},
            "variableAttribute": [
                {
                    "type": "Actual",
                    "value": setting.value,
                    "mutability": "ReadOnly" if setting.readonly else "ReadWrite",
                }
            ],
            "variableCharacteristics": {
                "dataType": "integer" if setting.integer else "string",
                "supportsMonitoring": False,
            },
        }
        for component, variable, setting in station.device.v2_entries()
    ]


def _send_report(station: "Station", request_id: int, data: list[JsonObject]) -> None:
    """NotifyReport in chunks (B07.FR.04: seqNo from 0, tbc on all but the last)."""
    chunks = [data[i : i + REPORT_CHUNK] for i in range(0, len(data), REPORT_CHUNK)] or [[]]
    generated_at = station.now_iso()
    for seq_no, chunk in enumerate(chunks):
        payload: JsonObject = {
            "requestId": request_id,
            "generatedAt": generated_at,
            "seqNo": seq_no,
            "tbc": seq_no < len(chunks) - 1,
        }
        if chunk:
            payload["reportData"] = chunk
        station.timers.after(0.0, _caller(station, "NotifyReport", payload))


def _caller(station: "Station", action: str, payload: JsonObject) -> Callable[[], None]:
    return lambda: station.protocol.call(action, lambda: payload)


def on_set_charging_profile(station: "Station", payload: JsonObject) -> JsonObject:
    profile = parse_profile(
        payload["chargingProfile"], payload["evseId"], station.clock, is_2x=True
    )
    if not _acceptable(station, profile):
        return {"status": "Rejected"}
    station.profiles.install(profile)
    station.charging.refresh_power()
    return {"status": "Accepted"}


def _acceptable(station: "Station", profile: ChargingProfile) -> bool:
    charging = station.charging
    if profile.evse_id != 0 and profile.evse_id not in charging.evses:
        return False
    if profile.purpose in (Purpose.STATION_MAX, Purpose.LOCAL_GENERATION):
        return profile.evse_id == 0  # K01.FR.38
    if profile.purpose is Purpose.TX:
        # K01.FR.03 / FR.09: a TxProfile names an ongoing transaction on that EVSE.
        evse = charging.evses.get(profile.evse_id)
        tx = charging.active_transaction(evse) if evse is not None else None
        return tx is not None and profile.transaction_id == tx.transaction_id
    return profile.purpose is Purpose.TX_DEFAULT  # ExternalConstraints: K01.FR.22


def on_clear_charging_profile(station: "Station", payload: JsonObject) -> JsonObject:
    criteria = payload.get("chargingProfileCriteria", {})
    purpose = criteria.get("chargingProfilePurpose")
    removed = station.profiles.clear(
        profile_id=payload.get("chargingProfileId"),
        evse_id=criteria.get("evseId"),
        purpose=Purpose.parse(purpose) if purpose else None,
        stack_level=criteria.get("stackLevel"),
    )
    station.charging.refresh_power()
    return {"status": "Accepted" if removed else "Unknown"}


def on_get_charging_profiles(station: "Station", payload: JsonObject) -> JsonObject:
    criteria, evse_id = payload["chargingProfile"], payload.get("evseId")
    ids = criteria.get("chargingProfileId")
    found = [
        profile
        for profile in station.profiles.profiles
        if (evse_id is None or profile.evse_id == evse_id)
        and (ids is None or profile.id in ids)
        and criteria.get("chargingProfilePurpose") in (None, profile.purpose.value)
        and criteria.get("stackLevel") in (None, profile.stack_level)
    ]
    if not found:
        return {"status": "NoProfiles"}
    by_evse: dict[int, list[JsonObject]] = {}
    for profile in found:
        by_evse.setdefault(profile.evse_id, []).append(profile.raw)
    for index, (each_evse, raws) in enumerate(sorted(by_evse.items())):
        report = {
            "requestId": payload["requestId"],
            "chargingLimitSource": "CSO",
            "evseId": each_evse,
            "chargingProfile": raws,
            "tbc": index < len(by_evse) - 1,
        }
        station.timers.after(0.0, _caller(station, "ReportChargingProfiles", report))
    return {"status": "Accepted"}


def on_get_composite_schedule(station: "Station", payload: JsonObject) -> JsonObject:
    charging, evse_id, duration = station.charging, payload["evseId"], payload["duration"]
    if evse_id != 0 and evse_id not in charging.evses:
        return {"status": "Rejected"}
    unit = payload.get("chargingRateUnit", "W")
    evse = charging.evses.get(evse_id)
    rating = evse.rating_w if evse else sum(each.rating_w for each in charging.evses.values())
    now = station.clock.now()
    tx = charging.active_transaction(evse) if evse else None
    periods = station.profiles.composite(evse_id, now, duration, tx, rating)
    return {
        "status": "Accepted",
        "schedule": {
            "evseId": evse_id,
            "duration": duration,
            "scheduleStart": ocpp_time(station.clock.wall(now)),
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": [
                {"startPeriod": int(offset), "limit": round(from_watts(watts, unit), 1)}
                for offset, watts in periods
            ],
        },
    }


def on_reserve_now(station: "Station", payload: JsonObject) -> JsonObject:
    charging = station.charging
    evse_id = payload.get("evseId")
    evse = charging.evses.get(evse_id) if evse_id is not None else charging.free_evse(None)
    if evse is None:
        return {"status": "Rejected" if evse_id is not None else "Occupied"}
    if evse.session is not None or evse.reservation is not None:
        return {"status": "Occupied"}
    if evse.status == "Unavailable":
        return {"status": "Unavailable"}
    expiry = station.clock.to_sim(parse_time(payload["expiryDateTime"]))
    charging.reserve(evse, payload["id"], payload["idToken"]["idToken"], expiry)
    return {"status": "Accepted"}


def on_cancel_reservation(station: "Station", payload: JsonObject) -> JsonObject:
    cancelled = station.charging.cancel_reservation(payload["reservationId"])
    return {"status": "Accepted" if cancelled else "Rejected"}


def on_update_firmware(station: "Station", payload: JsonObject) -> JsonObject:
    details = payload["firmware"]
    delay = station.clock.to_sim(parse_time(details["retrieveDateTime"])) - station.clock.now()
    status = "AcceptedCanceled" if station.firmware_busy else "Accepted"  # L01.FR.24
    firmware.start_firmware_update(
        station,
        action="FirmwareStatusNotification",
        request_id=payload["requestId"],
        delay_s=max(1.0, delay),
        signed="signature" in details,
    )
    return {"status": status}


def on_get_log(station: "Station", payload: JsonObject) -> JsonObject:
    firmware.start_log_upload(
        station, action="LogStatusNotification", request_id=payload["requestId"]
    )
    return {"status": "Accepted", "filename": f"{station.station_id}-{payload['logType']}.log"}


def on_data_transfer(station: "Station", payload: JsonObject) -> JsonObject:
    return {"status": "UnknownVendorId"}


def on_send_local_list(station: "Station", payload: JsonObject) -> JsonObject:
    station.local_list_version = payload["versionNumber"]
    return {"status": "Accepted"}


def on_get_local_list_version(station: "Station", payload: JsonObject) -> JsonObject:
    return {"versionNumber": station.local_list_version}


def on_clear_cache(station: "Station", payload: JsonObject) -> JsonObject:
    return {"status": "Accepted"}


def on_get_transaction_status(station: "Station", payload: JsonObject) -> JsonObject:
    queued = station.protocol.queued("TransactionEvent") > 0
    answer: JsonObject = {"messagesInQueue": queued}
    if "transactionId" in payload:
        answer["ongoingIndicator"] = (
            station.charging.find_transaction(payload["transactionId"]) is not None
        )
    return answer


def on_cost_updated(station: "Station", payload: JsonObject) -> JsonObject:
    return {}


_TRIGGERS = {
    "BootNotification",
    "FirmwareStatusNotification",
    "Heartbeat",
    "LogStatusNotification",
    "MeterValues",
    "StatusNotification",
    "TransactionEvent",
}


def on_trigger_message(station: "Station", payload: JsonObject) -> JsonObject:
    requested = payload["requestedMessage"]
    evse_id = payload.get("evse", {}).get("id")
    if requested not in _TRIGGERS:
        return {"status": "NotImplemented"}
    evses = _evses(station, evse_id)
    if evses is None:
        return {"status": "Rejected"}
    if requested == "BootNotification" and station.booted:
        return {"status": "Rejected"}  # F06.FR.17
    if requested == "TransactionEvent" and not any(evse.charging for evse in evses):
        return {"status": "Rejected"}
    station.timers.after(0.0, lambda: _send_triggered(station, requested, evses))
    return {"status": "Accepted"}


def _evses(station: "Station", evse_id: int | None) -> "list[Evse] | None":
    charging = station.charging
    if evse_id in (None, 0):
        return list(charging.evses.values())
    return [charging.evses[evse_id]] if evse_id in charging.evses else None


def _send_triggered(station: "Station", requested: str, evses: "list[Evse]") -> None:
    version = station.version
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
            power = evse.session.power_w if evse.session else 0.0
            value = messages.meter_value(
                version, station.now_iso(), evse.meter_wh, power, "Trigger"
            )
            station.protocol.call("MeterValues", _const({"evseId": evse.id, "meterValue": [value]}))
    elif requested == "TransactionEvent":
        for evse in evses:
            if evse.charging:
                station.charging.transaction_updated(evse, "Trigger")
    else:  # Firmware/LogStatusNotification of an idle station (F06.FR.08)
        station.protocol.call(requested, _const({"status": "Idle"}))


def _const(payload: JsonObject) -> Callable[[], JsonObject]:
    return lambda: payload


HANDLERS: dict[str, Handler] = {
    "CancelReservation": on_cancel_reservation,
    "ChangeAvailability": on_change_availability,
    "ClearCache": on_clear_cache,
    "ClearChargingProfile": on_clear_charging_profile,
    "CostUpdated": on_cost_updated,
    "DataTransfer": on_data_transfer,
    "GetBaseReport": on_get_base_report,
    "GetChargingProfiles": on_get_charging_profiles,
    "GetCompositeSchedule": on_get_composite_schedule,
    "GetLocalListVersion": on_get_local_list_version,
    "GetLog": on_get_log,
    "GetReport": on_get_report,
    "GetTransactionStatus": on_get_transaction_status,
    "GetVariables": on_get_variables,
    "RequestStartTransaction": on_request_start_transaction,
    "RequestStopTransaction": on_request_stop_transaction,
    "ReserveNow": on_reserve_now,
    "Reset": on_reset,
    "SendLocalList": on_send_local_list,
    "SetChargingProfile": on_set_charging_profile,
    "SetVariables": on_set_variables,
    "TriggerMessage": on_trigger_message,
    "UnlockConnector": on_unlock_connector,
    "UpdateFirmware": on_update_firmware,
}
HANDLERS.update(monitoring.HANDLERS)  # block N (diagnostics)
