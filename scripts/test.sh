#!/usr/bin/env bash
# Runs every test: installs what is missing (scripts/setup.sh), builds the
# binary the end-to-end tests start, then the whole workspace's tests in the
# release profile (the same build the demo uses, so CI builds one profile).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# One build of everything with the test run's features: building only the
# binaries' packages first would unify other features and compile shared
# dependencies twice (80 s of a cold build on 2 cores).
cargo build --release --workspace --bins --tests
cargo test --release --workspace "$@"
