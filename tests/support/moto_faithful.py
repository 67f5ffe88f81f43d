"""Run moto's server with three EC2 security group behaviours made to match real EC2.

Checked against moto 5.2.5, the version that tests/support/emulator.sh installs.
Unpatched moto differs from EC2 in these ways:

1. DescribeNetworkInterfaces reports an attached ENI's groups as the union of the
   ENI's own groups and the instance's groups. EC2 keeps groups per ENI, so the
   patched server reports only the ENI's own groups.
2. ModifyInstanceAttribute with Groups changes only the instance record and leaves
   every ENI as it was. EC2 applies the groups to the primary ENI and rejects the
   call when the instance has more than one ENI. The patched server does both.
3. ModifyNetworkInterfaceAttribute accepts a security group from another VPC and
   an unknown group id. EC2 rejects both, and so does the patched server, with
   InvalidParameter and InvalidGroup.NotFound. ModifyInstanceAttribute with Groups
   gets the same checks.

When the primary ENI's groups change, the patched server also copies them to the
instance record, so DescribeInstances shows the new groups.

Usage: python moto_faithful.py PORT
The server listens on 127.0.0.1 only.
"""
import sys

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import elastic_network_interfaces as enis
from moto.ec2.models import instances


def own_groups(self):
    # An ENI created without groups falls back to the instance's groups, as moto does.
    if self._group_set:
        return self._group_set
    if self.instance:
        return list(self.instance.security_groups)
    return []


enis.NetworkInterface.group_set = property(own_groups)


def check_groups_for_subnet(backend, group_ids, subnet):
    """Raise the EC2 error for a group id that does not exist or is in another VPC."""
    for group_id in group_ids or []:
        group = backend.get_security_group_from_id(group_id)
        if group is None:
            raise EC2ClientError(
                "InvalidGroup.NotFound",
                f"The security group '{group_id}' does not exist")
        if group.vpc_id != subnet.vpc_id:
            raise EC2ClientError(
                "InvalidParameter",
                f"Security group {group_id} and subnet {subnet.id} belong to different networks.")


original_modify_instance = instances.InstanceBackend.modify_instance_security_groups


def modify_instance_security_groups(self, instance_id, new_group_id_list):
    instance = self.get_instance(instance_id)
    attached = list(instance.nics.values())
    if len(attached) > 1:
        raise EC2ClientError(
            "InvalidInstanceID",
            f"There are multiple interfaces attached to instance '{instance_id}'. "
            "Please specify an interface ID for the operation instead.")
    for nic in attached:
        check_groups_for_subnet(self, new_group_id_list, nic.subnet)
    instance = original_modify_instance(self, instance_id, new_group_id_list)
    for nic in attached:
        nic._group_set = list(instance.security_groups)
    return instance


instances.InstanceBackend.modify_instance_security_groups = modify_instance_security_groups
original_modify_eni = enis.NetworkInterfaceBackend.modify_network_interface_attribute


def modify_network_interface_attribute(self, eni_id, group_ids, *args, **kwargs):
    eni = self.get_network_interface(eni_id)
    check_groups_for_subnet(self, group_ids, eni.subnet)
    result = original_modify_eni(self, eni_id, group_ids, *args, **kwargs)
    if group_ids and eni.instance is not None and eni.device_index == 0:
        eni.instance.security_groups = list(eni._group_set)
    return result


enis.NetworkInterfaceBackend.modify_network_interface_attribute = modify_network_interface_attribute

if __name__ == "__main__":
    from moto.server import main

    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python moto_faithful.py PORT")
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
