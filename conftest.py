"""Fixtures every test tier may use: the real brokers the integration tests need.

``scripts/test.sh`` starts Kafka, Redis and PostgreSQL with ``scripts/infra.sh`` and
exports their addresses; run alone, pytest starts them itself through the same script.
"""

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.cluster import Infra

REPO = Path(__file__).resolve().parent


def _infra_from_script() -> dict[str, str]:
    subprocess.run([str(REPO / "scripts/infra.sh"), "start"], check=True)
    printed = subprocess.run(
        [str(REPO / "scripts/infra.sh"), "env"], check=True, capture_output=True, text=True
    ).stdout
    values: dict[str, str] = {}
    for line in printed.splitlines():
        for word in shlex.split(line.removeprefix("export ")):
            name, _, value = word.partition("=")
            values[name] = value
    return values


@pytest.fixture(scope="session")
def infra() -> Infra:
    """Real Kafka, Redis and PostgreSQL: from the environment, or started now."""
    values = dict(os.environ)
    if "CSMS_TEST_KAFKA_BOOTSTRAP" not in values:
        values.update(_infra_from_script())
    return Infra(
        values["CSMS_TEST_KAFKA_BOOTSTRAP"],
        values["CSMS_TEST_REDIS_URL"],
        values["CSMS_TEST_DATABASE_URL"],
    )
