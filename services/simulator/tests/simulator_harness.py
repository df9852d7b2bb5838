"""Drive one virtual station by hand: a manual clock, and frames fed and read directly."""

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from csms_ocpp import OcppVersion
from csms_simulator.clock import ManualClock, run_until
from csms_simulator.config import SimulationConfig
from csms_simulator.station import Station
from csms_simulator.stats import FleetStats

JsonObject = dict[str, Any]
_transaction_ids = itertools.count(1000)


@dataclass(frozen=True)
class Sent:
    action: str
    payload: JsonObject


def default_answer(version: OcppVersion, action: str, payload: JsonObject) -> JsonObject:
    accepted = {"status": "Accepted"}
    if action == "BootNotification":
        return {"status": "Accepted", "currentTime": "2025-01-01T00:00:00.000Z", "interval": 300}
    if action == "Heartbeat":
        return {"currentTime": "2025-01-01T00:00:00.000Z"}
    if action == "Authorize":
        return {"idTokenInfo": accepted} if version.is_2x else {"idTagInfo": accepted}
    if action == "StartTransaction":
        return {"transactionId": next(_transaction_ids), "idTagInfo": accepted}
    return {}


Answer = Callable[[OcppVersion, str, JsonObject], JsonObject]


class Harness:
    def __init__(self, version: OcppVersion, **overrides: Any) -> None:
        config = replace(
            SimulationConfig(count=1, evses_per_station=1, validate_outgoing=True), **overrides
        )
        self.clock = ManualClock()
        self.stats = FleetStats()
        self.station = Station(
            "SIM00001", version, config, self.clock, self.stats, random.Random(7)
        )
        self.sent: list[Sent] = []
        self.answers: list[JsonObject] = []  # our answers to CSMS calls
        self.answer: Answer = default_answer
        self.online = False
        self._ids = itertools.count(1)
        self.station.start()

    @property
    def version(self) -> OcppVersion:
        return self.station.version

    def connect(self) -> None:
        self.online = True
        self.station.connected()
        self.flush()

    def disconnect(self) -> None:
        self.online = False
        self.station.disconnected()

    def flush(self) -> None:
        """Answer every CALL the station sent, until it has nothing more to say."""
        protocol = self.station.protocol
        while self.online and protocol.outbox:
            frames, protocol.outbox = protocol.outbox, []
            for raw in frames:
                frame = orjson.loads(raw)
                if frame[0] == 2:
                    self.sent.append(Sent(frame[2], frame[3]))
                    reply = self.answer(self.version, frame[2], frame[3])
                    self.station.receive(orjson.dumps([3, frame[1], reply]))
                elif frame[0] == 3:
                    self.answers.append(frame[2])

    def call(self, action: str, payload: JsonObject) -> list[Any]:
        """Send a CSMS CALL; the station's answer frame."""
        message_id = f"csms-{next(self._ids)}"
        before = len(self.station.protocol.outbox)
        self.station.receive(orjson.dumps([2, message_id, action, payload]))
        reply = orjson.loads(self.station.protocol.outbox[before])
        assert reply[1] == message_id
        self.flush()
        return list(reply)

    def run(self, seconds: float) -> None:
        """Advance simulated time, answering the station as it goes."""
        end = self.clock.now() + seconds
        while True:
            deadline = self.station.timers.next_deadline()
            if deadline is None or deadline > end:
                break
            run_until(self.clock, self.station.timers, deadline)
            self.flush()
        self.clock.time = end

    def actions(self) -> list[str]:
        return [sent.action for sent in self.sent]

    def of(self, action: str) -> list[JsonObject]:
        return [sent.payload for sent in self.sent if sent.action == action]
