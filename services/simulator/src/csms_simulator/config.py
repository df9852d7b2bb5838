"""What a simulation run does: how many stations, which OCPP versions, how they behave."""

import random
from dataclasses import dataclass, field

from csms_ocpp import OcppVersion

DEFAULT_MIX: dict[str, float] = {"1.6": 0.3, "2.0.1": 0.4, "2.1": 0.3}


@dataclass(frozen=True, slots=True)
class Outage:
    """A scheduled network outage: at ``start_s`` (simulated seconds into the run)
    a ``fraction`` of the stations lose their connection for ``duration_s``."""

    start_s: float
    duration_s: float
    fraction: float = 1.0


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """One run of the fleet. Times ending in ``_s`` are simulated seconds (scaled by ``speed``)."""

    url: str = "ws://127.0.0.1:9000/ocpp"
    count: int = 10
    version_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    evses_per_station: int = 2
    id_prefix: str = "SIM"
    password: str | None = None
    id_tokens: tuple[str, ...] = ("SIMTOKEN1", "SIMTOKEN2", "SIMTOKEN3")
    # Until the CSMS says otherwise in its BootNotification answer.
    heartbeat_interval_s: float = 300.0
    meter_interval_s: float = 60.0
    speed: float = 1.0
    duration_s: float = 0.0  # real seconds; 0 = until stopped
    seed: int = 0
    # Mean idle time of an EVSE between two EVs (exponential).
    arrival_mean_s: float = 1800.0
    # Chance per simulated hour that a station drops its connection for a while.
    offline_probability: float = 0.0
    outages: tuple[Outage, ...] = ()
    ramp_per_s: float = 100.0  # new connections per real second
    call_timeout: float = 30.0  # real seconds a CALL waits for its answer
    validate_outgoing: bool = False  # check every frame we send against the official schemas
    reconnect_base: float = 1.0  # real seconds, doubled per failed attempt
    reconnect_cap: float = 60.0
    boot_retry_s: float = 30.0  # when the CSMS gives interval 0 or no answer
    # Share of stations whose every firmware install fails (InstallationFailed; they keep
    # their version); the others boot reporting ``updated_firmware_version``.
    install_failure_rate: float = 0.0
    updated_firmware_version: str = "1.0.1"

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError("count must be at least 1")
        if self.evses_per_station < 1:
            raise ValueError("evses_per_station must be at least 1")
        if not 0.0 <= self.install_failure_rate <= 1.0:
            raise ValueError("install_failure_rate must be between 0 and 1")
        if self.speed <= 0 or self.ramp_per_s <= 0:
            raise ValueError("speed and ramp_per_s must be positive")
        if not self.version_mix or any(weight < 0 for weight in self.version_mix.values()):
            raise ValueError("version_mix needs at least one non-negative weight")
        for number in self.version_mix:
            OcppVersion.from_number(number)  # raises ValueError on an unknown version

    def station_ids(self) -> list[str]:
        width = max(5, len(str(self.count)))
        return [f"{self.id_prefix}{index:0{width}d}" for index in range(1, self.count + 1)]

    def versions(self) -> list[OcppVersion]:
        """The version of each station, in the mix's proportions, deterministically shuffled."""
        total = sum(self.version_mix.values())
        numbers = list(self.version_mix)
        quotas = [self.count * self.version_mix[number] / total for number in numbers]
        counts = [int(quota) for quota in quotas]
        # Largest remainders get the stations rounding left over.
        by_remainder = sorted(range(len(numbers)), key=lambda i: counts[i] - quotas[i])
        for index in by_remainder[: self.count - sum(counts)]:
            counts[index] += 1
        versions = [
            OcppVersion.from_number(number)
            for number, n in zip(numbers, counts, strict=True)
            for _ in range(n)
        ]
        random.Random(self.seed).shuffle(versions)  # noqa: S311 - a simulation, not security
        return versions


def parse_version_mix(text: str) -> dict[str, float]:
    """``"1.6=0.3,2.0.1=0.4,2.1=0.3"`` (or ``"2.0.1"`` alone) as a version mix."""
    mix: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        number, _, weight = item.partition("=")
        OcppVersion.from_number(number.strip())
        mix[number.strip()] = float(weight) if weight else 1.0
    if not mix:
        raise ValueError(f"no version in {text!r}")
    return mix
