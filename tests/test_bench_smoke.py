"""Each benchmark under bench/ runs in its --smoke mode and prints its figures.

The figures themselves are not asserted. One ``csms sessions`` and one ``csms gateway``
serve all the runs (``--attach``), which run side by side: starting a pair per
benchmark, or running them one after the other, would take most of the time budget.
A smoke run must not touch bench/RESULTS.md: it writes where --results says.
"""

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import harness

pytestmark = pytest.mark.integration

# Each smoke run: its name, the benchmark module and the arguments beyond --smoke.
SMOKE_RUNS: dict[str, tuple[str, list[str]]] = {
    "connections": ("connections", []),
    "throughput": ("throughput", []),
    "throughput_closed_loop": ("throughput", ["--mode", "closed", "--mix", "meter10"]),
    "command_latency": ("command_latency", []),
    "event_lag": ("event_lag", []),
    "reconnect_storm": ("reconnect_storm", []),
    # In process, on a database of its own (the shared pair is not used).
    "consumer_transaction": ("consumer_transaction", []),
    # It adds a `csms firmware` of its own to the shared pair and runs a whole campaign.
    "firmware": ("firmware", []),
}
BENCHMARKS = list(SMOKE_RUNS)
# Seconds a run may take, from when they all start (80 unless said here).
# The connections run starts client processes of its own: at load 14 it took over 80 s.
SMOKE_TIMEOUT_S: dict[str, float] = {"firmware": 240, "connections": 180}
# pytest-timeout counts the module fixture's start of the shared pair in the first test that
# uses it; on a loaded CI machine (load 15 on 2 cores) that start alone took over a minute.
# These bounds are reached only when something hangs.
PAIR_START_S = 180
SMARTCHARGING_TIMEOUT_S = 240
REPO = Path(__file__).resolve().parents[1]


@dataclass
class SmokeRun:
    process: subprocess.Popen[str]
    results: Path


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, SmokeRun]]:
    """All the smoke runs, started side by side on one gateway/sessions pair."""
    directory = tmp_path_factory.mktemp("bench")
    args = argparse.Namespace(smoke=True, kafka=None, attach=None, logs=directory)
    with harness.running_csms(args) as csms:
        csms.sessions_and_gateway()
        attachment = directory / "csms.json"
        attachment.write_text(json.dumps(csms.attachment()))
        runs = {name: _start(name, attachment, directory) for name in BENCHMARKS}
        try:
            yield runs
        finally:
            for run in runs.values():
                if run.process.poll() is None:
                    run.process.kill()
                # Read to the end and close the pipe, also of a run no test read (deselected
                # with -k): left to the garbage collector, it failed the session with an
                # unclosed-file warning.
                try:
                    run.process.communicate(timeout=15)
                except (subprocess.TimeoutExpired, ValueError):
                    # a grandchild may still hold the pipe (or a test read it already and it
                    # is closed): close our end and go on
                    if run.process.stdout is not None:
                        run.process.stdout.close()


def _start(name: str, attachment: Path, directory: Path) -> SmokeRun:
    results = directory / f"{name}-RESULTS.md"
    module, extra = SMOKE_RUNS[name]
    command = [sys.executable, "-m", f"bench.{module}", "--smoke", f"--attach={attachment}", *extra]
    process = subprocess.Popen(
        [*command, f"--results={results}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return SmokeRun(process, results)


@pytest.mark.timeout(SMARTCHARGING_TIMEOUT_S + 60)
def test_smartcharging_smoke_mode(tmp_path: Path) -> None:
    """bench.smartcharging starts its own processes (two gateways and smart charging), so it
    cannot attach to the shared pair: it runs on its own, before that pair starts."""
    before = harness.DEFAULT_RESULTS.read_bytes() if harness.DEFAULT_RESULTS.exists() else None
    results = tmp_path / "smartcharging-RESULTS.md"
    command = [sys.executable, "-m", "bench.smartcharging", "--smoke", f"--logs={tmp_path}"]
    run = subprocess.run(
        [*command, f"--results={results}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SMARTCHARGING_TIMEOUT_S,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    figures = [line for line in run.stdout.splitlines() if line.startswith("FIGURE ")]
    assert len(figures) >= 5, output
    assert "nan" not in " ".join(figures), output
    written = results.read_text()
    assert all(figure.removeprefix("FIGURE ") in written for figure in figures)
    after = harness.DEFAULT_RESULTS.read_bytes() if harness.DEFAULT_RESULTS.exists() else None
    assert after == before


@pytest.mark.parametrize(
    "benchmark",
    [
        pytest.param(name, marks=pytest.mark.timeout(SMOKE_TIMEOUT_S.get(name, 80) + PAIR_START_S))
        for name in BENCHMARKS
    ],
)
def test_benchmark_smoke_mode(benchmark: str, smoke_runs: dict[str, SmokeRun]) -> None:
    before = harness.DEFAULT_RESULTS.read_bytes() if harness.DEFAULT_RESULTS.exists() else None
    run = smoke_runs[benchmark]
    output, _ = run.process.communicate(timeout=SMOKE_TIMEOUT_S.get(benchmark, 80))
    assert run.process.returncode == 0, output
    figures = [line for line in output.splitlines() if line.startswith("FIGURE ")]
    assert figures, output
    assert "nan" not in " ".join(figures), output
    written = run.results.read_text()
    assert all(figure.removeprefix("FIGURE ") in written for figure in figures)
    after = harness.DEFAULT_RESULTS.read_bytes() if harness.DEFAULT_RESULTS.exists() else None
    assert after == before


def test_the_storm_reads_the_kernels_listen_queue_counters(tmp_path: Path) -> None:
    from bench.reconnect_storm import tcp_counters

    netstat = tmp_path / "netstat"
    netstat.write_text(
        "TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed ListenOverflows ListenDrops\n"
        "TcpExt: 511 3996 1069 111096 111096\n"
        "IpExt: InNoRoutes InTruncatedPkts\n"
        "IpExt: 0 0\n"
    )
    assert tcp_counters(netstat) == {
        "ListenOverflows": 111096,
        "SyncookiesSent": 511,
        "SyncookiesFailed": 1069,
    }
    assert tcp_counters(tmp_path / "absent") == {}  # not Linux: the sentence leaves them out


def test_the_storm_counts_the_boots_accepted_in_each_second() -> None:
    from bench.reconnect_storm import _by_second

    assert _by_second([0.2, 0.7, 2.1]) == "0: 2, 1: 0, 2: 1"  # a second without any is shown
    assert _by_second([]) == ""


def test_the_scans_between_two_readings_name_the_tables_read_whole() -> None:
    scans = harness.TableScans
    before = {"station": scans(2, 100, 5, 50, analyzed=False), "inbox": scans(0, 0, 9, 10, True)}
    after = {
        "station": scans(5, 30100, 7, 10000, analyzed=False),
        "inbox": scans(0, 0, 40, 900, analyzed=True),  # only by index: not named
        "new": scans(1, 7, 0, 7, analyzed=True),  # created after the first reading
    }
    assert harness.scans_between(before, after) == (
        "station 3 (30000 rows read; 2 index scans; 10000 rows, never analyzed), "
        "new 1 (7 rows read; 0 index scans; 7 rows, analyzed)"
    )
    assert harness.scans_between(after, after) == "none"
