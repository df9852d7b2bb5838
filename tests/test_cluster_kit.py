"""The test kit's process handling: what a killed test leaves behind."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.cluster import die_with_parent_if_main

REPO = Path(__file__).resolve().parents[1]

# A parent that starts a child the way tests.cluster.Component does, prints its pid and dies
# without cleaning up (as a test or benchmark killed by a timeout does).
PARENT = """
import os, subprocess, sys
from tests.cluster import die_with_parent_if_main
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                         preexec_fn=die_with_parent_if_main())
print(child.pid, flush=True)
os._exit(0)
"""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_a_component_dies_with_the_process_that_started_it() -> None:
    run = subprocess.run(
        [sys.executable, "-c", PARENT], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    child = int(run.stdout.strip())
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(child):
        os.kill(child, 9)
        pytest.fail(f"child {child} outlived its parent")


def test_a_component_started_from_a_thread_outlives_that_thread() -> None:
    """PR_SET_PDEATHSIG follows the thread that forked: a component a pool's thread started
    (tests/test_e2e_billing.py starts its cluster that way) must not die when it ends."""
    children: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        children.append(
            subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(120)"],
                preexec_fn=die_with_parent_if_main(),
            )
        )

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    child = children[0]
    try:
        time.sleep(0.5)  # the kernel would have signalled it as the thread ended
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()
