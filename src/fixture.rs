//! `cordon fixture`: print a synthetic GuardDuty finding for an EC2 instance.

use std::io::Write;

use clap::{Args, ValueEnum};
use cordon_engine::fixture::{self, FixtureError, FixtureOptions, ResourceRole};

use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

#[derive(Clone, Copy, ValueEnum)]
pub enum Role {
    #[value(name = "ACTOR")]
    Actor,
    #[value(name = "TARGET")]
    Target,
}

#[derive(Args)]
pub struct FixtureArgs {
    /// The finding type, e.g. `UnauthorizedAccess:EC2/TorClient` (quote it in the shell).
    #[arg(value_name = "TYPE", required_unless_present = "list")]
    finding_type: Option<String>,
    /// List the supported finding types with their action type, default severity and role.
    #[arg(long, conflicts_with = "finding_type")]
    list: bool,
    /// EC2 instance id [default: i-0c9d8e7f6a5b43210, or i-99999999 with --sample].
    #[arg(long, value_name = "ID")]
    instance: Option<String>,
    /// Region of the finding and the instance [default: eu-west-1].
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// 12-digit account id that owns the instance [default: 111122223333].
    #[arg(long, value_name = "ACCOUNT")]
    account: Option<String>,
    /// Severity from 1.0 to 10.0 [default: the type's default severity for the role].
    #[arg(long, value_name = "N")]
    severity: Option<f64>,
    /// Resource role of the instance [default: the type's default role].
    #[arg(long, value_enum, ignore_case = true)]
    role: Option<Role>,
    /// Number of network interfaces (ENIs) of the instance, 0 to 15.
    #[arg(long, value_name = "N", default_value_t = 1)]
    enis: usize,
    /// VPC id of every ENI [default: derived from the account and region].
    #[arg(long, value_name = "ID")]
    vpc: Option<String>,
    /// Subnet id of every ENI [default: derived from the VPC].
    #[arg(long, value_name = "ID")]
    subnet: Option<String>,
    /// Security group id of every ENI, repeatable [default: derived from the VPC].
    #[arg(long = "security-group", value_name = "ID")]
    security_groups: Vec<String>,
    /// Generate a sample finding (`additionalInfo.sample: true`, placeholder ids).
    #[arg(long)]
    sample: bool,
    /// Print the finding without the EventBridge envelope.
    #[arg(long)]
    bare: bool,
    /// Finding id, 32 lowercase hex digits [default: derived from the type and instance id].
    #[arg(long = "id", value_name = "HEX")]
    finding_id: Option<String>,
}

/// Prints the finding as pretty JSON, or the type list with `--list`. Exit 0 on success, 2 for
/// an unknown type or an invalid option, 1 when standard output cannot be written.
pub fn run(args: &FixtureArgs) -> u8 {
    let text = match &args.finding_type {
        Some(finding_type) if !args.list => {
            let value = match fixture::generate(finding_type, &options(args)) {
                Ok(value) => value,
                Err(error) => {
                    report(&error);
                    return EXIT_USAGE;
                }
            };
            match serde_json::to_string_pretty(&value) {
                Ok(text) => text,
                Err(error) => {
                    eprintln!("error: cannot encode the finding: {error}");
                    return EXIT_FAILURE;
                }
            }
        }
        _ => type_list(),
    };
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}") {
        Ok(()) => EXIT_OK,
        Err(error) => {
            eprintln!("error: cannot write to standard output: {error}");
            EXIT_FAILURE
        }
    }
}

fn options(args: &FixtureArgs) -> FixtureOptions {
    FixtureOptions {
        instance_id: args.instance.clone(),
        region: args.region.clone(),
        account: args.account.clone(),
        severity: args.severity,
        role: args.role.map(|role| match role {
            Role::Actor => ResourceRole::Actor,
            Role::Target => ResourceRole::Target,
        }),
        network_interfaces: args.enis,
        vpc_id: args.vpc.clone(),
        subnet_id: args.subnet.clone(),
        security_groups: args.security_groups.clone(),
        sample: args.sample,
        bare: args.bare,
        finding_id: args.finding_id.clone(),
    }
}

fn report(error: &FixtureError) {
    eprintln!("error: {error}");
    if let FixtureError::UnknownType { suggestions, .. } = error {
        let mut quoted: Vec<String> = suggestions.iter().map(|name| format!("`{name}`")).collect();
        if let Some(last) = quoted.pop() {
            if quoted.is_empty() {
                eprintln!("help: did you mean {last}?");
            } else {
                eprintln!("help: did you mean {} or {last}?", quoted.join(", "));
            }
        }
        eprintln!("help: `cordon fixture --list` prints every supported type");
    }
}

/// Formats one aligned line per type: the type, action type (`-` for none), severity and role.
fn type_list() -> String {
    let types: Vec<_> = fixture::supported_types().collect();
    let width = types
        .iter()
        .map(|info| info.finding_type.len())
        .max()
        .unwrap_or(0);
    types
        .iter()
        .map(|info| {
            format!(
                "{:width$}  {:18}  {:>4}  {}",
                info.finding_type,
                info.action_type.unwrap_or("-"),
                info.severity,
                info.role
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
