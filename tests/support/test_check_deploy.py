"""Tests of check_deploy.py: the checks pass on the shipped template and fail on each kind of
drift. Run by tests/support/check_deploy.sh; CORDON_BIN names the cordon binary
(default: target/debug/cordon).
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_deploy  # noqa: E402

REPO = check_deploy.REPO
TEMPLATE = REPO / "deploy" / "template.yaml"
RULES = REPO / "rules"
CORDON = Path(os.environ.get("CORDON_BIN", REPO / "target" / "debug" / "cordon"))


def policy_document(template: dict[str, Any]) -> dict[str, Any]:
    _, policies = check_deploy.role_policies(template)
    named = [p for p in policies if p.get("PolicyName") == check_deploy.POLICY_NAME]
    return named[0]["PolicyDocument"]


def statement(template: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in policy_document(template)["Statement"] if s["Sid"] == sid)


def event_pattern(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["FindingRule"]["Properties"]["EventPattern"]


class CheckDeployTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        if not os.access(CORDON, os.X_OK):
            raise RuntimeError(f"no cordon binary at {CORDON}; run cargo build or set CORDON_BIN")
        cls.shipped = check_deploy.load_template(TEMPLATE)
        cls.generated = check_deploy.generate(CORDON, RULES, "cordon")

    def setUp(self) -> None:
        self.template = copy.deepcopy(self.shipped)
        self.temp = Path(tempfile.mkdtemp(prefix="check-deploy-"))
        self.addCleanup(shutil.rmtree, self.temp)

    def drift(self, generated: dict[str, Any] | None = None) -> list[str]:
        return check_deploy.check_drift(self.template, generated or self.generated)

    def assert_reports(self, problems: list[str], *fragments: str) -> None:
        text = "\n".join(problems)
        for fragment in fragments:
            self.assertIn(fragment, text)

    def copy_rules(self, *skip: str) -> Path:
        rules = self.temp / "rules"
        rules.mkdir()
        for path in RULES.glob("*.yaml"):
            if path.name not in skip:
                shutil.copy(path, rules / path.name)
        return rules

    def test_shipped_template_passes(self) -> None:
        self.assertEqual(check_deploy.check(TEMPLATE, CORDON, RULES), [])

    def test_missing_action_is_reported(self) -> None:
        statement(self.template, "ReadEc2State")["Action"].remove("ec2:DescribeSnapshots")
        self.assert_reports(
            self.drift(),
            "policy cordon-iam-policy.Statement[Sid=ReadEc2State].Action: "
            'missing in the template: "ec2:DescribeSnapshots"',
        )

    def test_extra_action_is_reported(self) -> None:
        statement(self.template, "ReadEc2State")["Action"].append("ec2:TerminateInstances")
        self.assert_reports(self.drift(), 'not printed by cordon: "ec2:TerminateInstances"')

    def test_widened_resource_is_reported(self) -> None:
        statement(self.template, "TagResources")["Resource"] = "*"
        self.assert_reports(self.drift(), "Statement[Sid=TagResources].Resource: cordon prints")

    def test_dropped_condition_is_reported(self) -> None:
        del statement(self.template, "TagResources")["Condition"]
        self.assert_reports(
            self.drift(), "Statement[Sid=TagResources].Condition: missing in the template"
        )

    def test_missing_statement_is_reported(self) -> None:
        document = policy_document(self.template)
        document["Statement"] = [s for s in document["Statement"] if s["Sid"] != "WriteOwnLogs"]
        self.assert_reports(self.drift(), "statement `WriteOwnLogs` missing in the template")

    def test_log_arn_with_other_function(self) -> None:
        statement(self.template, "WriteOwnLogs")["Resource"] = {
            "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
            "log-group:/aws/lambda/other:*"
        }
        self.assert_reports(self.drift(), "Statement[Sid=WriteOwnLogs].Resource")

    def test_unknown_sub_variable_is_reported(self) -> None:
        statement(self.template, "WriteOwnLogs")["Resource"] = {
            "Fn::Sub": "arn:aws:logs:*:*:log-group:/aws/lambda/${AWS::StackName}:*"
        }
        self.assert_reports(self.drift(), "`${AWS::StackName}` is not allowed here")

    def test_other_intrinsic_is_reported(self) -> None:
        statement(self.template, "ReadEc2State")["Resource"] = {"Ref": "AWS::NoValue"}
        self.assert_reports(self.drift(), "`Ref` is not allowed in a generated document")

    def test_extra_finding_type_is_reported(self) -> None:
        event_pattern(self.template)["detail"]["type"].append("Recon:EC2/Portscan")
        self.assert_reports(
            self.drift(), 'EventPattern.detail.type: not printed by cordon: "Recon:EC2/Portscan"'
        )

    def test_missing_resource_filter_is_reported(self) -> None:
        del event_pattern(self.template)["detail"]["resource"]
        self.assert_reports(self.drift(), "EventPattern.detail.resource: missing in the template")

    def test_removed_rule_file_is_reported(self) -> None:
        generated = check_deploy.generate(CORDON, self.copy_rules("reconnaissance.yaml"), "cordon")
        self.assert_reports(
            self.drift(generated),
            'not printed by cordon: "Recon:EC2/PortProbeUnprotectedPort"',
        )

    def test_rule_with_new_tag_key(self) -> None:
        rules = self.copy_rules()
        path = rules / "reconnaissance.yaml"
        text = path.read_text()
        self.assertIn('"cordon:status": review', text)
        path.write_text(
            text.replace(
                '"cordon:status": review', '"cordon:status": review\n            owner: security'
            )
        )
        generated = check_deploy.generate(CORDON, rules, "cordon")
        self.assert_reports(
            self.drift(generated), "Statement[Sid=TagResources].Condition", '"owner"'
        )

    def test_write_restores_generated_blocks(self) -> None:
        template = self.temp / "template.yaml"
        text = TEMPLATE.read_text()
        text = text.replace('"ec2:DescribeSnapshots"', '"ec2:DescribeSnapshot"')
        text = text.replace('"UnauthorizedAccess:EC2/TorRelay"', '"UnauthorizedAccess:EC2/X"')
        template.write_text(text)
        self.assertNotEqual(check_deploy.check(template, CORDON, RULES), [])

        self.assertEqual(check_deploy.check(template, CORDON, RULES, write=True), [])
        self.assertEqual(template.read_text(), TEMPLATE.read_text())

    def test_write_needs_both_markers(self) -> None:
        template = self.temp / "template.yaml"
        template.write_text(TEMPLATE.read_text().replace("# END GENERATED event-pattern", "#"))
        with self.assertRaisesRegex(check_deploy.TemplateError, "END GENERATED"):
            check_deploy.check(template, CORDON, RULES, write=True)

    def test_sub_text_round_trips(self) -> None:
        for text in [
            "arn:aws:ec2:*:*:instance/*",
            "arn:aws:logs:*:*:log-group:/aws/lambda/cordon:*",
            "arn:aws:s3:::bucket/${aws:username}/*",
            "*",
        ]:
            sub = check_deploy.template_text(text, "cordon")
            problems: list[str] = []
            value = text if sub is None else {"Fn::Sub": sub}
            self.assertEqual(check_deploy.normalize(value, "cordon", "$", problems), text)
            self.assertEqual(problems, [])

    def test_wrong_log_group_name_is_reported(self) -> None:
        properties = self.template["Resources"]["FunctionLogGroup"]["Properties"]
        properties["LogGroupName"] = {"Fn::Sub": "/cordon/${FunctionName}"}
        self.assert_reports(
            check_deploy.check_wiring(self.template, RULES),
            "log group must be named `/aws/lambda/${FunctionName}`",
        )

    def test_missing_rule_variable_is_reported(self) -> None:
        function = self.template["Resources"]["Function"]["Properties"]
        del function["Environment"]["Variables"]["QUARANTINE_SG"]
        self.assert_reports(
            check_deploy.check_wiring(self.template, RULES), "`QUARANTINE_SG` in `env`"
        )

    def test_ec2_call_in_delivery_policy(self) -> None:
        _, policies = check_deploy.role_policies(self.template)
        delivery = next(p for p in policies if p["PolicyName"] == "cordon-read-finding-queue")
        delivery["PolicyDocument"]["Statement"][0]["Action"].append("ec2:StopInstances")
        self.assert_reports(
            check_deploy.check_wiring(self.template, RULES),
            "`ec2:StopInstances` is not a delivery permission",
        )

    def test_managed_policy_is_reported(self) -> None:
        role = self.template["Resources"]["FunctionRole"]["Properties"]
        role["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AmazonEC2FullAccess"]
        self.assert_reports(
            check_deploy.check_wiring(self.template, RULES), "must have no managed policies"
        )

    def test_short_visibility_timeout_is_reported(self) -> None:
        queue = self.template["Resources"]["FindingQueue"]["Properties"]
        queue["VisibilityTimeout"] = 600
        self.assert_reports(
            check_deploy.check_wiring(self.template, RULES),
            "VisibilityTimeout 600 is less than 6 x the function Timeout 120",
        )

    def test_missing_partial_batch_responses(self) -> None:
        mapping = self.template["Resources"]["FindingQueueMapping"]["Properties"]
        del mapping["FunctionResponseTypes"]
        self.assert_reports(
            check_deploy.check_wiring(self.template, RULES), "ReportBatchItemFailures"
        )

    def test_sam_translation_keeps_settings(self) -> None:
        translated = check_deploy.translate(self.template)
        function = translated["Resources"]["Function"]
        self.assertEqual(function["Type"], "AWS::Lambda::Function")
        self.assertEqual(function["Properties"]["Runtime"], "provided.al2023")
        self.assertEqual(function["Properties"]["Architectures"], ["arm64"])
        self.assertEqual(function["Properties"]["LoggingConfig"]["LogFormat"], "JSON")
        self.assertEqual(function["Properties"]["Code"]["S3Key"], "cordon.zip")


if __name__ == "__main__":
    unittest.main()
