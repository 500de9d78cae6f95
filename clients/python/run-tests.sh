#!/usr/bin/env bash
# Tests the Python client against a live Council server at $COUNCIL_TEST_ADDR (host:port):
# creates clients/python/.venv if missing, installs the package (as a wheel, not editable, so that
# packaging is tested too) with the pinned tools of requirements-dev.txt, runs mypy --strict on the
# package, the examples and the tests, then pytest (sync and asyncio tests; tests/test_install.py
# also installs the package into fresh virtualenvs outside the repository, from a directory and from
# a wheel). Needs python3 (3.10+) with venv, git, and PyPI.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if [[ -z "${COUNCIL_TEST_ADDR:-}" ]]; then
  echo "run-tests.sh: COUNCIL_TEST_ADDR is not set; start a server and give its host:port, e.g." >&2
  echo "  COUNCIL_TEST_ADDR=127.0.0.1:50051 bash clients/python/run-tests.sh" >&2
  exit 2
fi

venv="$here/.venv"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "== creating $venv"
  python3 -m venv "$venv" || {
    echo "run-tests.sh: 'python3 -m venv' failed (Debian/Ubuntu: apt-get install python3-venv)" >&2
    rm -rf "$venv"
    exit 1
  }
fi
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check --no-input --quiet)

echo "== installing council-client and the test tools"
# pip rebuilds and reinstalls a local directory on every run, so this is always this tree's code.
"${pip[@]}" install -r requirements-dev.txt .

echo "== mypy --strict"
# Checked from the installed package, as users see it (py.typed and the generated .pyi stubs).
"$py" -m mypy --strict -p council_client
"$py" -m mypy --strict examples tests

echo "== pytest against $COUNCIL_TEST_ADDR"
"$py" -m pytest
