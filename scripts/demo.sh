#!/usr/bin/env bash
# The local demo: the cordon Lambda function contains an EC2 instance named in a GuardDuty
# TorClient finding.
#
# It installs and starts the EC2 emulator (moto on 127.0.0.1), builds `bootstrap`, and
# creates a VPC, a quarantine group and an instance with three network interfaces. Then it
# runs the real `bootstrap` under a local Lambda Runtime API and sends it the finding. It
# prints the instance's groups, tags and snapshots before and after, and the response.
#
# Nothing here talks to AWS: every AWS client gets dummy credentials, the emulator's loopback
# endpoint and AWS_EC2_METADATA_DISABLED=true. The files of the run stay in .cordon-run/demo/.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly REPO_ROOT="$PWD"
readonly DEMO_DIR="$REPO_ROOT/.cordon-run/demo"
readonly PYTHON="${CORDON_VENV:-$REPO_ROOT/.venv}/bin/python"
readonly FIXTURE="tests/support/ec2_fixture.py"

step() {
    printf '\n==> %s\n' "$*"
}

die() {
    echo "demo.sh: error: $*" >&2
    exit 1
}

# The demo's own emulator, in its own run directory, so that an emulator started by the
# tests keeps running and this one is always stopped.
export CORDON_RUN_DIR="$DEMO_DIR/emulator"
emulator_started=false

cleanup() {
    if [[ "$emulator_started" == true ]]; then
        tests/support/emulator.sh stop >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"

step "installing the EC2 emulator (moto) into .venv"
tests/support/emulator.sh install

step "starting the EC2 emulator on 127.0.0.1"
if ! exports="$(tests/support/emulator.sh start)"; then
    die "the EC2 emulator did not start; see $CORDON_RUN_DIR/emulator.log"
fi
emulator_started=true
eval "$exports"
if [[ "${AWS_ENDPOINT_URL:-}" != http://127.0.0.1:* ]]; then
    die "AWS_ENDPOINT_URL is not a loopback address: '${AWS_ENDPOINT_URL:-}'"
fi
echo "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL, region $AWS_REGION, account 111122223333"

step "building bootstrap (cargo build -p cordon-lambda)"
build_messages="$DEMO_DIR/build.jsonl"
cargo build -p cordon-lambda --bin bootstrap --message-format json-render-diagnostics >"$build_messages"
bootstrap="$("$PYTHON" - "$build_messages" <<'EOF'
import json
import sys

for line in open(sys.argv[1], encoding="utf-8"):
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and (message.get("executable") or "").endswith("/bootstrap"):
        print(message["executable"])
EOF
)"
[[ -x "$bootstrap" ]] || die "cargo did not report the bootstrap executable"
echo "$bootstrap"

step "creating a VPC, a quarantine group and an instance with three network interfaces"
"$PYTHON" "$FIXTURE" setup --enis 3 --volumes 1 >"$DEMO_DIR/setup.json"
quarantine_group="$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["quarantine_group"])' "$DEMO_DIR/setup.json")"
echo "quarantine group $quarantine_group"

step "before"
"$PYTHON" "$FIXTURE" describe "$DEMO_DIR/setup.json" --text

step "the GuardDuty event: tests/fixtures/tor-client.json rewritten for this instance"
"$PYTHON" "$FIXTURE" event tests/fixtures/tor-client.json "$DEMO_DIR/setup.json" >"$DEMO_DIR/event.json"
"$PYTHON" - "$DEMO_DIR/event.json" <<'EOF'
import json
import sys

event = json.load(open(sys.argv[1], encoding="utf-8"))
finding = event["detail"]
instance = finding["resource"]["instanceDetails"]
print(f"{event['detail-type']} from {event['source']}: {finding['type']}, severity {finding['severity']}")
print(f"finding {finding['id']} for {instance['instanceId']} in account {finding['accountId']}, {finding['region']}")
for eni in instance["networkInterfaces"]:
    print(f"  {eni['networkInterfaceId']} in {eni['vpcId']}")
EOF

step "invoking bootstrap under the local Lambda Runtime API (QUARANTINE_SG=$quarantine_group, CORDON_RULES=rules/)"
QUARANTINE_SG="$quarantine_group" CORDON_RULES=rules/ \
    "$PYTHON" tests/support/runtime_api.py \
    --record "$DEMO_DIR/record.json" --log "$DEMO_DIR/function.log" \
    "$DEMO_DIR/event.json" -- "$bootstrap" \
    || die "the function did not respond; its log is $DEMO_DIR/function.log"
echo "function log ($DEMO_DIR/function.log):"
sed 's/^/  /' "$DEMO_DIR/function.log"

step "the function's response"
"$PYTHON" - "$DEMO_DIR/record.json" <<'EOF'
import json
import sys

record = json.load(open(sys.argv[1], encoding="utf-8"))
if record["init_error"]:
    print(json.dumps(record["init_error"], indent=2))
    sys.exit(1)
invocation = record["invocations"][0]
print(f"{invocation['result']} after {invocation['duration_ms']} ms:")
print(json.dumps(invocation["body"], indent=2))
if invocation["result"] != "response":
    sys.exit(1)
EOF

step "after"
"$PYTHON" "$FIXTURE" describe "$DEMO_DIR/setup.json" --text

echo
echo "Done. The event, the response record and the function log are in $DEMO_DIR/."
