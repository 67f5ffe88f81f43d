"""A Lambda custom-runtime loop around Cloud Custodian's Lambda entry point, for benchmarks.

It polls the Runtime API in AWS_LAMBDA_RUNTIME_API like a Lambda bootstrap and hands each
event to `c7n.handler.dispatch_event`, the function Custodian deploys for `guard-duty` mode
policies. The policies are read from `config.json` in the current folder, as in Custodian's
own Lambda package. Importing c7n happens after the process starts, so a cold start measures
the interpreter, the imports and the first event, as in Lambda.
"""

import json
import os
import time
import traceback
import urllib.request

BASE = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"


class Context:
    """The parts of a Lambda context object that Custodian reads."""

    def __init__(self, request_id, deadline_ms, function_arn):
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "custodian")
        self.deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self.deadline_ms - int(time.time() * 1000))


def post(path, body, headers=None):
    request = urllib.request.Request(f"{BASE}{path}", data=json.dumps(body, default=str).encode(), method="POST")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    urllib.request.urlopen(request).read()


def main():
    from c7n import handler

    while True:
        with urllib.request.urlopen(f"{BASE}/invocation/next") as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline_ms = int(response.headers["Lambda-Runtime-Deadline-Ms"])
            arn = response.headers["Lambda-Runtime-Invoked-Function-Arn"]
            event = json.load(response)
        try:
            result = handler.dispatch_event(event, Context(request_id, deadline_ms, arn))
            post(f"/invocation/{request_id}/response", {"result": result})
        except Exception as error:  # noqa: BLE001 - every failure is reported to the Runtime API
            post(
                f"/invocation/{request_id}/error",
                {"errorType": type(error).__name__, "errorMessage": str(error), "stackTrace": traceback.format_exc().splitlines()},
                {"Lambda-Runtime-Function-Error-Type": "Unhandled"},
            )


if __name__ == "__main__":
    main()
