"""Who may hold a connection: caps on connections (in total and per client address), and the
record of each refused handshake that matters for security.

A refusal of a station's credentials, of a profile below the station's, of a certificate
for another station, or of an unknown station is a security event (OCPP 2.0.1 A00 /
1.6 security whitepaper: FailedToAuthenticateAtCsms, seen from our side): it is logged,
counted, and handed to the gateway's reporter (``ocpp.refusals``, which the security
service stores). An attacker repeating one is reported once per station and reason per
``REPORT_EVERY_S``, with the count of the ones in between; one trying many station ids is
reported at most ``REPORTS_PER_ADDRESS`` times per ``ADDRESS_WINDOW_S`` (every report is
a row in the security service: an attacker must not be able to fill its tables).
"""

import dataclasses
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus

REPORT_EVERY_S = 10.0
REPORTS_PER_ADDRESS = 30
ADDRESS_WINDOW_S = 60.0
_REMEMBERED = 10_000


class RefusalReason(StrEnum):
    """Why a handshake was refused, as ``csms_gateway_handshakes_refused{reason}`` names it."""

    BAD_CREDENTIALS = "auth"  # no or a wrong Basic auth password
    PROFILE_TOO_LOW = "security_profile"  # below the gateway's or the station's profile
    CERTIFICATE_MISMATCH = "certificate"  # a client certificate for another station
    UNKNOWN_STATION = "unknown_station"  # never registered, and the policy refuses those
    FLOODING = "flooding"  # cut off after CALLs over the rate limit (not a handshake)


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused handshake of a station id, for the security record."""

    station_id: str
    reason: RefusalReason
    status: int
    detail: str
    remote_address: str
    offered_profile: int | None = None
    required_profile: int | None = None
    ocpp_version: str | None = None  # the one negotiated, where it got that far
    repeated: int = 0  # refusals of this station and reason not reported since the last


class RefusalThrottle:
    """Reports the first refusal of a station and reason, then at most one per period; and
    at most ``per_address`` per client address and window."""

    def __init__(
        self,
        every_s: float = REPORT_EVERY_S,
        per_address: int = REPORTS_PER_ADDRESS,
        address_window_s: float = ADDRESS_WINDOW_S,
    ) -> None:
        self._every_s = every_s
        self._per_address = per_address
        self._address_window_s = address_window_s
        self._last: OrderedDict[tuple[str, RefusalReason], tuple[float, int]] = OrderedDict()
        self._by_address: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def admit(self, refusal: Refusal, now: float | None = None) -> Refusal | None:
        """The refusal to report (with the count held back), or None to hold it back."""
        now = time.monotonic() if now is None else now
        if not self._address_has_budget(refusal.remote_address.rpartition(":")[0], now):
            return None
        key = (refusal.station_id, refusal.reason)
        last = self._last.pop(key, None)
        if last is not None and now - last[0] < self._every_s:
            self._last[key] = (last[0], last[1] + 1)
            return None
        self._last[key] = (now, 0)
        if len(self._last) > _REMEMBERED:
            self._last.popitem(last=False)
        held_back = last[1] if last is not None else 0
        return refusal if not held_back else _with_repeats(refusal, held_back)

    def _address_has_budget(self, address: str, now: float) -> bool:
        start, reported = self._by_address.pop(address, (now, 0))
        if now - start >= self._address_window_s:
            start, reported = now, 0
        self._by_address[address] = (start, reported + 1)
        if len(self._by_address) > _REMEMBERED:
            self._by_address.popitem(last=False)
        return reported < self._per_address


def _with_repeats(refusal: Refusal, repeated: int) -> Refusal:
    return dataclasses.replace(refusal, repeated=repeated)


class ConnectionCaps:
    """Connections held at once, in total and per client address (0: no cap).

    A slot is taken when a handshake is admitted and given back when its TCP connection is
    lost, whether or not the WebSocket ever opened.
    """

    def __init__(self, total: int, per_address: int) -> None:
        self._total_cap = total
        self._per_address_cap = per_address
        self.total = 0
        self._by_address: dict[str, int] = {}

    def refusal(self, address: str) -> tuple[HTTPStatus, str] | None:
        """Why one more connection from ``address`` is refused, or None."""
        if self._total_cap and self.total >= self._total_cap:
            return HTTPStatus.SERVICE_UNAVAILABLE, "this gateway is full; retry later"
        if self._per_address_cap and self._by_address.get(address, 0) >= self._per_address_cap:
            text = f"at most {self._per_address_cap} connections per client address"
            return HTTPStatus.TOO_MANY_REQUESTS, text
        return None

    def take(self, address: str) -> None:
        self.total += 1
        self._by_address[address] = self._by_address.get(address, 0) + 1

    def release(self, address: str) -> None:
        self.total -= 1
        held = self._by_address.get(address, 0) - 1
        if held > 0:
            self._by_address[address] = held
        else:
            self._by_address.pop(address, None)

    def held_by(self, address: str) -> int:
        return self._by_address.get(address, 0)
