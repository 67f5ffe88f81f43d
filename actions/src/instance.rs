//! Reading an instance's current state, shared by the actions.

use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::types::{Instance, InstanceStateName, NetworkInterface};

use crate::context::ActionError;

/// EC2 error codes that mean the instance id names no instance.
const NOT_FOUND_CODES: &[&str] = &["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"];

/// An instance found by id, or why the action does not apply to it.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The instance exists and is not terminated.
    Found(Box<Instance>),
    /// The instance does not exist or is terminated.
    Skip(String),
}

/// Reads the instance with DescribeInstances.
///
/// # Errors
///
/// Returns the EC2 error of the call, except for the codes that mean the instance does not
/// exist, which become [`Lookup::Skip`].
pub(crate) async fn find(
    ec2: &aws_sdk_ec2::Client,
    instance_id: &str,
) -> Result<Lookup, ActionError> {
    let response = match ec2
        .describe_instances()
        .instance_ids(instance_id)
        .send()
        .await
    {
        Ok(response) => response,
        Err(error)
            if error
                .code()
                .is_some_and(|code| NOT_FOUND_CODES.contains(&code)) =>
        {
            return Ok(Lookup::Skip(format!(
                "instance `{instance_id}` does not exist"
            )));
        }
        Err(error) => return Err(ActionError::from_sdk("DescribeInstances", &error)),
    };
    let found = response
        .reservations()
        .iter()
        .flat_map(|reservation| reservation.instances())
        .find(|instance| instance.instance_id() == Some(instance_id));
    let Some(instance) = found else {
        return Ok(Lookup::Skip(format!(
            "instance `{instance_id}` does not exist"
        )));
    };
    let state = instance.state().and_then(|state| state.name());
    if state == Some(&InstanceStateName::Terminated) {
        return Ok(Lookup::Skip(format!(
            "instance `{instance_id}` is terminated"
        )));
    }
    Ok(Lookup::Found(Box::new(instance.clone())))
}

/// Returns the ids of the network interfaces attached to the instance.
pub(crate) fn interface_ids(instance: &Instance) -> Vec<String> {
    instance
        .network_interfaces()
        .iter()
        .filter_map(|interface| interface.network_interface_id())
        .map(str::to_owned)
        .collect()
}

/// An EBS volume attached to an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttachedVolume {
    /// The volume id.
    pub(crate) id: String,
    /// The device name, e.g. `/dev/xvda`.
    pub(crate) device: String,
    /// True for the volume on the instance's root device.
    pub(crate) root: bool,
}

/// Returns the EBS volumes attached to the instance, in block device order.
pub(crate) fn volumes(instance: &Instance) -> Vec<AttachedVolume> {
    let root_device = instance.root_device_name();
    instance
        .block_device_mappings()
        .iter()
        .filter_map(|mapping| {
            let id = mapping.ebs()?.volume_id()?;
            let device = mapping.device_name().unwrap_or_default();
            Some(AttachedVolume {
                id: id.to_owned(),
                device: device.to_owned(),
                root: root_device == Some(device),
            })
        })
        .collect()
}

/// Reads network interfaces by id with DescribeNetworkInterfaces, which, unlike
/// DescribeInstances, returns their tags and whether another service manages them.
///
/// # Errors
///
/// Returns the EC2 error of the call.
pub(crate) async fn describe_interfaces(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> Result<Vec<NetworkInterface>, ActionError> {
    let response = ec2
        .describe_network_interfaces()
        .set_network_interface_ids(Some(ids.to_vec()))
        .send()
        .await
        .map_err(|error| ActionError::from_sdk("DescribeNetworkInterfaces", &error))?;
    Ok(response.network_interfaces().to_vec())
}

/// Returns the group ids of a network interface, in the order EC2 lists them.
pub(crate) fn group_ids(interface: &NetworkInterface) -> Vec<String> {
    interface
        .groups()
        .iter()
        .filter_map(|group| group.group_id())
        .map(str::to_owned)
        .collect()
}

/// Returns the tags of a network interface as key and value pairs.
pub(crate) fn tag_pairs(interface: &NetworkInterface) -> Vec<(&str, &str)> {
    interface
        .tag_set()
        .iter()
        .filter_map(|tag| Some((tag.key()?, tag.value().unwrap_or_default())))
        .collect()
}
