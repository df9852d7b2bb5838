"""What one connection lets through: the boot gate and the message rate limit.

Both are checked for every CALL a station sends, so both are a few attribute reads and
float operations, without allocation.
"""

import time

ACCEPTED, PENDING, REJECTED = "Accepted", "Pending", "Rejected"
BOOT = "BootNotification"
# OCPP 2.0.1 B02 (TC_B_30 / TC_B_31): while Pending, besides BootNotification a station may
# send what the CSMS asked for (B02.FR.03: the CSMS may retrieve information then): a report
# (GetBaseReport / GetReport: NotifyReport; GetMonitoringReport: NotifyMonitoringReport),
# the customer information it was asked for (CustomerInformation: NotifyCustomerInformation)
# and the messages it triggered (TriggerMessage).
ASKED_WHILE_PENDING = frozenset(
    {"NotifyReport", "NotifyMonitoringReport", "NotifyCustomerInformation"}
)


def triggered_action(requested_message: str) -> str:
    """The CALL a TriggerMessage's ``requestedMessage`` makes the station send."""
    if requested_message.startswith("Sign") and requested_message.endswith("Certificate"):
        return "SignCertificate"  # Sign{ChargingStation,ChargePoint,V2G,Combined}Certificate
    return requested_message


class BootGate:
    """OCPP 2.0.1 B02/B03 (B02.FR.09, B03.FR.07) and 1.6 §4.2: a station that is not
    Accepted gets CALLERROR SecurityError for everything but BootNotification (and, while
    Pending, what the CSMS asked of it); nothing it sends is stored.

    ``status`` is the last RegistrationStatus the station was told: at the handshake the
    one recorded for it (identity; a registered station that never booted since counts
    as Accepted: registered stations are accepted), for an unknown station admitted by
    the policy Accepted under ``accept`` and None (boot first) otherwise; then every
    BootNotification answer this connection relays.
    """

    __slots__ = ("_triggered", "status")

    def __init__(self, status: str | None) -> None:
        self.status = status
        self._triggered: frozenset[str] = frozenset()

    def admits(self, action: str) -> bool:
        status = self.status
        if status == ACCEPTED or action == BOOT:
            return True
        if status == PENDING:
            return action in ASKED_WHILE_PENDING or action in self._triggered
        return False

    def booted(self, status: object) -> None:
        """The BootNotification answer's status, as the station got it."""
        if status in (ACCEPTED, PENDING, REJECTED):
            self.status = str(status)
            if status == ACCEPTED:
                self._triggered = frozenset()

    def asked(self, requested_message: str) -> None:
        """The CSMS sent TriggerMessage for ``requested_message`` (while not Accepted)."""
        if self.status != ACCEPTED:
            self._triggered = self._triggered | {triggered_action(requested_message)}


class RateBucket:
    """A token bucket of ``burst`` messages refilled at ``rate_per_s``."""

    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        """Take a token; False when there is none (the message is over the rate)."""
        now = time.monotonic() if now is None else now
        tokens = self._tokens
        if now > self._last:
            tokens += (now - self._last) * self._rate
            self._last = now
            if tokens > self._burst:
                tokens = self._burst
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False
