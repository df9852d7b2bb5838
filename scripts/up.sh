#!/usr/bin/env bash
# The main job on a fresh machine: install uv and the workspace, then run every component
# in one process on the embedded default (in-process bus and router, SQLite in ./csms-data).
# Extra arguments go to `csms up`, e.g. `scripts/up.sh --ocpp-port 9100`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
  echo "up: installing uv" >&2
  python3 -m pip install --quiet uv
fi
uv sync --frozen --all-packages --no-dev
exec uv run --frozen --no-dev csms up "$@"
