//! EC2 response actions for cordon and the executor that runs a plan of them.
//!
//! The engine (`cordon-engine`) turns a GuardDuty finding into a [`Plan`]: which rules matched
//! and which actions they name, with every parameter rendered. This crate knows the actions:
//! [`catalog`] gives the engine their names, parameter checks and IAM permissions, and
//! [`execute`] runs a plan against EC2 and returns one [`Outcome`] per planned action.
//!
//! Actions:
//!
//! | name | what it does |
//! | --- | --- |
//! | `isolate` | moves every network interface of the instance into quarantine security groups |
//! | `release` | restores the security groups that `isolate` recorded |
//! | `tag` | tags the instance, and optionally its volumes and network interfaces |
//! | `snapshot` | snapshots the instance's EBS volumes, once per finding and volume |
//!
//! [`Plan`]: cordon_engine::Plan

mod clients;
mod context;
mod execute;
mod instance;
mod isolate;
mod log_format;
mod outcome;
mod params;
mod policy;
mod record;
mod registry;
mod release;
mod snapshot;
mod tag;

pub use clients::{ClientError, ClientSettings, Ec2Clients};
pub use context::{ActionError, Containment, Context};
pub use execute::{ExecOptions, Execution, execute};
pub use log_format::text_fields;
pub use outcome::{ApiCall, Outcome, Resource, ResourceKind, Status};
pub use registry::{Action, Phase, catalog};
pub use release::{check_status_tag, release_instance};

/// Returns true for an EC2 instance id: `i-` and 8 or 17 lowercase hexadecimal digits.
pub fn is_instance_id(text: &str) -> bool {
    params::is_ec2_id(text, "i-")
}

#[cfg(test)]
mod tests {
    #[test]
    fn instance_ids() {
        assert!(super::is_instance_id("i-0123456789abcdef0"));
        assert!(super::is_instance_id("i-01234567"));
        assert!(!super::is_instance_id("i-0123"));
        assert!(!super::is_instance_id("vol-01234567"));
        assert!(!super::is_instance_id("i-0123456789ABCDEF0"));
    }
}
