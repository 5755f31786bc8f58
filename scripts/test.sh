#!/usr/bin/env bash
# Install objfs with its test tools, then lint and run the whole suite: the storage contract on
# every backend (moto as the S3 server), the filesystem model, and real FUSE mounts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
started=$(date +%s)
.venv/bin/python -m pytest -p no:cacheprovider --durations=10 "$@"
echo "test suite took $(( $(date +%s) - started )) s"
