#!/usr/bin/env bash
# Runs every test: installs what is missing (scripts/setup.sh), builds the
# binary the end-to-end tests start, then the whole workspace's tests in the
# release profile (the same build the demo uses, so CI builds one profile).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -p xueliang -p xueliang-gb28181 --bins
cargo test --release --workspace "$@"
