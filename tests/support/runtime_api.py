"""A local AWS Lambda Runtime API that runs a function's bootstrap on a list of events.

It serves the Runtime API protocol (version 2018-06-01) on 127.0.0.1:

  GET  /2018-06-01/runtime/invocation/next            the next event, with the headers
                                                      Lambda-Runtime-Aws-Request-Id,
                                                      Lambda-Runtime-Deadline-Ms,
                                                      Lambda-Runtime-Invoked-Function-Arn and
                                                      Lambda-Runtime-Trace-Id
  POST /2018-06-01/runtime/invocation/{id}/response   the function's result
  POST /2018-06-01/runtime/invocation/{id}/error      the function's error
  POST /2018-06-01/runtime/init/error                 an initialisation failure

It starts COMMAND with AWS_LAMBDA_RUNTIME_API and the other variables Lambda sets, hands out
the events in order, records every response, error and timing, stops the function once it has
responded to every event, and writes the record as JSON.

Usage:
  python3 runtime_api.py [--record FILE] [--log FILE] [--timeout-ms N] [--repeat N]
                         [--wait SECONDS] EVENT_FILE... -- COMMAND [ARG...]

The function runs with dummy credentials (AWS_ACCESS_KEY_ID=testing), without instance
metadata (AWS_EC2_METADATA_DISABLED=true) and without profiles or session tokens, and only
when AWS_ENDPOINT_URL is an http URL on a loopback address, so that it cannot reach AWS.

Exit status: 0 when every event got a response or an error, or the function reported an init
error. 1 when the function exited or --wait ran out first, 2 for invalid arguments.

The record:
  {
    "endpoint": "127.0.0.1:PORT",
    "init_error": null or {"error_type": ..., "body": ...},
    "invocations": [{"request_id", "event", "result": "response" | "error" | "none",
                     "body", "error_type", "delivered_ms", "duration_ms"}],
    "first_next_ms": time from start to the first GET .../next,
    "first_result_ms": time from start to the first response or error,
    "exit_code": the function's exit status, or a negative signal number,
    "max_rss_kb": the function's peak resident set size,
    "timed_out": true when --wait ran out
  }
Times are milliseconds since the function was started.
"""

import argparse
import ipaddress
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

API_PREFIX = "/2018-06-01/runtime"
FUNCTION_NAME = "cordon"
ACCOUNT_ID = "111122223333"
# Lambda's limit for a synchronous response or error payload.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
# Variables that could make the AWS SDK use real credentials or reach real endpoints.
CLEARED_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)


class Session:
    """The events to deliver and everything the function sent back."""

    def __init__(self, events, timeout_ms, region):
        self.lock = threading.Condition()
        self.pending = queue.Queue()
        self.invocations = []
        self.by_id = {}
        self.timeout_ms = timeout_ms
        self.region = region
        self.init_error = None
        self.started = time.monotonic()
        self.first_next_ms = None
        self.first_result_ms = None
        self.stopping = threading.Event()
        for name, body in events:
            request_id = str(uuid.uuid4())
            invocation = {
                "request_id": request_id,
                "event": name,
                "result": "none",
                "body": None,
                "error_type": None,
                "delivered_ms": None,
                "duration_ms": None,
            }
            self.invocations.append(invocation)
            self.by_id[request_id] = (invocation, body)
            self.pending.put(request_id)

    def elapsed_ms(self):
        return round((time.monotonic() - self.started) * 1000, 3)

    def finished(self):
        """True when the function reported an init error or responded to every event."""
        with self.lock:
            if self.init_error is not None:
                return True
            return all(item["result"] != "none" for item in self.invocations)

    def record(self):
        return {
            "init_error": self.init_error,
            "invocations": self.invocations,
            "first_next_ms": self.first_next_ms,
            "first_result_ms": self.first_result_ms,
        }


def trace_id():
    epoch = format(int(time.time()), "08x")
    return f"Root=1-{epoch}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


def decode_body(raw):
    """Parse a payload as JSON, or keep it as text when it is not JSON."""
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cordon-runtime-api"

    @property
    def session(self):
        return self.server.session

    def log_message(self, format, *args):  # noqa: A002 - the name is fixed by the base class
        pass

    def send_json(self, status, value, headers=None):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, header_value in (headers or {}).items():
            self.send_header(name, header_value)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length)

    def do_GET(self):  # noqa: N802 - the name is fixed by the base class
        if self.path != f"{API_PREFIX}/invocation/next":
            self.send_json(404, {"errorType": "NotFound", "errorMessage": f"no route {self.path}"})
            return
        session = self.session
        with session.lock:
            if session.first_next_ms is None:
                session.first_next_ms = session.elapsed_ms()
        while True:
            try:
                request_id = session.pending.get(timeout=0.2)
                break
            except queue.Empty:
                if session.stopping.is_set():
                    self.close_connection = True
                    return
        invocation, body = session.by_id[request_id]
        deadline_ms = int(time.time() * 1000) + session.timeout_ms
        with session.lock:
            invocation["delivered_ms"] = session.elapsed_ms()
        arn = f"arn:aws:lambda:{session.region}:{ACCOUNT_ID}:function:{FUNCTION_NAME}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(deadline_ms))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", arn)
        self.send_header("Lambda-Runtime-Trace-Id", trace_id())
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 - the name is fixed by the base class
        raw = self.read_body()
        session = self.session
        if len(raw) > MAX_PAYLOAD_BYTES:
            self.send_json(413, {"errorType": "RequestEntityTooLarge", "errorMessage": "payload over 6 MB"})
            return
        if self.path == f"{API_PREFIX}/init/error":
            with session.lock:
                session.init_error = {
                    "error_type": self.headers.get("Lambda-Runtime-Function-Error-Type"),
                    "body": decode_body(raw),
                }
                session.lock.notify_all()
            self.send_json(202, {"status": "OK"})
            return
        parts = self.path[len(API_PREFIX):].strip("/").split("/")
        if len(parts) != 3 or parts[0] != "invocation" or parts[2] not in ("response", "error"):
            self.send_json(404, {"errorType": "NotFound", "errorMessage": f"no route {self.path}"})
            return
        request_id, kind = parts[1], parts[2]
        entry = session.by_id.get(request_id)
        if entry is None:
            self.send_json(400, {"errorType": "InvalidRequestID", "errorMessage": f"unknown request id {request_id}"})
            return
        invocation = entry[0]
        with session.lock:
            if invocation["result"] != "none" or invocation["delivered_ms"] is None:
                conflict = True
            else:
                conflict = False
                now = session.elapsed_ms()
                invocation["result"] = kind
                invocation["body"] = decode_body(raw)
                invocation["error_type"] = self.headers.get("Lambda-Runtime-Function-Error-Type")
                invocation["duration_ms"] = round(now - invocation["delivered_ms"], 3)
                if session.first_result_ms is None:
                    session.first_result_ms = now
                session.lock.notify_all()
        if conflict:
            self.send_json(400, {"errorType": "InvalidStateTransition", "errorMessage": f"request {request_id} is not awaiting a result"})
            return
        self.send_json(202, {"status": "OK"})


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Ignore connections the function drops when it is stopped; report anything else."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def require_loopback_endpoint(environment):
    """Exit unless AWS_ENDPOINT_URL points at a loopback address."""
    endpoint = environment.get("AWS_ENDPOINT_URL", "")
    parsed = urlparse(endpoint)
    host = parsed.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parsed.scheme != "http" or not loopback:
        sys.exit(
            f"runtime_api.py: error: AWS_ENDPOINT_URL must be an http URL on a loopback address "
            f"(start the emulator with tests/support/emulator.sh), found {endpoint!r}"
        )


def function_environment(endpoint, region):
    environment = dict(os.environ)
    require_loopback_endpoint(environment)
    for name in CLEARED_VARIABLES:
        environment.pop(name, None)
    environment.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_RUNTIME_API": endpoint,
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
        }
    )
    return environment


def stop(process):
    """Send SIGTERM, as Lambda does at shutdown."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)


def wait_for_exit(process, seconds):
    """Reap the process and return (exit code, peak RSS in KiB), or (None, None) on timeout."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage.ru_maxrss
        time.sleep(0.01)
    return None, None


def parse_arguments(argv):
    if "--" not in argv:
        sys.exit("runtime_api.py: error: missing `-- COMMAND`; see the usage at the top of this file")
    split = argv.index("--")
    command = argv[split + 1:]
    parser = argparse.ArgumentParser(prog="runtime_api.py", description=__doc__.splitlines()[0])
    parser.add_argument("events", nargs="*", metavar="EVENT_FILE", help="JSON payloads, delivered in order")
    parser.add_argument("--record", help="write the record here instead of standard output")
    parser.add_argument("--log", help="write the function's standard output and error here")
    parser.add_argument("--timeout-ms", type=int, default=30000, help="function timeout in ms (default 30000)")
    parser.add_argument("--repeat", type=int, default=1, help="deliver the event list this many times")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for all responses (default 120)")
    arguments = parser.parse_args(argv[:split])
    if not command:
        parser.error("missing COMMAND after `--`")
    if arguments.repeat < 1 or arguments.timeout_ms < 1:
        parser.error("--repeat and --timeout-ms must be positive")
    return arguments, command


def main(argv):
    arguments, command = parse_arguments(argv)
    events = []
    for _ in range(arguments.repeat):
        for path in arguments.events:
            with open(path, "rb") as file:
                events.append((path, file.read()))

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1"
    server = Server(("127.0.0.1", 0), Handler)
    endpoint = f"127.0.0.1:{server.server_address[1]}"
    environment = function_environment(endpoint, region)
    session = Session(events, arguments.timeout_ms, region)
    server.session = session
    threading.Thread(target=server.serve_forever, daemon=True).start()

    # Turn SIGTERM into SystemExit, so that the `finally` below stops the function too.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    log = open(arguments.log, "wb") if arguments.log else None
    output = log if log else sys.stderr
    session.started = time.monotonic()
    process = subprocess.Popen(command, env=environment, stdout=output, stderr=output)
    try:
        exit_code, max_rss_kb, timed_out = supervise(process, session, arguments.wait)
    finally:
        if process.returncode is None:
            process.kill()
            wait_for_exit(process, 5.0)
        session.stopping.set()
        server.shutdown()
        server.server_close()
        if log:
            log.close()

    record = {"endpoint": endpoint, **session.record()}
    record.update({"exit_code": exit_code, "max_rss_kb": max_rss_kb, "timed_out": timed_out})
    text = json.dumps(record, indent=2)
    if arguments.record:
        with open(arguments.record, "w", encoding="utf-8") as file:
            file.write(text + "\n")
    else:
        print(text)
    return 0 if session.finished() else 1


def supervise(process, session, wait_seconds):
    """Wait until the function has responded to every event, then stop it.

    Returns (exit code, peak RSS in KiB, whether the wait timed out).
    """
    deadline = time.monotonic() + wait_seconds
    exit_code, max_rss_kb = None, None
    timed_out = False
    while not session.finished():
        exit_code, max_rss_kb = wait_for_exit(process, 0.05)
        if exit_code is not None:
            break
        if time.monotonic() >= deadline:
            timed_out = True
            break

    session.stopping.set()
    if exit_code is None:
        # After an init error Lambda stops the process; give it a moment to exit by itself.
        if session.init_error is not None:
            exit_code, max_rss_kb = wait_for_exit(process, 2.0)
        if exit_code is None:
            stop(process)
            exit_code, max_rss_kb = wait_for_exit(process, 2.0)
        if exit_code is None:
            process.kill()
            exit_code, max_rss_kb = wait_for_exit(process, 5.0)
    return exit_code, max_rss_kb, timed_out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
