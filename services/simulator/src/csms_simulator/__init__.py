"""A fleet of virtual OCPP 1.6 / 2.0.1 / 2.1 charging stations (``csms simulate``)."""

from csms_simulator.config import Outage, SimulationConfig, parse_version_mix
from csms_simulator.fleet import run_fleet
from csms_simulator.report import RunReport

__all__ = ["Outage", "RunReport", "SimulationConfig", "parse_version_mix", "run_fleet"]
