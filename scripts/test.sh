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
# The store's own tests run on both backends; the API's and the alert
# dispatcher's, which use every store operation through the service's
# seams, run once more on PostgreSQL.
XUELIANG_TEST_BACKEND=postgres cargo test --release -p xueliang-api -p xueliang-alerts "$@"
