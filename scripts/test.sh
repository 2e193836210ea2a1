#!/usr/bin/env bash
# Sets up and runs every test: unit tests (no root needed) then integration tests (root).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node --test --test-concurrency=1 --test-reporter=spec dist/src dist/test
