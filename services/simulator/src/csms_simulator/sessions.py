"""Charging sessions on a station's EVSEs: EVs arrive, authorize, charge, report, leave.

1.6: StatusNotification Preparing → Authorize → StartTransaction → Charging →
MeterValues every MeterValueSampleInterval → StopTransaction → Finishing → Available.
2.x: StatusNotification Occupied → Authorize → TransactionEvent Started → Updated
(MeterValuePeriodic, seqNo + 1 each) → Ended → Available (2.0.1 E01-E07, E12 offline).
The power drawn is recomputed whenever the limit in force may change, so it is never
above it (``profiles.py``).
"""

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csms_simulator import messages
from csms_simulator.clock import Timer
from csms_simulator.ev import Ev, drawn_power_w, next_arrival_delay, sample_ev
from csms_simulator.profiles import ActiveTransaction
from csms_simulator.protocol import Outcome

if TYPE_CHECKING:
    from csms_simulator.station import Station

JsonObject = dict[str, Any]
POWER_STEP_S = 60.0  # the EV's charge curve moves with SoC: re-evaluate at least this often
AC_RATING_W = 22_080.0  # 32 A x 3 phases x 230 V
DC_RATING_W = 50_000.0

# Neutral stop reason → (1.6 Reason, 2.x stoppedReason, 2.x triggerReason)
STOP_REASONS: dict[str, tuple[str, str, str]] = {
    "EVDisconnected": ("EVDisconnected", "EVDisconnected", "EVDeparted"),
    "Remote": ("Remote", "Remote", "RemoteStop"),
    "DeAuthorized": ("DeAuthorized", "DeAuthorized", "Deauthorized"),
    "Reset": ("HardReset", "ImmediateReset", "ResetCommand"),
    "Reboot": ("Reboot", "Reboot", "ResetCommand"),
    "UnlockCommand": ("UnlockCommand", "Other", "UnlockCommand"),
}
TX_MESSAGES_V16 = ("StartTransaction", "StopTransaction", "MeterValues")


@dataclass(slots=True)
class Session:
    ev: Ev
    id_token: str
    start_s: float = 0.0
    meter_start_wh: float = 0.0
    transaction_id: str | None = None  # 2.x: ours; 1.6: the CSMS's, once it answered
    started: bool = False
    seq_no: int = 0
    remote_start_id: int | None = None
    reservation_id: int | None = None
    power_w: float = 0.0
    updated_s: float = 0.0
    charging_state: str = "Charging"


@dataclass(slots=True)
class Evse:
    id: int
    rating_w: float
    dc: bool
    meter_wh: float
    status: str = "Available"
    operative: bool = True
    pending_inoperative: bool = False
    session: Session | None = None
    reservation: tuple[int, str] | None = None  # (reservation id, id token)
    reservation_timer: Timer | None = None
    power_timer: Timer | None = None
    timers: list[Timer] = field(default_factory=list)

    def cancel_timers(self) -> None:
        for timer in (*self.timers, self.power_timer):
            if timer is not None:
                timer.cancel()
        self.timers.clear()
        self.power_timer = None

    @property
    def charging(self) -> bool:
        return self.session is not None and self.session.started


class Charging:
    def __init__(self, station: "Station") -> None:
        self.station = station
        self.version = station.version
        rng = station.rng
        dc = rng.random() < 0.2
        self.evses = {
            evse_id: Evse(
                evse_id,
                DC_RATING_W if dc else AC_RATING_W,
                dc,
                meter_wh=float(rng.randrange(0, 1_000_000)),
            )
            for evse_id in range(1, station.config.evses_per_station + 1)
        }
        self.station_operative = True

    # --- statuses -------------------------------------------------------------------

    def start(self) -> None:
        for evse in self.evses.values():
            self._schedule_arrival(evse)

    def send_all_statuses(self) -> None:
        """After boot: every connector's status (1.6 also connector 0, the station)."""
        if not self.version.is_2x:
            self._send_status(0, "Available" if self.station_operative else "Unavailable")
        for evse in self.evses.values():
            self._send_status(evse.id, evse.status)

    def set_status(self, evse: Evse, status: str) -> None:
        before, evse.status = evse.status, status
        if messages.connector_status(self.version, before) != messages.connector_status(
            self.version, status
        ):
            self._send_status(evse.id, status)

    def _send_status(self, evse_id: int, status: str) -> None:
        station = self.station
        payload = messages.status_notification(self.version, evse_id, status, station.now_iso())
        station.protocol.call("StatusNotification", lambda: payload)

    def idle_status(self, evse: Evse) -> str:
        if not evse.operative or not self.station_operative:
            return "Unavailable"
        return "Reserved" if evse.reservation else "Available"

    # --- arrivals -------------------------------------------------------------------

    def _schedule_arrival(self, evse: Evse) -> None:
        delay = next_arrival_delay(self.station.rng, self.station.config.arrival_mean_s)
        evse.timers.append(self.station.timers.after(delay, lambda: self._arrive(evse)))

    def _arrive(self, evse: Evse) -> None:
        if evse.session is not None or evse.status in ("Unavailable", "Faulted"):
            self._schedule_arrival(evse)
            return
        reservation = evse.reservation
        token = (
            reservation[1]
            if reservation
            else self.station.rng.choice(self.station.config.id_tokens)
        )
        self.plug_in(evse, token, reservation_id=reservation[0] if reservation else None)

    def free_evse(self, evse_id: int | None) -> Evse | None:
        """The EVSE a remote start may use: the one asked for, or the first free."""
        candidates = [self.evses[evse_id]] if evse_id in self.evses else list(self.evses.values())
        if evse_id is not None and evse_id not in self.evses:
            return None
        return next(
            (evse for evse in candidates if evse.session is None and evse.status == "Available"),
            None,
        )

    def plug_in(
        self,
        evse: Evse,
        id_token: str,
        *,
        remote_start_id: int | None = None,
        authorized: bool = False,
        reservation_id: int | None = None,
        transaction_id: str | None = None,
    ) -> Session:
        station = self.station
        evse.cancel_timers()
        self._end_reservation(evse)
        session = Session(
            sample_ev(station.rng, station.clock.now()),
            id_token,
            remote_start_id=remote_start_id,
            reservation_id=reservation_id,
            transaction_id=transaction_id,
        )
        evse.session = session
        self.set_status(evse, "Preparing")
        if authorized or not station.protocol.ready:
            # Remote start (AuthorizeRemoteTxRequests=false) or offline (LocalAuthorizeOffline).
            self._start_transaction(evse)
        else:
            payload = messages.authorize(self.version, id_token)
            station.protocol.call(
                "Authorize", lambda: payload, lambda outcome: self._authorized(evse, outcome)
            )
        return session

    def _authorized(self, evse: Evse, outcome: Outcome) -> None:
        if evse.session is None:
            return
        status = _auth_status(outcome.payload or {}) if outcome.ok else "Unanswered"
        self.station.stats.authorize_status[status] += 1
        if status in ("Accepted", "Unanswered"):
            self._start_transaction(evse)  # unanswered: start offline-authorized
            return
        evse.session = None  # the driver walks away
        self.set_status(evse, self.idle_status(evse))
        self._schedule_arrival(evse)

    # --- transactions ---------------------------------------------------------------

    def _start_transaction(self, evse: Evse) -> None:
        station, session = self.station, evse.session
        assert session is not None  # noqa: S101 - called right after plug-in
        now = station.clock.now()
        session.started, session.start_s, session.updated_s = True, now, now
        session.meter_start_wh = evse.meter_wh
        station.stats.sessions_started += 1
        station.stats.active_sessions += 1
        stamp = station.now_iso()
        if self.version.is_2x:
            session.transaction_id = session.transaction_id or self.new_transaction_id()
            trigger = "RemoteStart" if session.remote_start_id is not None else "Authorized"
            self._transaction_event(evse, "Started", trigger, "Transaction.Begin", stamp)
        else:
            payload: JsonObject = {
                "connectorId": evse.id,
                "idTag": session.id_token,
                "meterStart": int(evse.meter_wh),
                "timestamp": stamp,
            }
            if session.reservation_id is not None:
                payload["reservationId"] = session.reservation_id
            station.protocol.call(
                "StartTransaction",
                lambda: payload,
                lambda outcome: self._start_answered(evse, session, outcome),
                queueable=True,
            )
        self.set_status(evse, "Charging")
        self.refresh_power()
        interval = station.device.seconds("MeterValueSampleInterval") or 60.0
        evse.timers.append(station.timers.after(interval, lambda: self._meter_tick(evse)))
        departure = session.ev.departure_s - now
        evse.timers.append(
            station.timers.after(departure, lambda: self.stop(evse, "EVDisconnected"))
        )

    def new_transaction_id(self) -> str:
        return str(uuid.UUID(int=self.station.rng.getrandbits(128)))

    def transaction_updated(self, evse: Evse, trigger: str) -> None:
        """A TransactionEvent Updated with the current meter reading (2.x)."""
        self._integrate(evse)
        context = "Trigger" if trigger == "Trigger" else "Sample.Periodic"
        self._transaction_event(evse, "Updated", trigger, context, self.station.now_iso())

    def _start_answered(self, evse: Evse, session: Session, outcome: Outcome) -> None:
        answer = outcome.payload or {}
        if "transactionId" in answer:
            session.transaction_id = str(answer["transactionId"])
        status = answer.get("idTagInfo", {}).get("status", "Accepted")
        if outcome.ok and status != "Accepted" and evse.session is session:
            self.stop(evse, "DeAuthorized")  # 1.6 §5.16: StopTransactionOnInvalidId

    def _transaction_event(
        self,
        evse: Evse,
        event_type: str,
        trigger: str,
        context: str,
        stamp: str,
        stopped_reason: str | None = None,
    ) -> None:
        station, session = self.station, evse.session
        assert session is not None and session.transaction_id is not None  # noqa: S101
        info: JsonObject = {
            "transactionId": session.transaction_id,
            "chargingState": session.charging_state if event_type != "Ended" else "EVConnected",
        }
        if session.remote_start_id is not None and event_type == "Started":
            info["remoteStartId"] = session.remote_start_id
        if stopped_reason is not None:
            info["stoppedReason"] = stopped_reason
        payload: JsonObject = {
            "eventType": event_type,
            "timestamp": stamp,
            "triggerReason": trigger,
            "seqNo": session.seq_no,
            "transactionInfo": info,
            "evse": {"id": evse.id, "connectorId": 1},
            "meterValue": [
                messages.meter_value(self.version, stamp, evse.meter_wh, session.power_w, context)
            ],
        }
        session.seq_no += 1
        if event_type == "Started":
            payload["idToken"] = messages.id_token_v2(session.id_token)
            if session.reservation_id is not None:
                payload["reservationId"] = session.reservation_id
        if not station.protocol.ready:
            payload["offline"] = True  # 2.0.1 E12.FR.04
        on_result = None
        if event_type == "Started":
            on_result = lambda outcome: self._event_answered(evse, session, outcome)  # noqa: E731
        station.protocol.call("TransactionEvent", lambda: payload, on_result, queueable=True)

    def _event_answered(self, evse: Evse, session: Session, outcome: Outcome) -> None:
        status = (outcome.payload or {}).get("idTokenInfo", {}).get("status", "Accepted")
        if status != "Accepted" and evse.session is session:
            self.stop(evse, "DeAuthorized")  # 2.0.1 E05: StopTxOnInvalidId

    def _meter_tick(self, evse: Evse) -> None:
        session, station = evse.session, self.station
        if session is None or not session.started:
            return
        self._integrate(evse)
        stamp = station.now_iso()
        if self.version.is_2x:
            self._transaction_event(evse, "Updated", "MeterValuePeriodic", "Sample.Periodic", stamp)
        else:
            value = messages.meter_value(
                self.version, stamp, evse.meter_wh, session.power_w, "Sample.Periodic"
            )
            station.protocol.call(
                "MeterValues",
                lambda: {
                    "connectorId": evse.id,
                    "transactionId": _v16_transaction_id(session),
                    "meterValue": [value],
                },
                queueable=True,
            )
        interval = station.device.seconds("MeterValueSampleInterval") or 60.0
        now = station.clock.now()
        evse.timers = [timer for timer in evse.timers if timer.deadline > now]
        evse.timers.append(station.timers.after(interval, lambda: self._meter_tick(evse)))

    def stop(self, evse: Evse, reason: str) -> bool:
        """End the transaction on this EVSE; False if there is none."""
        session, station = evse.session, self.station
        if session is None:
            return False
        if session.started:
            self._integrate(evse)
            session.power_w = 0.0
        evse.cancel_timers()
        if session.started:
            v16_reason, v2_reason, trigger = STOP_REASONS[reason]
            stamp = station.now_iso()
            if self.version.is_2x:
                self._transaction_event(
                    evse, "Ended", trigger, "Transaction.End", stamp, stopped_reason=v2_reason
                )
            else:
                self._stop_transaction_v16(evse, session, v16_reason, stamp)
            station.stats.sessions_ended += 1
            station.stats.active_sessions -= 1
            self.set_status(evse, "Finishing")
        evse.session = None
        station.profiles.end_transaction(evse.id)
        if evse.pending_inoperative:
            evse.operative, evse.pending_inoperative = False, False
        self.set_status(evse, self.idle_status(evse))
        self.refresh_power()
        self._schedule_arrival(evse)
        station.after_session_ended()
        return True

    def _stop_transaction_v16(self, evse: Evse, session: Session, reason: str, stamp: str) -> None:
        meter_stop = int(evse.meter_wh)
        self.station.protocol.call(
            "StopTransaction",
            lambda: {
                "transactionId": _v16_transaction_id(session),
                "idTag": session.id_token,
                "meterStop": meter_stop,
                "timestamp": stamp,
                "reason": reason,
            },
            queueable=True,
        )

    def stop_all(self, reason: str) -> None:
        for evse in self.evses.values():
            self.stop(evse, reason)

    def find_transaction(self, transaction_id: str) -> Evse | None:
        return next(
            (
                evse
                for evse in self.evses.values()
                if evse.session is not None and evse.session.transaction_id == transaction_id
            ),
            None,
        )

    # --- power ----------------------------------------------------------------------

    def active_transaction(self, evse: Evse) -> ActiveTransaction | None:
        session = evse.session
        if session is None or not session.started:
            return None
        return ActiveTransaction(session.transaction_id or "", session.start_s)

    def limit_w(self, evse: Evse, t: float) -> float | None:
        sharing = sum(other.charging for other in self.evses.values())
        return self.station.profiles.limit_w(evse.id, t, self.active_transaction(evse), sharing)

    def refresh_power(self) -> None:
        """Re-evaluate every charging EVSE (a profile, or the number sharing the cap, changed)."""
        for evse in self.evses.values():
            if evse.charging:
                self._integrate(evse)

    def _integrate(self, evse: Evse) -> None:
        """Account the energy since the last update, then set the power from now on."""
        session, station = evse.session, self.station
        assert session is not None  # noqa: S101
        now = station.clock.now()
        stored_wh = session.ev.charge(session.power_w, now - session.updated_s)
        evse.meter_wh += stored_wh
        station.stats.energy_wh += stored_wh
        session.updated_s = now
        limit = self.limit_w(evse, now)
        session.power_w = drawn_power_w(session.ev, evse.rating_w, limit, dc=evse.dc)
        station.stats.power(session.power_w, limit)
        self._track_charging_state(evse, session)
        self._schedule_power_check(evse, now)

    def _schedule_power_check(self, evse: Evse, now: float) -> None:
        next_change = self.station.profiles.next_change_after(now, self.active_transaction(evse))
        delay = POWER_STEP_S if next_change is None else min(POWER_STEP_S, next_change - now)
        if evse.power_timer is not None:
            evse.power_timer.cancel()
        evse.power_timer = self.station.timers.after(delay, lambda: self._power_check(evse))

    def _power_check(self, evse: Evse) -> None:
        if evse.charging:
            self._integrate(evse)

    def _track_charging_state(self, evse: Evse, session: Session) -> None:
        state = (
            "Charging"
            if session.power_w > 0
            else ("SuspendedEV" if session.ev.full else "SuspendedEVSE")
        )
        if state == session.charging_state:
            return
        session.charging_state = state
        self.set_status(evse, state)
        if self.version.is_2x:
            stamp = self.station.now_iso()
            self._transaction_event(
                evse, "Updated", "ChargingStateChanged", "Sample.Periodic", stamp
            )

    # --- reservations ---------------------------------------------------------------

    def reserve(self, evse: Evse, reservation_id: int, id_token: str, expiry_s: float) -> None:
        self._end_reservation(evse)
        evse.reservation = (reservation_id, id_token)
        delay = max(0.0, expiry_s - self.station.clock.now())
        evse.reservation_timer = self.station.timers.after(
            delay, lambda: self._reservation_expired(evse)
        )
        self.set_status(evse, "Reserved")

    def cancel_reservation(self, reservation_id: int) -> bool:
        for evse in self.evses.values():
            if evse.reservation and evse.reservation[0] == reservation_id:
                self._end_reservation(evse)
                self.set_status(evse, self.idle_status(evse))
                return True
        return False

    def _end_reservation(self, evse: Evse) -> None:
        if evse.reservation_timer is not None:
            evse.reservation_timer.cancel()
        evse.reservation, evse.reservation_timer = None, None

    def _reservation_expired(self, evse: Evse) -> None:
        reservation = evse.reservation
        if reservation is None or evse.session is not None:
            return
        self._end_reservation(evse)
        self.set_status(evse, self.idle_status(evse))
        if self.version.is_2x:
            payload = {"reservationId": reservation[0], "reservationUpdateStatus": "Expired"}
            self.station.protocol.call("ReservationStatusUpdate", lambda: payload)


def _auth_status(answer: JsonObject) -> str:
    info = answer.get("idTagInfo") or answer.get("idTokenInfo") or {}
    return str(info.get("status", "Invalid"))


def _v16_transaction_id(session: Session) -> int:
    # Known once the CSMS answered StartTransaction, which is always sent first.
    return int(session.transaction_id) if session.transaction_id is not None else 0
