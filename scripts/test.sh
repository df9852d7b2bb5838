#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs uv and the workspace, starts real
# Kafka, Redis and PostgreSQL on loopback (scripts/infra.sh), runs lint, types and pytest.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k gateway`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  echo "test: installing uv" >&2
  python3 -m pip install --quiet uv
fi
# Bytecode compiled once, not by every process of the suite: the e2e tests and benchmarks
# start hundreds of Python processes, and on a machine that sets PYTHONDONTWRITEBYTECODE each
# one compiled every module it imported (1.3 s of CPU for a `csms sessions`).
unset PYTHONDONTWRITEBYTECODE
uv sync --frozen --all-packages --compile-bytecode

# The REST proxy tests run the real nginx (tests/test_api_proxy.py); Debian's package.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "test: installing nginx" >&2
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get install -y --no-install-recommends nginx-light >/dev/null 2>&1 \
    || { $sudo_cmd apt-get update -qq \
         && { $sudo_cmd apt-get install -y --no-install-recommends nginx-light \
              || $sudo_cmd apt-get install -y --no-install-recommends nginx; }; }
fi

scripts/infra.sh start
eval "$(scripts/infra.sh env)"
export CSMS_TEST_KAFKA_BOOTSTRAP CSMS_TEST_REDIS_URL CSMS_TEST_DATABASE_URL
# CSMS_KEEP_INFRA=1 leaves the brokers running for the next run (faster when developing).
if [ -z "${CSMS_KEEP_INFRA:-}" ]; then trap 'scripts/infra.sh stop || true' EXIT; fi

echo "test: ruff" >&2
uv run --frozen ruff check .
uv run --frozen ruff format --check .
echo "test: mypy --strict" >&2
uv run --frozen mypy libs services src tests conftest.py bench
echo "test: pytest" >&2
uv run --frozen pytest --durations=30 "$@"
