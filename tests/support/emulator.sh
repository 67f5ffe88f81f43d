#!/usr/bin/env bash
# Manage the local EC2 emulator (moto's server with the fixes in moto_faithful.py).
#
# The server listens on 127.0.0.1 only and owns every resource as account
# 111122223333 (MOTO_ACCOUNT_ID). Every AWS variable this script exports or
# passes to the server points at that loopback server with dummy credentials.
set -euo pipefail

readonly MOTO_VERSION="5.2.5"
readonly REGION="eu-west-1"
# moto's default account is 123456789012. This one matches the test fixtures.
readonly ACCOUNT_ID="111122223333"

SUPPORT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SUPPORT_DIR/../.." && pwd)"
VENV="${CORDON_VENV:-$REPO_ROOT/.venv}"
RUN_DIR="${CORDON_RUN_DIR:-$REPO_ROOT/.cordon-run}"
START_TIMEOUT="${CORDON_EMULATOR_TIMEOUT:-30}"
PID_FILE="$RUN_DIR/emulator.pid"
URL_FILE="$RUN_DIR/emulator.url"
LOG_FILE="$RUN_DIR/emulator.log"

usage() {
    cat <<EOF
Usage: tests/support/emulator.sh COMMAND

Commands:
  install  Create the virtualenv and install moto[server]==$MOTO_VERSION (skipped when present).
  start    Start the emulator in the background and print export lines for eval:
             eval "\$(tests/support/emulator.sh start)"
  env      Print the export lines for the running emulator.
  reset    Delete all emulated resources (POST /moto-api/reset).
  stop     Stop the emulator.
  status   Print the emulator URL and exit 0 if it is running, or exit 1.

Environment:
  CORDON_VENV              virtualenv directory (default: <repo>/.venv)
  CORDON_RUN_DIR           directory for the pid, URL and log files (default: <repo>/.cordon-run)
  CORDON_EMULATOR_PORT     TCP port to listen on (default: a free port)
  CORDON_EMULATOR_TIMEOUT  seconds to wait for the emulator to answer (default: 30)
EOF
}

die() {
    echo "emulator.sh: error: $*" >&2
    exit 1
}

info() {
    echo "emulator.sh: $*" >&2
}

# Dummy credentials and no instance metadata, so that nothing started from here
# can sign a request with real credentials or reach 169.254.169.254.
export_dummy_aws_env() {
    export AWS_ACCESS_KEY_ID=testing
    export AWS_SECRET_ACCESS_KEY=testing
    export AWS_DEFAULT_REGION="$REGION"
    export AWS_REGION="$REGION"
    export AWS_EC2_METADATA_DISABLED=true
    unset AWS_SESSION_TOKEN AWS_PROFILE
}

installed_moto_version() {
    "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as metadata
import flask  # Installed by moto's [server] extra, so a failed import means a plain moto install.
print(metadata.version("moto"))
EOF
}

cmd_install() {
    if [[ -x "$VENV/bin/python" ]] && [[ "$(installed_moto_version || true)" == "$MOTO_VERSION" ]]; then
        info "moto[server]==$MOTO_VERSION is already installed in $VENV"
        return 0
    fi
    command -v python3 >/dev/null || die "python3 not found in PATH. Install Python 3.10 or newer (moto $MOTO_VERSION requires it)."
    if [[ ! -x "$VENV/bin/python" ]]; then
        info "creating virtualenv $VENV"
        python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
    fi
    info "installing moto[server]==$MOTO_VERSION into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2 \
        || die "pip install moto[server]==$MOTO_VERSION failed (see the pip output above)"
    [[ "$(installed_moto_version || true)" == "$MOTO_VERSION" ]] \
        || die "moto $MOTO_VERSION is not importable from $VENV/bin/python after installing"
    info "installed moto[server]==$MOTO_VERSION in $VENV"
}

# Return 0 when the pid file names a live moto_faithful.py process. The command
# line check keeps stop from killing an unrelated process that reused a stale pid.
is_running() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    if ! [[ "$pid" =~ ^[0-9]+$ ]] || ! kill -0 "$pid" 2>/dev/null; then
        return 1
    fi
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "moto_faithful.py" || return 1
    fi
}

print_exports() {
    local url="$1"
    cat <<EOF
export AWS_ENDPOINT_URL=$url
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=$REGION
export AWS_REGION=$REGION
export AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE
EOF
}

# Print a free TCP port on 127.0.0.1. NOTE: another process can take the port
# between this check and the server's bind, and start then fails with an error.
free_port() {
    "$VENV/bin/python" - <<'EOF'
import socket
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1])
EOF
}

port_is_free() {
    "$VENV/bin/python" - "$1" <<'EOF'
import socket
import sys
with socket.socket() as sock:
    try:
        sock.bind(("127.0.0.1", int(sys.argv[1])))
    except OSError:
        sys.exit(1)
EOF
}

cmd_start() {
    [[ -x "$VENV/bin/python" ]] || die "no virtualenv at $VENV; run: tests/support/emulator.sh install"
    if is_running; then
        info "already running (pid $(cat "$PID_FILE")) at $(cat "$URL_FILE")"
        print_exports "$(cat "$URL_FILE")"
        return 0
    fi
    command -v curl >/dev/null || die "curl not found in PATH; it is needed to poll the emulator"
    [[ "$START_TIMEOUT" =~ ^[0-9]+$ ]] || die "CORDON_EMULATOR_TIMEOUT must be a whole number of seconds, got '$START_TIMEOUT'"

    local port
    if [[ -n "${CORDON_EMULATOR_PORT:-}" ]]; then
        port="$CORDON_EMULATOR_PORT"
        if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
            die "CORDON_EMULATOR_PORT must be a TCP port number (1-65535), got '$port'"
        fi
        port_is_free "$port" || die "port $port on 127.0.0.1 is already in use; unset CORDON_EMULATOR_PORT to pick a free port"
    else
        port="$(free_port)" || die "could not find a free TCP port on 127.0.0.1"
    fi

    mkdir -p "$RUN_DIR"
    rm -f "$PID_FILE" "$URL_FILE"
    local url="http://127.0.0.1:$port"

    (
        export_dummy_aws_env
        unset AWS_ENDPOINT_URL
        export MOTO_ACCOUNT_ID="$ACCOUNT_ID"
        exec nohup "$VENV/bin/python" "$SUPPORT_DIR/moto_faithful.py" "$port" \
            </dev/null >"$LOG_FILE" 2>&1
    ) &
    local pid=$!
    echo "$pid" >"$PID_FILE"

    local deadline=$((SECONDS + START_TIMEOUT))
    until curl --silent --fail --max-time 2 --output /dev/null "$url/moto-api/"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            tail -n 20 "$LOG_FILE" >&2 || true
            die "the emulator exited during startup; its log is $LOG_FILE"
        fi
        if ((SECONDS >= deadline)); then
            kill "$pid" 2>/dev/null || true
            rm -f "$PID_FILE"
            tail -n 20 "$LOG_FILE" >&2 || true
            die "the emulator did not answer at $url/moto-api/ within $START_TIMEOUT s; its log is $LOG_FILE"
        fi
        sleep 0.2
    done

    echo "$url" >"$URL_FILE"
    info "started (pid $pid) at $url, log $LOG_FILE"
    print_exports "$url"
}

cmd_env() {
    is_running || die "the emulator is not running; run: tests/support/emulator.sh start"
    print_exports "$(cat "$URL_FILE")"
}

cmd_status() {
    if is_running; then
        echo "running (pid $(cat "$PID_FILE")) at $(cat "$URL_FILE")"
    else
        echo "not running"
        return 1
    fi
}

cmd_reset() {
    is_running || die "the emulator is not running; run: tests/support/emulator.sh start"
    local url
    url="$(cat "$URL_FILE")"
    curl --silent --show-error --fail --max-time 10 --request POST --output /dev/null "$url/moto-api/reset" \
        || die "POST $url/moto-api/reset failed"
    info "reset all resources at $url"
}

cmd_stop() {
    if ! is_running; then
        rm -f "$PID_FILE" "$URL_FILE"
        info "not running"
        return 0
    fi
    local pid
    pid="$(cat "$PID_FILE")"
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            info "pid $pid did not exit within 10 s of SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$PID_FILE" "$URL_FILE"
    info "stopped (pid $pid)"
}

main() {
    if (($# != 1)); then
        usage >&2
        exit 2
    fi
    case "$1" in
        install) cmd_install ;;
        start) cmd_start ;;
        env) cmd_env ;;
        reset) cmd_reset ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        -h | --help | help) usage ;;
        *)
            usage >&2
            die "unknown command '$1'"
            ;;
    esac
}

main "$@"
