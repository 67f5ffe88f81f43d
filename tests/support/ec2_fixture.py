"""Create EC2 resources in the emulator, write findings about them, and show their state.

Used by scripts/demo.sh and the Lambda end-to-end tests. Every command talks only to the
loopback endpoint in AWS_ENDPOINT_URL, with dummy credentials.

Commands:
  setup [--enis N] [--volumes N] [--quarantine-egress]
      Create a VPC and subnet, two application groups, a quarantine group and a running
      instance with N network interfaces (default 3) and N extra volumes (default 1), and
      print their ids as JSON. The quarantine group allows SSH only from the forensics
      address 198.51.100.10/32 and has no egress rule, unless --quarantine-egress keeps
      the allow-all egress rule that EC2 gives every new group.
  event FIXTURE SETUP_JSON [--finding-id ID] [--bare]
      Print FIXTURE (an EventBridge event from tests/fixtures) rewritten for the instance in
      SETUP_JSON: instance id, network interfaces with their subnet, VPC and groups, account
      111122223333, the emulator's region and, for a finding, a new finding id (or ID).
      --bare prints the finding without the envelope.
  sqs SETUP_JSON BODY_FILE...
      Print an SQS event whose records carry the given files as bodies, in order.
  describe SETUP_JSON [--text]
      Print the instance's groups per network interface, its tags and the snapshots of its
      volumes, as JSON or, with --text, as aligned lines.

Usage: .venv/bin/python tests/support/ec2_fixture.py COMMAND ...
"""

import argparse
import copy
import ipaddress
import json
import os
import sys
import uuid
from urllib.parse import urlparse

# Set before importing boto3 so that no code path can reach the instance metadata service
# or read a named profile.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.pop("AWS_PROFILE", None)

import boto3  # noqa: E402

ACCOUNT_ID = "111122223333"
FORENSICS_CIDR = "198.51.100.10/32"


def region():
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1"


def endpoint():
    """Return AWS_ENDPOINT_URL, or exit unless it is an http URL on a loopback address."""
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    host = urlparse(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not url.startswith("http://") or not loopback:
        sys.exit(
            f"ec2_fixture.py: error: AWS_ENDPOINT_URL must be an http URL on a loopback "
            f"address (start the emulator with tests/support/emulator.sh), found {url!r}"
        )
    return url


def client():
    return boto3.client(
        "ec2",
        endpoint_url=endpoint(),
        region_name=region(),
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_group(ec2, vpc_id, name, description):
    return ec2.create_security_group(GroupName=name, Description=description, VpcId=vpc_id)["GroupId"]


def create_quarantine_group(ec2, vpc_id, suffix, keep_egress):
    group_id = create_group(ec2, vpc_id, f"cordon-quarantine-{suffix}", "cordon quarantine: forensics SSH only")
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "IpRanges": [{"CidrIp": FORENSICS_CIDR, "Description": "forensics workstation"}],
        }],
    )
    if not keep_egress:
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
        egress_ids = [rule["SecurityGroupRuleId"] for rule in rules["SecurityGroupRules"] if rule["IsEgress"]]
        if egress_ids:
            ec2.revoke_security_group_egress(GroupId=group_id, SecurityGroupRuleIds=egress_ids)
    return group_id


def command_setup(arguments):
    ec2 = client()
    suffix = uuid.uuid4().hex[:8]
    # The VPC takes a /16 with a random second octet. VPCs may overlap, as EC2 allows.
    octet = 16 + int(suffix[:2], 16) % 200
    vpc_id = ec2.create_vpc(CidrBlock=f"10.{octet}.0.0/16")["Vpc"]["VpcId"]
    zone = f"{region()}b"
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.{octet}.1.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
    web_group = create_group(ec2, vpc_id, f"web-{suffix}", "web servers")
    admin_group = create_group(ec2, vpc_id, f"admin-{suffix}", "administration")
    quarantine_group = create_quarantine_group(ec2, vpc_id, suffix, arguments.quarantine_egress)

    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(
        ImageId=image_id,
        InstanceType="t3.medium",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        SecurityGroupIds=[web_group],
        TagSpecifications=[{
            "ResourceType": "instance",
            "Tags": [{"Key": "Name", "Value": f"build-agent-{suffix}"}, {"Key": "Environment", "Value": "production"}],
        }],
    )["Instances"][0]
    instance_id = instance["InstanceId"]
    enis = [instance["NetworkInterfaces"][0]["NetworkInterfaceId"]]
    for index in range(1, arguments.enis):
        groups = [admin_group] if index % 2 else [web_group, admin_group]
        eni_id = ec2.create_network_interface(SubnetId=subnet_id, Groups=groups)["NetworkInterface"]["NetworkInterfaceId"]
        ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=index)
        enis.append(eni_id)

    volumes = []
    for index in range(arguments.volumes):
        volume_id = ec2.create_volume(AvailabilityZone=zone, Size=8)["VolumeId"]
        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=f"/dev/sd{chr(ord('f') + index)}")
        volumes.append(volume_id)

    print(json.dumps({
        "region": region(),
        "vpc_id": vpc_id,
        "subnet_id": subnet_id,
        "instance_id": instance_id,
        "network_interfaces": enis,
        "volumes": volumes,
        "quarantine_group": quarantine_group,
        "application_groups": [web_group, admin_group],
    }, indent=2))


def load_json(path):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def describe_interfaces(ec2, instance_id):
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instance = reservations[0]["Instances"][0]
    interfaces = sorted(instance["NetworkInterfaces"], key=lambda eni: eni["Attachment"]["DeviceIndex"])
    return instance, interfaces


def command_event(arguments):
    setup = load_json(arguments.setup)
    event = load_json(arguments.fixture)
    detail = event["detail"]
    instance_id = setup["instance_id"]
    old_instance_id = None

    instance_details = detail.get("resource", {}).get("instanceDetails")
    if instance_details:
        old_instance_id = instance_details.get("instanceId")
        _, interfaces = describe_interfaces(client(), instance_id)
        instance_details["instanceId"] = instance_id
        instance_details["availabilityZone"] = f"{setup['region']}b"
        instance_details["networkInterfaces"] = rewrite_interfaces(instance_details, interfaces)
    status_details = detail.get("resourceDetails", {}).get("ec2InstanceDetails")
    if status_details:
        status_details["instanceId"] = instance_id

    if event.get("detail-type") == "GuardDuty Finding":
        finding_id = arguments.finding_id or uuid.uuid4().hex
        detail["id"] = finding_id
        detail["accountId"] = ACCOUNT_ID
        detail["region"] = setup["region"]
        detector = detail.get("service", {}).get("detectorId", "detector")
        detail["arn"] = f"arn:aws:guardduty:{setup['region']}:{ACCOUNT_ID}:detector/{detector}/finding/{finding_id}"
        for key in ("title", "description"):
            if old_instance_id and key in detail:
                detail[key] = detail[key].replace(old_instance_id, instance_id)
    event["id"] = str(uuid.uuid4())
    event["account"] = ACCOUNT_ID
    event["region"] = setup["region"]
    print(json.dumps(detail if arguments.bare else event, indent=2))


def rewrite_interfaces(instance_details, interfaces):
    """Return the finding's interface list for INTERFACES, shaped like the fixture's first entry."""
    templates = instance_details.get("networkInterfaces") or [{}]
    rewritten = []
    for eni in interfaces:
        entry = copy.deepcopy(templates[0])
        entry.update({
            "networkInterfaceId": eni["NetworkInterfaceId"],
            "subnetId": eni["SubnetId"],
            "vpcId": eni["VpcId"],
            "privateIpAddress": eni["PrivateIpAddress"],
            "privateIpAddresses": [{"privateIpAddress": eni["PrivateIpAddress"], "privateDnsName": ""}],
            "securityGroups": [{"groupId": group["GroupId"], "groupName": group["GroupName"]} for group in eni["Groups"]],
        })
        rewritten.append(entry)
    return rewritten


def command_sqs(arguments):
    setup = load_json(arguments.setup)
    records = []
    for path in arguments.bodies:
        with open(path, encoding="utf-8") as file:
            body = file.read()
        records.append({
            "messageId": str(uuid.uuid4()),
            "receiptHandle": uuid.uuid4().hex,
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{setup['region']}:{ACCOUNT_ID}:cordon-findings",
            "awsRegion": setup["region"],
        })
    print(json.dumps({"Records": records}, indent=2))


def state(ec2, setup):
    instance, interfaces = describe_interfaces(ec2, setup["instance_id"])
    volume_ids = [mapping["Ebs"]["VolumeId"] for mapping in instance.get("BlockDeviceMappings", [])]
    snapshots = []
    if volume_ids:
        found = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": volume_ids}])
        for snapshot in sorted(found["Snapshots"], key=lambda item: item["SnapshotId"]):
            snapshots.append({
                "snapshot_id": snapshot["SnapshotId"],
                "volume_id": snapshot["VolumeId"],
                "description": snapshot.get("Description", ""),
                "tags": {tag["Key"]: tag["Value"] for tag in snapshot.get("Tags", [])},
            })
    return {
        "instance_id": setup["instance_id"],
        "network_interfaces": [
            {
                "id": eni["NetworkInterfaceId"],
                "device_index": eni["Attachment"]["DeviceIndex"],
                "groups": sorted(group["GroupId"] for group in eni["Groups"]),
            }
            for eni in interfaces
        ],
        "tags": {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])},
        "volumes": volume_ids,
        "snapshots": snapshots,
        "quarantine_rules": quarantine_rules(ec2, setup["quarantine_group"]),
    }


def permission_text(permission):
    """Describe one ingress or egress permission: protocol, ports and sources."""
    protocol = permission.get("IpProtocol", "-1")
    if protocol == "-1":
        ports = "all traffic"
    else:
        low, high = permission.get("FromPort"), permission.get("ToPort")
        ports = f"{protocol} {low}" if low == high else f"{protocol} {low}-{high}"
    peers = [item["CidrIp"] for item in permission.get("IpRanges", [])]
    peers += [item["CidrIpv6"] for item in permission.get("Ipv6Ranges", [])]
    peers += [item["GroupId"] for item in permission.get("UserIdGroupPairs", [])]
    peers += [item["PrefixListId"] for item in permission.get("PrefixListIds", [])]
    return f"{ports} {', '.join(peers) or 'nowhere'}"


def quarantine_rules(ec2, group_id):
    """The quarantine group's rules as the emulator reports them."""
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    ingress = [permission_text(item) for item in group.get("IpPermissions", [])]
    egress = [permission_text(item) for item in group.get("IpPermissionsEgress", [])]
    return {"ingress": ingress, "egress": egress}


def print_text(current, setup):
    rules = current["quarantine_rules"]
    print(f"quarantine group {setup['quarantine_group']} (read back from the emulator):")
    print(f"  ingress: {'; '.join('from ' + rule for rule in rules['ingress']) or 'none'}")
    print(f"  egress: {'; '.join('to ' + rule for rule in rules['egress']) or 'none'}")
    names = {setup["quarantine_group"]: "quarantine"}
    names.update({group: "application" for group in setup["application_groups"]})
    print(f"instance {current['instance_id']}")
    print("  network interfaces:")
    for eni in current["network_interfaces"]:
        groups = ", ".join(f"{group} ({names.get(group, 'other')})" for group in eni["groups"])
        print(f"    {eni['id']} (device {eni['device_index']}): {groups}")
    print("  tags:")
    for key, value in sorted(current["tags"].items()):
        print(f"    {key} = {value}")
    print(f"  snapshots of volumes {', '.join(current['volumes'])}:")
    if not current["snapshots"]:
        print("    none")
    for snapshot in current["snapshots"]:
        tags = ", ".join(f"{key}={value}" for key, value in sorted(snapshot["tags"].items()))
        print(f"    {snapshot['snapshot_id']} of {snapshot['volume_id']}: {snapshot['description']!r} [{tags}]")


def command_describe(arguments):
    setup = load_json(arguments.setup)
    current = state(client(), setup)
    if arguments.text:
        print_text(current, setup)
    else:
        print(json.dumps(current, indent=2))


def main(argv):
    parser = argparse.ArgumentParser(prog="ec2_fixture.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("setup", help="create a VPC, groups and an instance")
    setup.add_argument("--enis", type=int, default=3, help="network interfaces (default 3)")
    setup.add_argument("--volumes", type=int, default=1, help="volumes besides the root volume (default 1)")
    setup.add_argument("--quarantine-egress", action="store_true", help="keep the allow-all egress rule")
    setup.set_defaults(run=command_setup)
    event = commands.add_parser("event", help="rewrite a fixture for the instance")
    event.add_argument("fixture")
    event.add_argument("setup")
    event.add_argument("--finding-id", help="the finding id (default: a random one)")
    event.add_argument("--bare", action="store_true", help="print the finding without the envelope")
    event.set_defaults(run=command_event)
    sqs = commands.add_parser("sqs", help="wrap event files in an SQS event")
    sqs.add_argument("setup")
    sqs.add_argument("bodies", nargs="+")
    sqs.set_defaults(run=command_sqs)
    describe = commands.add_parser("describe", help="show the instance's groups, tags and snapshots")
    describe.add_argument("setup")
    describe.add_argument("--text", action="store_true", help="print lines instead of JSON")
    describe.set_defaults(run=command_describe)
    arguments = parser.parse_args(argv)
    if getattr(arguments, "enis", 1) < 1:
        parser.error("--enis must be at least 1")
    arguments.run(arguments)


if __name__ == "__main__":
    main(sys.argv[1:])
