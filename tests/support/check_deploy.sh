#!/usr/bin/env bash
# Check deploy/template.yaml offline. cfn-lint checks the template, check_deploy.py compares
# it with the output of the cordon binary, cfn-lint checks it again after the SAM transform,
# and test_check_deploy.py tests check_deploy.py itself.
#
# Installs pinned cfn-lint and aws-sam-translator into the project's virtualenv first
# (skipped when present). Makes no AWS request.
#
# Usage: tests/support/check_deploy.sh [CORDON_BINARY]   (default: target/debug/cordon)
set -euo pipefail

readonly CFN_LINT_VERSION="1.58.0"
readonly SAM_TRANSLATOR_VERSION="1.115.0"

SUPPORT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SUPPORT_DIR/../.." && pwd)"
VENV="${CORDON_VENV:-$REPO_ROOT/.venv}"
RUN_DIR="${CORDON_RUN_DIR:-$REPO_ROOT/.cordon-run}"
CORDON="${1:-$REPO_ROOT/target/debug/cordon}"
TEMPLATE="$REPO_ROOT/deploy/template.yaml"
TRANSLATED="$RUN_DIR/template.translated.json"

die() {
    echo "check_deploy.sh: error: $*" >&2
    exit 1
}

info() {
    echo "check_deploy.sh: $*" >&2
}

installed_version() {
    "$VENV/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' \
        "$1" 2>/dev/null || true
}

install_tools() {
    if [[ -x "$VENV/bin/python" ]] \
        && [[ "$(installed_version cfn-lint)" == "$CFN_LINT_VERSION" ]] \
        && [[ "$(installed_version aws-sam-translator)" == "$SAM_TRANSLATOR_VERSION" ]]; then
        return 0
    fi
    command -v python3 >/dev/null || die "python3 not found in PATH. Install Python 3.10 or newer."
    if [[ ! -x "$VENV/bin/python" ]]; then
        info "creating virtualenv $VENV"
        python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
    fi
    local packages=("cfn-lint==$CFN_LINT_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION")
    info "installing ${packages[*]} into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}" >&2 \
        || die "pip install ${packages[*]} failed (see the pip output above)"
}

main() {
    [[ -x "$CORDON" ]] || die "no cordon binary at $CORDON; run: cargo build"
    install_tools

    # Dummy credentials and no metadata service: the SAM translator imports boto3.
    export AWS_EC2_METADATA_DISABLED=true AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    unset AWS_SESSION_TOKEN AWS_PROFILE
    # No __pycache__ folders in the work tree.
    export PYTHONDONTWRITEBYTECODE=1

    # cfn-lint exits non-zero on errors (2) and warnings (4), so both fail the check.
    # Informational findings (I codes) are not enabled.
    info "cfn-lint $TEMPLATE"
    "$VENV/bin/cfn-lint" -- "$TEMPLATE"

    "$VENV/bin/python" "$SUPPORT_DIR/check_deploy.py" --cordon "$CORDON" --template "$TEMPLATE" \
        --rules "$REPO_ROOT/rules" --translated "$TRANSLATED"

    info "cfn-lint on the translated template $TRANSLATED"
    "$VENV/bin/cfn-lint" -- "$TRANSLATED"

    CORDON_BIN="$CORDON" "$VENV/bin/python" -m unittest discover --start-directory "$SUPPORT_DIR" \
        --pattern 'test_check_deploy.py'
}

main "$@"
