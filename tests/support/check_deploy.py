"""Check the deployment template against the rules it deploys.

Drift: the role policy named `cordon-iam-policy` must equal what `cordon iam-policy RULES
--function-name NAME` prints, and the EventBridge rule's EventPattern what `cordon
event-pattern RULES` prints. NAME is the default of the parameter that names the function.
Before the comparison, each `Fn::Sub` string in the template's copies becomes the text the
generator prints: `${AWS::Partition}` becomes `aws`, `${AWS::Region}` and `${AWS::AccountId}`
become `*`, `${FunctionName}` becomes NAME, and `${!x}` becomes `${x}`. So the template may
write the partition of its stack where the generator prints `aws`, and narrow the log group
ARN to its own region and account. Nothing else may differ, and any other intrinsic function
in these documents is an error.

Wiring: the function writes to the log group named in that policy, sets every variable
that the rule files declare in `env`, and gets no permission beyond the generated policy
except SQS calls for delivery. An SQS event source has a visibility timeout of at least 6
times the function timeout, a dead-letter queue and partial batch responses.

With `--translated PATH`, the template is also translated by aws-sam-translator, as `sam
deploy` does after uploading the code, and the result is written to PATH for cfn-lint.

With `--write`, the blocks between `# BEGIN GENERATED` and `# END GENERATED` comments are
first rewritten from the generators' output, in the form described above.

Usage: .venv/bin/python tests/support/check_deploy.py --cordon target/debug/cordon
       [--template deploy/template.yaml] [--rules rules] [--translated PATH] [--write]
The exit status is 0 when every check passes and 1 otherwise.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

# The SAM translator imports boto3, which reads the region when it builds ARNs. Nothing
# here sends a request, and no code path may reach the instance metadata service.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)

import yaml  # noqa: E402  (a dependency of cfn-lint)
from cfnlint.decode import decode  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
POLICY_NAME = "cordon-iam-policy"
FUNCTION_TYPE = "AWS::Serverless::Function"
RULE_TYPE = "AWS::Events::Rule"
# Lambda's advice for SQS event sources: visibility timeout >= 6 x function timeout.
VISIBILITY_FACTOR = 6
SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
GENERATED_BLOCK = re.compile(
    r"^(?P<indent> *)(?P<begin># BEGIN GENERATED (?P<source>iam-policy|event-pattern)\b[^\n]*\n)"
    r"(?P<body>.*?)"
    r"^(?P=indent)(?P<end># END GENERATED (?P=source)\n)",
    re.MULTILINE | re.DOTALL,
)
GENERATED_KEYS = {"iam-policy": "PolicyDocument", "event-pattern": "EventPattern"}


class TemplateError(Exception):
    """The template cannot be read or lacks a resource the checks need."""


def load_template(path: Path) -> dict[str, Any]:
    """Parses a template with cfn-lint's decoder, which reads the short-form tags."""
    template, matches = decode(str(path))
    if matches or template is None:
        details = "; ".join(str(match) for match in matches)
        raise TemplateError(f"cannot parse `{path}`: {details}")
    return json.loads(json.dumps(template))


def run_cordon(cordon: Path, *args: str) -> Any:
    """Runs the cordon binary and parses its standard output as JSON."""
    result = subprocess.run(
        [str(cordon), *args], capture_output=True, text=True, check=False, timeout=60
    )
    if result.returncode != 0:
        raise TemplateError(
            f"`cordon {' '.join(args)}` failed with exit status {result.returncode}:\n"
            f"{result.stderr}"
        )
    return json.loads(result.stdout)


def generate(cordon: Path, rules: Path, function_name: str) -> dict[str, Any]:
    """Returns the generators' documents, keyed by subcommand."""
    return {
        "iam-policy": run_cordon(
            cordon, "iam-policy", str(rules), "--function-name", function_name
        ),
        "event-pattern": run_cordon(cordon, "event-pattern", str(rules)),
    }


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in template.get("Resources", {}).items()
        if resource.get("Type") == kind
    }


def only_resource(template: dict[str, Any], kind: str) -> dict[str, Any]:
    found = resources_of_type(template, kind)
    if len(found) != 1:
        raise TemplateError(f"expected exactly one `{kind}` resource, found {len(found)}")
    return next(iter(found.values()))


def referenced_resource(template: dict[str, Any], value: Any, what: str) -> dict[str, Any]:
    """Returns the resource that the `Ref` or `Fn::GetAtt` in VALUE names."""
    name = None
    if isinstance(value, dict) and list(value) == ["Ref"]:
        name = value["Ref"]
    elif isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        target = value["Fn::GetAtt"]
        name = target[0] if isinstance(target, list) else str(target).split(".")[0]
    resource = template.get("Resources", {}).get(name) if isinstance(name, str) else None
    if resource is None:
        raise TemplateError(
            f"{what} must be a `Ref` or `Fn::GetAtt` of a resource, found {value!r}"
        )
    return resource


def function_name_parameter(template: dict[str, Any]) -> tuple[str, str]:
    """Returns the parameter that the function's `FunctionName` refers to, and its default."""
    function = only_resource(template, FUNCTION_TYPE)
    value = function.get("Properties", {}).get("FunctionName")
    if not (isinstance(value, dict) and list(value) == ["Ref"]):
        raise TemplateError(
            f"the function's FunctionName must be a `Ref` to a parameter, found {value!r}"
        )
    parameter = template.get("Parameters", {}).get(value["Ref"])
    if parameter is None or not isinstance(parameter.get("Default"), str):
        raise TemplateError(f"parameter `{value['Ref']}` must exist and have a string default")
    return value["Ref"], parameter["Default"]


def expand_sub(text: str, function_name: str, path: str, problems: list[str]) -> str:
    """Returns the generator's text for a `Fn::Sub` string (see the module docs)."""
    known = {
        "AWS::Partition": "aws",
        "AWS::Region": "*",
        "AWS::AccountId": "*",
        "FunctionName": function_name,
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in known:
            return known[name]
        allowed = ", ".join(f"${{{key}}}" for key in known)
        problems.append(f"{path}: `${{{name}}}` is not allowed here; use only {allowed}")
        return match.group(0)

    return SUB_VARIABLE.sub(replace, text)


def normalize(value: Any, function_name: str, path: str, problems: list[str]) -> Any:
    """Replaces `Fn::Sub` strings with the generator's text and reports other intrinsics."""
    if isinstance(value, dict):
        if list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], str):
            return expand_sub(value["Fn::Sub"], function_name, path, problems)
        intrinsic = [key for key in value if key == "Ref" or key.startswith("Fn::")]
        if intrinsic:
            problems.append(f"{path}: `{intrinsic[0]}` is not allowed in a generated document")
            return value
        return {
            key: normalize(item, function_name, f"{path}.{key}", problems)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            normalize(item, function_name, f"{path}[{index}]", problems)
            for index, item in enumerate(value)
        ]
    return value


def template_text(text: str, function_name: str) -> str | None:
    """Returns the `Fn::Sub` text for a generated string, or None to keep it literal.

    The inverse of `expand_sub`: the partition becomes `${AWS::Partition}`, and the function's
    log group ARN gets the stack's region, account and function name.
    """
    if not text.startswith("arn:aws:"):
        return None
    sub = "arn:${AWS::Partition}:" + text.removeprefix("arn:aws:").replace("${", "${!")
    log_group = f"logs:*:*:log-group:/aws/lambda/{function_name}:"
    if sub.startswith("arn:${AWS::Partition}:" + log_group):
        own_group = "logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/${FunctionName}:"
        sub = sub.replace(log_group, own_group, 1)
    return sub


def render(value: Any, indent: int, function_name: str) -> str:
    """Renders a document as JSON that is also YAML, with `!Sub` for ARNs (see template_text)."""
    inner = " " * (indent + 2)
    if isinstance(value, dict) and value:
        items = [
            f"{inner}{json.dumps(key)}: {render(item, indent + 2, function_name)}"
            for key, item in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if isinstance(value, list) and value:
        items = [f"{inner}{render(item, indent + 2, function_name)}" for item in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    if isinstance(value, str):
        sub = template_text(value, function_name)
        return json.dumps(value) if sub is None else f"!Sub {json.dumps(sub)}"
    return json.dumps(value)


def write_generated(path: Path, generated: dict[str, Any], function_name: str) -> None:
    """Rewrites the generated blocks of the template text at PATH."""
    text = path.read_text()
    found: list[str] = []

    def replace(match: re.Match[str]) -> str:
        indent, source = match.group("indent"), match.group("source")
        found.append(source)
        body = render(generated[source], len(indent) + 2, function_name)
        key = GENERATED_KEYS[source]
        block = f"{indent}{key}:\n{indent}  {body}\n"
        return indent + match.group("begin") + block + indent + match.group("end")

    text = GENERATED_BLOCK.sub(replace, text)
    if sorted(found) != sorted(GENERATED_KEYS):
        raise TemplateError(
            f"expected one `# BEGIN GENERATED` block for each of {sorted(GENERATED_KEYS)} "
            f"with its `# END GENERATED` line, found {sorted(found)}"
        )
    path.write_text(text)


def show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def diff(expected: Any, actual: Any, path: str) -> list[str]:
    """Lists the differences between the generator's document and the template's, by path."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines = []
        for key in sorted(set(expected) | set(actual)):
            child = f"{path}.{key}"
            if key not in actual:
                lines.append(
                    f"{child}: missing in the template; cordon prints {show(expected[key])}"
                )
            elif key not in expected:
                lines.append(
                    f"{child}: not printed by cordon; the template has {show(actual[key])}"
                )
            else:
                lines.extend(diff(expected[key], actual[key], child))
        return lines
    if isinstance(expected, list) and isinstance(actual, list):
        return diff_lists(expected, actual, path)
    if expected != actual:
        return [f"{path}: cordon prints {show(expected)}, the template has {show(actual)}"]
    return []


def diff_lists(expected: list[Any], actual: list[Any], path: str) -> list[str]:
    expected_sids = [item.get("Sid") if isinstance(item, dict) else None for item in expected]
    actual_sids = [item.get("Sid") if isinstance(item, dict) else None for item in actual]
    if expected and actual and all(expected_sids) and all(actual_sids):
        # Statements: match them by Sid, so that one changed statement reads as one change.
        by_sid = {item["Sid"]: item for item in actual}
        lines = []
        for item in expected:
            sid = item["Sid"]
            if sid in by_sid:
                lines.extend(diff(item, by_sid[sid], f"{path}[Sid={sid}]"))
            else:
                lines.append(f"{path}: statement `{sid}` missing in the template")
        for sid in actual_sids:
            if sid not in expected_sids:
                lines.append(f"{path}: statement `{sid}` is not printed by cordon")
        if not lines and expected_sids != actual_sids:
            lines.append(f"{path}: the statements are not in the order cordon prints them")
        return lines
    if expected == actual:
        return []
    lines = [
        f"{path}: missing in the template: {show(item)}" for item in expected if item not in actual
    ]
    lines += [
        f"{path}: not printed by cordon: {show(item)}" for item in actual if item not in expected
    ]
    if not lines:
        lines.append(f"{path}: cordon prints {show(expected)}, the template has {show(actual)}")
    return lines


def policy_branches(policy: Any) -> list[Any]:
    """Returns both branches of an `Fn::If`, or the policy itself."""
    if isinstance(policy, dict) and list(policy) == ["Fn::If"]:
        _, when_true, when_false = policy["Fn::If"]
        return policy_branches(when_true) + policy_branches(when_false)
    if isinstance(policy, dict) and policy == {"Ref": "AWS::NoValue"}:
        return []
    return [policy]


def role_policies(template: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Returns the function's role and its inline policies, with both branches of each `Fn::If`."""
    function = only_resource(template, FUNCTION_TYPE)
    role = referenced_resource(
        template, function.get("Properties", {}).get("Role"), "the function's Role"
    )
    policies = []
    for entry in role.get("Properties", {}).get("Policies", []):
        policies.extend(policy_branches(entry))
    return role, policies


def check_drift(template: dict[str, Any], generated: dict[str, Any]) -> list[str]:
    """Compares the generated policy and event pattern with the template's copies."""
    _, function_name = function_name_parameter(template)
    problems: list[str] = []

    _, policies = role_policies(template)
    named = [policy for policy in policies if policy.get("PolicyName") == POLICY_NAME]
    if len(named) != 1:
        problems.append(
            f"the function's role must have one inline policy named `{POLICY_NAME}`, "
            f"found {len(named)}"
        )
    else:
        path = f"policy {POLICY_NAME}"
        policy = normalize(named[0].get("PolicyDocument"), function_name, path, problems)
        problems.extend(diff(generated["iam-policy"], policy, path))

    rule = only_resource(template, RULE_TYPE)
    pattern = rule.get("Properties", {}).get("EventPattern")
    pattern = normalize(pattern, function_name, "EventPattern", problems)
    problems.extend(diff(generated["event-pattern"], pattern, "EventPattern"))
    return problems


def declared_env(rules: Path) -> set[str]:
    """Returns the variables that the rule files directly inside RULES declare in `env`."""
    if rules.is_file():
        files = [rules]
    else:
        files = sorted(path for path in rules.iterdir() if path.suffix in (".yaml", ".yml"))
    names: set[str] = set()
    for path in files:
        document = yaml.safe_load(path.read_text())
        if isinstance(document, dict):
            names.update(document.get("env") or [])
    return names


def check_wiring(template: dict[str, Any], rules: Path) -> list[str]:
    """Checks the links between the function, its log group, its role and its queues."""
    function = only_resource(template, FUNCTION_TYPE)
    properties = function.get("Properties", {})
    logging_config = properties.get("LoggingConfig", {})
    problems: list[str] = []

    log_group = referenced_resource(
        template, logging_config.get("LogGroup"), "LoggingConfig.LogGroup"
    )
    parameter, _ = function_name_parameter(template)
    name = log_group.get("Properties", {}).get("LogGroupName")
    if name != {"Fn::Sub": f"/aws/lambda/${{{parameter}}}"}:
        problems.append(
            f"the function's log group must be named `/aws/lambda/${{{parameter}}}`, the only "
            f"group the generated policy lets it write to; found {show(name)}"
        )
    if logging_config.get("LogFormat") != "JSON":
        problems.append("LoggingConfig.LogFormat must be JSON")

    variables = properties.get("Environment", {}).get("Variables", {})
    for variable in sorted(declared_env(rules) - set(variables)):
        problems.append(
            f"the rules declare `{variable}` in `env`, but the function does not set it"
        )

    role, policies = role_policies(template)
    if role.get("Properties", {}).get("ManagedPolicyArns"):
        problems.append(
            "the function's role must have no managed policies: the generated policy covers "
            "its logs, and every other permission is listed in the template"
        )
    for policy in policies:
        if policy.get("PolicyName") != POLICY_NAME:
            problems.extend(check_delivery_policy(policy))

    for name, mapping in resources_of_type(template, "AWS::Lambda::EventSourceMapping").items():
        problems.extend(check_queue_source(template, name, mapping, properties.get("Timeout")))
    return problems


def check_delivery_policy(policy: dict[str, Any]) -> list[str]:
    """Reports every action of a policy other than the generated one that is not an SQS call."""
    problems = []
    for statement in policy.get("PolicyDocument", {}).get("Statement", []):
        actions = statement.get("Action", [])
        for action in [actions] if isinstance(actions, str) else actions:
            if not action.startswith("sqs:"):
                problems.append(
                    f"policy {policy.get('PolicyName')}: `{action}` is not a delivery "
                    f"permission; the actions' permissions come from `cordon iam-policy`"
                )
    return problems


def check_queue_source(
    template: dict[str, Any], name: str, mapping: dict[str, Any], timeout: Any
) -> list[str]:
    properties = mapping.get("Properties", {})
    queue = referenced_resource(
        template, properties.get("EventSourceArn"), f"{name}.EventSourceArn"
    )
    queue_properties = queue.get("Properties", {})
    visibility = queue_properties.get("VisibilityTimeout")
    problems = []
    if not isinstance(timeout, int) or not isinstance(visibility, int):
        problems.append(
            f"{name}: the function Timeout and the queue VisibilityTimeout must be numbers"
        )
    elif visibility < VISIBILITY_FACTOR * timeout:
        problems.append(
            f"{name}: the queue's VisibilityTimeout {visibility} is less than "
            f"{VISIBILITY_FACTOR} x the function Timeout {timeout}"
        )
    if "RedrivePolicy" not in queue_properties:
        problems.append(f"{name}: the queue has no RedrivePolicy (dead-letter queue)")
    if "ReportBatchItemFailures" not in properties.get("FunctionResponseTypes", []):
        problems.append(f"{name}: FunctionResponseTypes must contain ReportBatchItemFailures")
    return problems


def translate(template: dict[str, Any]) -> dict[str, Any]:
    """Translates the SAM template to plain CloudFormation, offline.

    The local CodeUri becomes a placeholder S3 URI, as `sam deploy` replaces it with the
    uploaded package. The template names no managed policy, so the policy loader, which
    would call IAM, returns none.
    """
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    packaged = copy.deepcopy(template)
    for resource in resources_of_type(packaged, FUNCTION_TYPE).values():
        resource["Properties"]["CodeUri"] = "s3://placeholder-bucket/cordon.zip"
    return transform(packaged, {}, NoManagedPolicies())


def check(template_path: Path, cordon: Path, rules: Path, write: bool = False) -> list[str]:
    """Runs the drift and wiring checks, after rewriting the generated blocks if WRITE."""
    template = load_template(template_path)
    _, function_name = function_name_parameter(template)
    generated = generate(cordon, rules, function_name)
    if write:
        write_generated(template_path, generated, function_name)
        template = load_template(template_path)

    problems = check_drift(template, generated)
    if problems:
        problems.append(
            f"regenerate the blocks with: {os.path.relpath(sys.executable)} {sys.argv[0]} --write "
            f"--cordon {cordon} --template {template_path} --rules {rules}"
        )
    return problems + check_wiring(template, rules)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--cordon", type=Path, required=True, help="path of the cordon binary")
    parser.add_argument("--template", type=Path, default=REPO / "deploy" / "template.yaml")
    parser.add_argument("--rules", type=Path, default=REPO / "rules", help="rule file or folder")
    parser.add_argument("--translated", type=Path, help="write the translated template here")
    parser.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    args = parser.parse_args()

    try:
        problems = check(args.template, args.cordon, args.rules, args.write)
        if args.translated and not problems:
            translated = translate(load_template(args.template))
            args.translated.parent.mkdir(parents=True, exist_ok=True)
            args.translated.write_text(json.dumps(translated, indent=2) + "\n")
    except (TemplateError, OSError, ValueError) as error:
        problems = [str(error)]
    except Exception as error:
        if not type(error).__module__.startswith("samtranslator"):
            raise
        problems = [f"the SAM translator rejects the template: {error}"]

    for problem in problems:
        print(f"{args.template}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(
        f"{args.template}: matches `cordon iam-policy` and `cordon event-pattern` for {args.rules}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
