"""One virtual charging station: boot, heartbeat, connector status, and the CALLs it answers.

The station is plain synchronous state: frames come in through ``receive``, timers fire
through ``timers``, and whatever it wants to send lands in ``protocol.outbox``. The
connection task (``connection.py``) moves bytes; tests drive a station with a manual clock.
"""

import logging
import random
from dataclasses import dataclass

from csms_ocpp import Call, CallError, OcppVersion
from csms_ocpp.frames import JsonObject
from csms_simulator import handlers, messages
from csms_simulator.clock import Clock, Timer, Timers, ocpp_time
from csms_simulator.config import SimulationConfig
from csms_simulator.device_model import DeviceModel
from csms_simulator.profiles import ProfileStore
from csms_simulator.protocol import BOOT, Outcome, Protocol
from csms_simulator.sessions import Charging
from csms_simulator.stats import FleetStats

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The station wants its connection closed, and to stay offline this long."""

    reason: str
    offline_s: float


class Station:
    def __init__(
        self,
        station_id: str,
        version: OcppVersion,
        config: SimulationConfig,
        clock: Clock,
        stats: FleetStats,
        rng: random.Random,
    ) -> None:
        self.station_id = station_id
        self.version = version
        self.config = config
        self.clock = clock
        self.stats = stats
        self.rng = rng
        self.timers = Timers(clock)
        self.protocol = Protocol(
            version,
            self.timers,
            stats,
            call_timeout_s=config.call_timeout * config.speed,
            validate_outgoing=config.validate_outgoing,
        )
        self.device = DeviceModel(
            config.heartbeat_interval_s,
            config.meter_interval_s,
            config.evses_per_station,
            on_change=self._setting_changed,
        )
        self.profiles = ProfileStore()
        self.charging = Charging(self)
        self.booted = False
        self.boot_reason = "PowerUp"
        self.disconnect_request: Disconnect | None = None
        self.firmware_busy = False
        self.firmware_version = messages.FIRMWARE
        # Decided once per station (its own seeded rng): a broken one fails every install.
        self.install_broken = rng.random() < config.install_failure_rate
        self.local_list_version = 0
        # 2.x monitors set by the CSMS (N04), by the id this station gave them.
        self.monitors: dict[int, JsonObject] = {}
        self.pending_reset = False
        self._heartbeat: Timer | None = None
        self._boot_retry: Timer | None = None

    # --- connection lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Power up: EVs start arriving whether or not the CSMS is reachable."""
        self.charging.start()

    def connected(self) -> None:
        self.stats.connected += 1
        self.disconnect_request = None
        self.protocol.connection_opened()
        self.send_boot()

    def disconnected(self) -> None:
        self.stats.connected -= 1
        self.stats.disconnects += 1
        if self.booted:
            self.stats.booted -= 1
        self.booted = False
        for timer in (self._heartbeat, self._boot_retry):
            if timer is not None:
                timer.cancel()
        self.protocol.connection_lost()

    def request_disconnect(self, reason: str, offline_s: float) -> None:
        self.disconnect_request = Disconnect(reason, offline_s)

    def now_iso(self) -> str:
        return ocpp_time(self.clock.wall())

    # --- boot and heartbeat ---------------------------------------------------------

    def send_boot(self) -> None:
        payload = messages.boot_notification(
            self.version, self.station_id, self.boot_reason, self.firmware_version
        )
        self.protocol.call(BOOT, lambda: payload, self._boot_answered)

    def _boot_answered(self, outcome: Outcome) -> None:
        if not self.protocol.connected:
            return
        answer = outcome.payload or {}
        status = str(answer.get("status", outcome.error))
        self.stats.boot_status[status] += 1
        interval = float(answer.get("interval", 0) or 0)
        if status != "Accepted":
            # 1.6 §4.2 / 2.0.1 B02-B03: retry after the interval the CSMS gave. That is the
            # CSMS's real time (its load, its fallback), not the fleet's simulated time: at
            # 20x a Pending answer's 30 s would otherwise bring the boot back in 1.5 s.
            retry = interval * self.config.speed if interval else self.config.boot_retry_s
            self._boot_retry = self.timers.after(retry, self.send_boot)
            return
        if not self.booted:
            self.stats.booted += 1
        self.booted = True
        self.boot_reason = "PowerUp"
        if interval:
            self.device.settings["HeartbeatInterval"].value = str(int(interval))
        self.protocol.boot_accepted()
        self.charging.send_all_statuses()
        self._schedule_heartbeat()

    def _schedule_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        interval = self.device.seconds("HeartbeatInterval")
        if interval > 0 and self.booted:
            self._heartbeat = self.timers.after(interval, self._beat)

    def _beat(self) -> None:
        self.send_heartbeat()
        self._schedule_heartbeat()

    def send_heartbeat(self) -> None:
        self.protocol.call("Heartbeat", dict)

    def _setting_changed(self, key: str) -> None:
        if key == "HeartbeatInterval":
            self._schedule_heartbeat()

    # --- frames from the CSMS -------------------------------------------------------

    def receive(self, raw: str | bytes) -> None:
        call = self.protocol.receive(raw)
        if call is not None:
            self.protocol.answer(call, self.handle(call))

    def handle(self, call: Call) -> JsonObject | CallError:
        """The answer to a CSMS-initiated CALL (never raises)."""
        try:
            return handlers.dispatch(self, call)
        except Exception:
            # A bug of ours must not take the station down: tell the CSMS, count it.
            logger.exception("%s: handling %s failed", self.station_id, call.action)
            self.stats.errors[f"handler:{call.action}"] += 1
            return CallError(call.message_id, "InternalError", f"{call.action} failed")

    def reboot(self, boot_reason: str, stop_reason: str = "Reset") -> None:
        """Stop every session, then drop the connection and boot again shortly."""
        self.charging.stop_all(stop_reason)
        self.boot_reason = boot_reason
        self.timers.after(1.0, lambda: self.request_disconnect("reboot", 2.0))

    def charging_active(self) -> bool:
        return any(evse.session is not None for evse in self.charging.evses.values())

    def after_session_ended(self) -> None:
        if self.pending_reset and not self.charging_active():
            self.pending_reset = False
            self.timers.after(0.0, lambda: self.reboot("RemoteReset", "Reset"))
