#!/usr/bin/env bash
# Measure the cordon Lambda function locally and, when CUSTODIAN=1, Cloud Custodian's
# guard-duty mode on the same events and the same EC2 emulator.
#
# Measures, with the release bootstrap under tests/support/runtime_api.py:
#   - cold start: process start to the first response, for a finding that matches no rule
#     (tests/fixtures/ssh-brute-force-target.json), COLD_RUNS times;
#   - warm overhead: delivery to response of the same event, WARM_EVENTS times in one process;
#   - containment: process start to the response for a TorClient finding on a fresh instance
#     with three network interfaces, CONTAIN_RUNS times;
#   - peak RSS of the function process: ru_maxrss from wait4, the value /usr/bin/time -v
#     prints as "Maximum resident set size". time itself cannot wrap the function, because
#     the Runtime API stops the function with SIGTERM, which ends time before it prints;
#   - the size of the stripped release binary.
# Times include the local Runtime API's HTTP round trip, a Python server on 127.0.0.1.
#
# Usage: scripts/bench-lambda.sh            (results in .cordon-run/bench/)
#        CORDON_BOOTSTRAP=target/release/bootstrap scripts/bench-lambda.sh  (no build)
#        CUSTODIAN=1 scripts/bench-lambda.sh  (also installs c7n into .cordon-run/bench/c7n-venv)
#
# Nothing here talks to AWS: the emulator listens on 127.0.0.1 and every process gets dummy
# credentials, that endpoint and AWS_EC2_METADATA_DISABLED=true.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly REPO_ROOT="$PWD"
readonly OUT="$REPO_ROOT/.cordon-run/bench"
readonly PYTHON="${CORDON_VENV:-$REPO_ROOT/.venv}/bin/python"
readonly COLD_RUNS="${COLD_RUNS:-20}"
readonly WARM_EVENTS="${WARM_EVENTS:-1000}"
readonly CONTAIN_RUNS="${CONTAIN_RUNS:-5}"
readonly C7N_VERSION="0.9.53"
readonly NO_MATCH_EVENT="tests/fixtures/ssh-brute-force-target.json"

step() {
    printf '\n==> %s\n' "$*"
}

die() {
    echo "bench-lambda.sh: error: $*" >&2
    exit 1
}

export CORDON_RUN_DIR="$OUT/emulator"
emulator_started=false
cleanup() {
    if [[ "$emulator_started" == true ]]; then
        tests/support/emulator.sh stop >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$OUT/cordon" "$OUT/custodian"
mkdir -p "$OUT/cordon" "$OUT/custodian"

if [[ -n "${CORDON_BOOTSTRAP:-}" ]]; then
    bootstrap="$CORDON_BOOTSTRAP"
else
    step "building the release bootstrap"
    cargo build --release -p cordon-lambda --bin bootstrap --message-format json-render-diagnostics >"$OUT/build.jsonl"
    bootstrap="$("$PYTHON" -c '
import json, sys
for line in open(sys.argv[1]):
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and (message.get("executable") or "").endswith("/bootstrap"):
        print(message["executable"])
' "$OUT/build.jsonl")"
fi
[[ -x "$bootstrap" ]] || die "no bootstrap executable at '$bootstrap'"

step "starting the EC2 emulator"
tests/support/emulator.sh install
if ! exports="$(tests/support/emulator.sh start)"; then
    die "the EC2 emulator did not start; see $CORDON_RUN_DIR/emulator.log"
fi
emulator_started=true
eval "$exports"
[[ "${AWS_ENDPOINT_URL:-}" == http://127.0.0.1:* ]] || die "AWS_ENDPOINT_URL is not a loopback address"

# Runs FUNCTION (a command) under the local Runtime API: run_function DIR NAME ARGS... -- COMMAND...
run_function() {
    local dir="$1" name="$2"
    shift 2
    "$PYTHON" "$REPO_ROOT/tests/support/runtime_api.py" --record "$dir/$name.json" --log "$dir/$name.log" "$@" \
        || die "the function did not respond; see $dir/$name.log"
}

# Creates an instance with three network interfaces and writes the TorClient event for it.
contain_event() {
    local dir="$1" index="$2"
    "$PYTHON" "$REPO_ROOT/tests/support/ec2_fixture.py" setup --enis 3 --volumes 1 >"$dir/setup-$index.json"
    "$PYTHON" "$REPO_ROOT/tests/support/ec2_fixture.py" event tests/fixtures/tor-client.json "$dir/setup-$index.json" \
        >"$dir/tor-client-$index.json"
}

quarantine_group() {
    "$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["quarantine_group"])' "$1"
}

step "cordon: $COLD_RUNS cold starts, $WARM_EVENTS warm events, $CONTAIN_RUNS containments"
export CORDON_RULES="$REPO_ROOT/rules"
for run in $(seq 1 "$COLD_RUNS"); do
    QUARANTINE_SG=sg-0123456789abcdef0 run_function "$OUT/cordon" "cold-$run" "$NO_MATCH_EVENT" -- "$bootstrap"
done
QUARANTINE_SG=sg-0123456789abcdef0 run_function "$OUT/cordon" warm --repeat "$WARM_EVENTS" "$NO_MATCH_EVENT" -- "$bootstrap"
for run in $(seq 1 "$CONTAIN_RUNS"); do
    contain_event "$OUT/cordon" "$run"
    QUARANTINE_SG="$(quarantine_group "$OUT/cordon/setup-$run.json")" \
        run_function "$OUT/cordon" "contain-$run" "$OUT/cordon/tor-client-$run.json" -- "$bootstrap"
    "$PYTHON" "$REPO_ROOT/tests/support/ec2_fixture.py" describe "$OUT/cordon/setup-$run.json" >"$OUT/cordon/after-$run.json"
done
stat -c '%s' "$bootstrap" >"$OUT/cordon/binary-bytes"
file "$bootstrap" >"$OUT/cordon/binary-file" 2>/dev/null || true

if [[ "${CUSTODIAN:-0}" == 1 ]]; then
    step "Cloud Custodian $C7N_VERSION: installing into $OUT/c7n-venv"
    if [[ ! -x "$OUT/c7n-venv/bin/python" ]]; then
        python3 -m venv "$OUT/c7n-venv"
    fi
    "$OUT/c7n-venv/bin/python" -m pip install --quiet --disable-pip-version-check "c7n==$C7N_VERSION"
    custodian=("$OUT/c7n-venv/bin/python" "$REPO_ROOT/scripts/bench/custodian_bootstrap.py")

    # The same containment as rules/quarantine.yaml: every network interface into the
    # quarantine group given as the second argument, snapshots of the volumes, a tag.
    write_policy() {
        local dir="$1" group="$2"
        mkdir -p "$dir"
        "$PYTHON" - "$dir/config.json" "$group" <<'EOF'
import json
import sys

policy = {
    "name": "ec2-tor-client-quarantine",
    "resource": "ec2",
    "mode": {"type": "guard-duty", "role": "arn:aws:iam::111122223333:role/custodian"},
    "filters": [
        {"type": "event", "key": "detail.type", "value": "UnauthorizedAccess:EC2/TorClient"},
        {"type": "event", "key": "detail.severity", "value": 7, "op": "gte"},
    ],
    "actions": [
        {"type": "modify-security-groups", "isolation-group": sys.argv[2], "remove": "all"},
        {"type": "snapshot", "copy-tags": ["Name"]},
        {"type": "tag", "tags": {"cordon:status": "quarantined"}},
    ],
}
config = {"execution-options": {"account_id": "111122223333", "output_dir": "/tmp"}, "policies": [policy]}
with open(sys.argv[1], "w", encoding="utf-8") as file:
    json.dump(config, file, indent=2)
EOF
    }

    step "Cloud Custodian: $COLD_RUNS cold starts, $WARM_EVENTS warm events, $CONTAIN_RUNS containments"
    write_policy "$OUT/custodian/no-match" sg-0123456789abcdef0
    for run in $(seq 1 "$COLD_RUNS"); do
        (cd "$OUT/custodian/no-match" && run_function "$OUT/custodian" "cold-$run" "$REPO_ROOT/$NO_MATCH_EVENT" -- "${custodian[@]}")
    done
    (cd "$OUT/custodian/no-match" && run_function "$OUT/custodian" warm --repeat "$WARM_EVENTS" "$REPO_ROOT/$NO_MATCH_EVENT" -- "${custodian[@]}")
    for run in $(seq 1 "$CONTAIN_RUNS"); do
        contain_event "$OUT/custodian" "$run"
        write_policy "$OUT/custodian/policy-$run" "$(quarantine_group "$OUT/custodian/setup-$run.json")"
        (cd "$OUT/custodian/policy-$run" && run_function "$OUT/custodian" "contain-$run" \
            "$OUT/custodian/tor-client-$run.json" -- "${custodian[@]}")
        "$PYTHON" "$REPO_ROOT/tests/support/ec2_fixture.py" describe "$OUT/custodian/setup-$run.json" >"$OUT/custodian/after-$run.json"
    done
fi

step "results"
"$PYTHON" - "$OUT" <<'EOF'
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]


def records(system, prefix):
    found = []
    for path in sorted(glob.glob(os.path.join(out, system, f"{prefix}-*.json"))):
        if re.search(rf"/{prefix}-\d+\.json$", path):
            found.append((path, json.load(open(path))))
    return found


def answered(record):
    return [item for item in record["invocations"] if item["result"] != "none"]


def summary(values):
    values = sorted(values)
    if not values:
        return "no data"
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return f"median {statistics.median(values):.1f}, min {values[0]:.1f}, p99 {p99:.1f}, max {values[-1]:.1f} (n={len(values)})"


for system in ("cordon", "custodian"):
    cold = records(system, "cold")
    if not cold:
        continue
    print(f"{system}:")
    first = [record["first_result_ms"] for _, record in cold if record["first_result_ms"] is not None]
    print(f"  cold start, no matching rule, process start to response (ms): {summary(first)}")
    errors = sum(1 for _, record in cold for item in answered(record) if item["result"] == "error")
    if errors:
        print(f"  ({errors} cold-start invocations returned an error)")
    warm_path = os.path.join(out, system, "warm.json")
    if os.path.exists(warm_path):
        warm = json.load(open(warm_path))
        durations = [item["duration_ms"] for item in answered(warm)[1:]]
        print(f"  warm, no matching rule, delivery to response (ms): {summary(durations)}")
        print(f"  peak RSS after {len(answered(warm))} events (KiB): {warm['max_rss_kb']}")
    contain = records(system, "contain")
    times = [record["first_result_ms"] for _, record in contain if record["first_result_ms"] is not None]
    results = [item["result"] for _, record in contain for item in record["invocations"]]
    print(f"  containment, cold, 3 ENIs + 2 volumes, process start to response (ms): {summary(times)}; results {results}")
    rss = [record["max_rss_kb"] for _, record in contain if record["max_rss_kb"]]
    if rss:
        print(f"  containment peak RSS (KiB): {summary(rss)}")
    for path in sorted(glob.glob(os.path.join(out, system, "after-*.json"))):
        state = json.load(open(path))
        setup = json.load(open(path.replace("after-", "setup-")))
        isolated = sum(1 for eni in state["network_interfaces"] if eni["groups"] == [setup["quarantine_group"]])
        total = len(state["network_interfaces"])
        print(f"  {os.path.basename(path)}: {isolated} of {total} network interfaces in the quarantine group only")
    size_path = os.path.join(out, system, "binary-bytes")
    if os.path.exists(size_path):
        size = int(open(size_path).read())
        print(f"  release bootstrap: {size} bytes ({size / 1024 / 1024:.1f} MiB)")
        print(f"  {open(os.path.join(out, system, 'binary-file')).read().strip()}")
EOF
