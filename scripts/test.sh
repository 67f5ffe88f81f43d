#!/usr/bin/env bash
# Run every check and test: formatting, lints, the Rust test suite against a local EC2
# emulator, the shipped rules and the deployment template. Installs what it needs into the
# project's virtualenv (the emulator, cfn-lint).
#
# Nothing here talks to AWS: the emulator listens on 127.0.0.1, and the exported variables
# give every AWS client dummy credentials, that endpoint and AWS_EC2_METADATA_DISABLED=true.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A fresh checkout gains nothing from incremental compilation, whose state would take more
# than a gigabyte of the disk that a cold build needs.
if [[ "${CI:-}" == true ]]; then
    export CARGO_INCREMENTAL=0
fi

step() {
    printf '\n==> %s\n' "$*"
}

# A cold run fills about 3 GB under target/ (2.9 GB measured in a fresh clone). With less
# free space the build fails late, while linking, so the script warns before it starts.
free_mb="$(df -Pm . | awk 'NR == 2 { print $4 }')"
if [[ "$free_mb" =~ ^[0-9]+$ ]] && (( free_mb < 4096 )); then
    echo "warning: ${free_mb} MB free on the disk of $PWD; a cold build needs about 3 GB" >&2
fi

step "installing the EC2 emulator"
tests/support/emulator.sh install

step "starting the EC2 emulator"
if ! exports="$(tests/support/emulator.sh start)"; then
    echo "error: the EC2 emulator did not start; see .cordon-run/emulator.log" >&2
    exit 1
fi
trap 'tests/support/emulator.sh stop >/dev/null 2>&1 || true' EXIT
eval "$exports"
if [[ "${AWS_ENDPOINT_URL:-}" != http://127.0.0.1:* ]]; then
    echo "error: AWS_ENDPOINT_URL is not a loopback address: '${AWS_ENDPOINT_URL:-}'" >&2
    exit 1
fi
export CORDON_TEST_EC2_ENDPOINT="$AWS_ENDPOINT_URL"
.venv/bin/python tests/support/check_emulator.py "$AWS_ENDPOINT_URL"

step "checking formatting"
cargo fmt --all --check

step "running clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# One build of every target, tests included. Dependencies compile with the features that
# the tests' dev-dependencies add, so `cargo test` below reuses this build instead of
# compiling aws-sdk-ec2 a second time with other features. The Lambda tests run this
# `bootstrap` rather than building their own, for the same reason.
step "building"
cargo build --workspace --all-targets --locked
export CORDON_BOOTSTRAP="$PWD/target/debug/bootstrap"

step "validating and testing the shipped rules"
target/debug/cordon validate rules/
target/debug/cordon test rules/ --coverage

step "checking the deployment template (cfn-lint, drift from the rules)"
tests/support/check_deploy.sh target/debug/cordon

step "running the tests"
cargo test --workspace --locked --no-fail-fast
