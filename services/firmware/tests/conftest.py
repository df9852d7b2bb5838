"""Fixtures: a running firmware service on the embedded bus, router and SQLite."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from firmware_harness import Harness, running_firmware, settings_for_tests


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_firmware(settings_for_tests(tmp_path)) as running:
        yield running
