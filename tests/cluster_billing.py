"""A real ``csms billing`` process for end-to-end tests (next to tests/cluster.py's)."""

from pathlib import Path

from tests.cluster import Component, Infra, free_port, platform_env


def billing(infra: Infra, group: str, name: str, log_dir: Path, **extra: str) -> Component:
    """One billing replica of the cluster ``group`` (its topic namespace), in its own
    consumer group."""
    port = free_port()
    env = {
        **platform_env(infra, group),
        "CSMS_BILLING_API_PORT": str(port),
        "CSMS_BILLING_CONSUMER_GROUP": consumer_group(group),
        "CSMS_BILLING_TIME_ZONE": "Europe/Amsterdam",
        **extra,
    }
    return Component("billing", port, env, log_dir / f"{name}.log")


def consumer_group(group: str) -> str:
    return f"csms-billing-{group}"
