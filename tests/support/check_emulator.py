"""Check that the emulator behaves like EC2 in the ways cordon's containment depends on.

The first group of checks covers the corrections in moto_faithful.py and fails
against unpatched moto. The second group covers the other EC2 calls the project
uses. Each check creates its own VPC, so the checks can run repeatedly against one
server without a reset.

Usage: .venv/bin/python tests/support/check_emulator.py ENDPOINT
ENDPOINT must be a loopback URL such as http://127.0.0.1:5000. The exit status is 0
when every check passes and 1 otherwise.
"""
import ipaddress
import itertools
import os
import sys
import traceback
import uuid
from urllib.parse import urlparse

# Set before importing boto3 so that no code path can reach the instance
# metadata service or read a named profile.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.pop("AWS_PROFILE", None)

import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

REGION = "eu-west-1"
ZONE = "eu-west-1b"
_vpc_counter = itertools.count(1)


def require_loopback(endpoint):
    """Exit unless ENDPOINT is an http(s) URL on a loopback address."""
    parsed = urlparse(endpoint)
    host = parsed.hostname or ""
    if parsed.scheme not in ("http", "https") or not host:
        sys.exit(f"invalid endpoint {endpoint!r}: expected a URL such as http://127.0.0.1:5000")
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        sys.exit(f"invalid endpoint {endpoint!r}: only loopback addresses are allowed")


def make_client(endpoint):
    return boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def error_code(call, **kwargs):
    """Call CALL and return the EC2 error code, or None when the call succeeds."""
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


def eni_group_ids(ec2, eni_id):
    response = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])
    return sorted(group["GroupId"] for group in response["NetworkInterfaces"][0]["Groups"])


def instance_group_ids(ec2, instance_id):
    response = ec2.describe_instances(InstanceIds=[instance_id])
    instance = response["Reservations"][0]["Instances"][0]
    return sorted(group["GroupId"] for group in instance["SecurityGroups"])


def create_group(ec2, vpc_id, name):
    return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"]


def create_network(ec2):
    """Create a VPC with one subnet and return (vpc_id, subnet_id)."""
    second_octet = 100 + next(_vpc_counter)
    vpc_id = ec2.create_vpc(CidrBlock=f"10.{second_octet}.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(
        VpcId=vpc_id, CidrBlock=f"10.{second_octet}.1.0/24", AvailabilityZone=ZONE
    )["Subnet"]["SubnetId"]
    return vpc_id, subnet_id


def run_instance(ec2, subnet_id, group_ids):
    """Start one instance with a single ENI and return (instance_id, primary_eni_id)."""
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image_id,
        InstanceType="t3.medium",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        SecurityGroupIds=group_ids,
    )["Instances"][0]
    return instance["InstanceId"], instance["NetworkInterfaces"][0]["NetworkInterfaceId"]


class TwoEniInstance:
    """An instance in group "app" with a second ENI in group "db", in one VPC."""

    def __init__(self, ec2):
        self.vpc_id, self.subnet_id = create_network(ec2)
        self.app_group = create_group(ec2, self.vpc_id, "app")
        self.db_group = create_group(ec2, self.vpc_id, "db")
        self.instance_id, self.primary_eni = run_instance(ec2, self.subnet_id, [self.app_group])
        self.second_eni = ec2.create_network_interface(
            SubnetId=self.subnet_id, Groups=[self.db_group]
        )["NetworkInterface"]["NetworkInterfaceId"]
        ec2.attach_network_interface(
            NetworkInterfaceId=self.second_eni, InstanceId=self.instance_id, DeviceIndex=1
        )


# Corrections made by moto_faithful.py.


def check_eni_groups_per_eni(ec2):
    setup = TwoEniInstance(ec2)
    assert eni_group_ids(ec2, setup.primary_eni) == [setup.app_group], (
        f"primary ENI groups: expected [{setup.app_group}], got {eni_group_ids(ec2, setup.primary_eni)}")
    assert eni_group_ids(ec2, setup.second_eni) == [setup.db_group], (
        f"second ENI groups: expected [{setup.db_group}], got {eni_group_ids(ec2, setup.second_eni)}")


def check_modify_instance_groups_rejects_two_enis(ec2):
    setup = TwoEniInstance(ec2)
    code = error_code(
        ec2.modify_instance_attribute, InstanceId=setup.instance_id, Groups=[setup.db_group])
    assert code == "InvalidInstanceID", f"expected error InvalidInstanceID, got {code}"
    assert eni_group_ids(ec2, setup.primary_eni) == [setup.app_group], (
        "primary ENI groups changed by a rejected ModifyInstanceAttribute")


def check_modify_instance_groups_sets_primary_eni(ec2):
    vpc_id, subnet_id = create_network(ec2)
    app_group = create_group(ec2, vpc_id, "app")
    quarantine_group = create_group(ec2, vpc_id, "quarantine")
    instance_id, eni_id = run_instance(ec2, subnet_id, [app_group])
    ec2.modify_instance_attribute(InstanceId=instance_id, Groups=[quarantine_group])
    assert eni_group_ids(ec2, eni_id) == [quarantine_group], (
        f"primary ENI groups: expected [{quarantine_group}], got {eni_group_ids(ec2, eni_id)}")
    assert instance_group_ids(ec2, instance_id) == [quarantine_group], (
        f"instance groups: expected [{quarantine_group}], got {instance_group_ids(ec2, instance_id)}")


def check_modify_eni_rejects_other_vpc_group(ec2):
    setup = TwoEniInstance(ec2)
    other_vpc_id, _ = create_network(ec2)
    other_group = create_group(ec2, other_vpc_id, "other-vpc")
    code = error_code(
        ec2.modify_network_interface_attribute,
        NetworkInterfaceId=setup.second_eni,
        Groups=[other_group],
    )
    assert code == "InvalidParameter", f"expected error InvalidParameter, got {code}"
    assert eni_group_ids(ec2, setup.second_eni) == [setup.db_group], (
        "second ENI groups changed by a rejected ModifyNetworkInterfaceAttribute")


def check_modify_eni_rejects_unknown_group(ec2):
    setup = TwoEniInstance(ec2)
    code = error_code(
        ec2.modify_network_interface_attribute,
        NetworkInterfaceId=setup.second_eni,
        Groups=["sg-0123456789abcdef0"],
    )
    assert code == "InvalidGroup.NotFound", f"expected error InvalidGroup.NotFound, got {code}"


def check_modify_eni_changes_only_that_eni(ec2):
    setup = TwoEniInstance(ec2)
    quarantine_group = create_group(ec2, setup.vpc_id, "quarantine")
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=setup.second_eni, Groups=[quarantine_group])
    assert eni_group_ids(ec2, setup.second_eni) == [quarantine_group], (
        f"second ENI groups: expected [{quarantine_group}], got {eni_group_ids(ec2, setup.second_eni)}")
    assert eni_group_ids(ec2, setup.primary_eni) == [setup.app_group], (
        f"primary ENI groups: expected [{setup.app_group}], got {eni_group_ids(ec2, setup.primary_eni)}")

    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=setup.primary_eni, Groups=[quarantine_group])
    assert eni_group_ids(ec2, setup.primary_eni) == [quarantine_group], (
        f"primary ENI groups: expected [{quarantine_group}], got {eni_group_ids(ec2, setup.primary_eni)}")
    assert quarantine_group in instance_group_ids(ec2, setup.instance_id), (
        "DescribeInstances does not show the primary ENI's new group")


# Other EC2 calls the project relies on.


def check_create_snapshots_with_tags(ec2):
    _, subnet_id = create_network(ec2)
    instance_id, _ = run_instance(ec2, subnet_id, [])
    # A fresh id, so snapshots from earlier runs against the same server do not match.
    finding_id = uuid.uuid4().hex
    snapshots = ec2.create_snapshots(
        InstanceSpecification={"InstanceId": instance_id},
        Description=f"cordon evidence for {instance_id}",
        TagSpecifications=[{
            "ResourceType": "snapshot",
            "Tags": [{"Key": "cordon:finding-id", "Value": finding_id}],
        }],
    )["Snapshots"]
    assert len(snapshots) >= 1, "CreateSnapshots returned no snapshots for the root volume"
    for snapshot in snapshots:
        tags = {tag["Key"]: tag["Value"] for tag in snapshot.get("Tags", [])}
        assert tags.get("cordon:finding-id") == finding_id, (
            f"snapshot {snapshot['SnapshotId']} tags: {tags}")

    found = ec2.describe_snapshots(
        OwnerIds=["self"],
        Filters=[{"Name": "tag:cordon:finding-id", "Values": [finding_id]}],
    )["Snapshots"]
    found_ids = sorted(snapshot["SnapshotId"] for snapshot in found)
    created_ids = sorted(snapshot["SnapshotId"] for snapshot in snapshots)
    assert found_ids == created_ids, (
        f"DescribeSnapshots tag filter: expected {created_ids}, got {found_ids}")

    unmatched = ec2.describe_snapshots(
        OwnerIds=["self"],
        Filters=[{"Name": "tag:cordon:finding-id", "Values": ["no-such-finding"]}],
    )["Snapshots"]
    assert unmatched == [], f"DescribeSnapshots tag filter matched {len(unmatched)} unrelated snapshots"


def check_create_tags_on_eni(ec2):
    _, subnet_id = create_network(ec2)
    _, eni_id = run_instance(ec2, subnet_id, [])
    ec2.create_tags(Resources=[eni_id], Tags=[{"Key": "cordon:previous-groups", "Value": "sg-1"}])
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    tags = {tag["Key"]: tag["Value"] for tag in eni.get("TagSet", [])}
    assert tags.get("cordon:previous-groups") == "sg-1", f"ENI tags: {tags}"


def check_describe_security_group_rules(ec2):
    vpc_id, _ = create_network(ec2)
    group_id = create_group(ec2, vpc_id, "new")
    rules = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    assert len(rules) == 1, f"a new group should have one rule (allow-all egress), got {rules}"
    rule = rules[0]
    assert rule["IsEgress"] is True, f"rule is not egress: {rule}"
    assert rule["IpProtocol"] == "-1", f"rule protocol: {rule}"
    assert rule.get("CidrIpv4") == "0.0.0.0/0", f"rule CIDR: {rule}"


def check_revoke_egress_by_permission(ec2):
    vpc_id, _ = create_network(ec2)
    group_id = create_group(ec2, vpc_id, "isolation")
    ec2.revoke_security_group_egress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert group["IpPermissionsEgress"] == [], f"egress rules left: {group['IpPermissionsEgress']}"


def check_revoke_egress_by_rule_id(ec2):
    vpc_id, _ = create_network(ec2)
    group_id = create_group(ec2, vpc_id, "isolation")
    rules = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    ec2.revoke_security_group_egress(
        GroupId=group_id, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"] for rule in rules])
    left = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    assert left == [], f"rules left: {left}"


def check_create_security_group_with_tags(ec2):
    vpc_id, _ = create_network(ec2)
    group_id = ec2.create_security_group(
        GroupName="cordon-isolation",
        Description="cordon isolation",
        VpcId=vpc_id,
        TagSpecifications=[{
            "ResourceType": "security-group",
            "Tags": [{"Key": "cordon:role", "Value": "isolation"}],
        }],
    )["GroupId"]
    found = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]},
        {"Name": "tag:cordon:role", "Values": ["isolation"]},
    ])["SecurityGroups"]
    assert [group["GroupId"] for group in found] == [group_id], f"groups found by tag: {found}"


def check_account_id(ec2):
    vpc_id, _ = create_network(ec2)
    group_id = create_group(ec2, vpc_id, "owner")
    owner = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["OwnerId"]
    # emulator.sh starts the server with MOTO_ACCOUNT_ID set to the fixtures' account.
    assert owner == "111122223333", (
        f"resources are owned by account {owner}, expected 111122223333; "
        "start the server with tests/support/emulator.sh")


CHECKS = [
    check_eni_groups_per_eni,
    check_modify_instance_groups_rejects_two_enis,
    check_modify_instance_groups_sets_primary_eni,
    check_modify_eni_rejects_other_vpc_group,
    check_modify_eni_rejects_unknown_group,
    check_modify_eni_changes_only_that_eni,
    check_create_snapshots_with_tags,
    check_create_tags_on_eni,
    check_describe_security_group_rules,
    check_revoke_egress_by_permission,
    check_revoke_egress_by_rule_id,
    check_create_security_group_with_tags,
    check_account_id,
]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_emulator.py ENDPOINT (for example http://127.0.0.1:5000)")
    endpoint = sys.argv[1]
    require_loopback(endpoint)
    ec2 = make_client(endpoint)

    failures = 0
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        try:
            check(ec2)
        except AssertionError as error:
            failures += 1
            print(f"FAIL {name}: {error}")
        except Exception:
            failures += 1
            print(f"FAIL {name}: unexpected exception")
            traceback.print_exc(file=sys.stdout)
        else:
            print(f"ok   {name}")

    print(f"{len(CHECKS) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
