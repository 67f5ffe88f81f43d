//! Synthetic GuardDuty findings for EC2 instances, for tests, demos and `cordon fixture`.
//!
//! [`generate`] builds an EventBridge event, or with [`FixtureOptions::bare`] the bare finding,
//! for any current EC2 finding type. Each type gets the `service.action` GuardDuty reports for
//! it (NETWORK_CONNECTION, DNS_REQUEST, PORT_PROBE, or a Malware Protection scan result) and
//! a realistic default severity and resource role.
//!
//! The output is deterministic. Timestamps are fixed, ids that the options do not set are
//! derived from the inputs with a hash (FNV-1a followed by the SplitMix64 finalizer), and
//! object keys are sorted, so a fixture regenerated from the same options prints the same
//! text.

mod catalog;
mod instance;
mod service;

use std::fmt;

use serde_json::{Number, Value, json};

use crate::finding::{FINDING_DETAIL_TYPE, GUARDDUTY_SOURCE};

use catalog::{ActionSpec, TypeSpec};

/// The most ENIs a generated instance may have. It is a bound for fixtures, not EC2's limit
/// (15 is what the largest single-network-card types such as m5.24xlarge support).
pub const MAX_NETWORK_INTERFACES: usize = 15;

/// The instance id used when the options name none.
pub const DEFAULT_INSTANCE_ID: &str = "i-0c9d8e7f6a5b43210";
/// The region used when the options name none.
pub const DEFAULT_REGION: &str = "eu-west-1";
/// The account used when the options name none.
pub const DEFAULT_ACCOUNT: &str = "111122223333";

/// What to put in a generated finding. Every field is optional: `Default` gives a finding
/// for [`DEFAULT_INSTANCE_ID`] in [`DEFAULT_ACCOUNT`] and [`DEFAULT_REGION`] with one ENI.
#[derive(Clone, Debug, PartialEq)]
pub struct FixtureOptions {
    /// The EC2 instance id (`i-` and 8 or 17 hex digits).
    pub instance_id: Option<String>,
    /// The region, e.g. `eu-west-1`.
    pub region: Option<String>,
    /// The 12-digit account id that owns the instance.
    pub account: Option<String>,
    /// The severity (1.0-10.0) in place of the type's default.
    pub severity: Option<f64>,
    /// The resource role in place of the type's default.
    pub role: Option<ResourceRole>,
    /// The number of ENIs, 0 to [`MAX_NETWORK_INTERFACES`].
    pub network_interfaces: usize,
    /// The VPC of every ENI, in place of a derived id.
    pub vpc_id: Option<String>,
    /// The subnet of every ENI, in place of derived ids.
    pub subnet_id: Option<String>,
    /// The security groups of every ENI, in place of derived groups.
    pub security_groups: Vec<String>,
    /// Generate a sample finding: `additionalInfo.sample` is true and the instance, network
    /// and remote host carry GuardDuty's placeholder values.
    pub sample: bool,
    /// Return the finding alone, as an EventBridge input transformer delivers it.
    pub bare: bool,
    /// The finding id (32 lowercase hex digits) in place of one derived from the type and
    /// the instance id.
    pub finding_id: Option<String>,
}

impl Default for FixtureOptions {
    fn default() -> Self {
        Self {
            instance_id: None,
            region: None,
            account: None,
            severity: None,
            role: None,
            network_interfaces: 1,
            vpc_id: None,
            subnet_id: None,
            security_groups: Vec::new(),
            sample: false,
            bare: false,
            finding_id: None,
        }
    }
}

/// `service.resourceRole`: whether the instance acted or was acted upon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceRole {
    /// The instance initiated the activity, e.g. it attacks another host.
    Actor,
    /// The instance was the target of the activity.
    Target,
}

impl ResourceRole {
    /// Returns the value GuardDuty writes: `ACTOR` or `TARGET`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Actor => "ACTOR",
            Self::Target => "TARGET",
        }
    }
}

impl fmt::Display for ResourceRole {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Why a finding could not be generated.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FixtureError {
    /// The finding type is not in the catalog.
    #[error("unknown finding type `{finding_type}`")]
    UnknownType {
        /// The type as given.
        finding_type: String,
        /// Up to three supported types close to it, closest first.
        suggestions: Vec<&'static str>,
    },
    /// An option has a value GuardDuty would never report.
    #[error("invalid {option} `{value}`: expected {expected}")]
    InvalidOption {
        /// Which option, in words (e.g. `instance id`).
        option: &'static str,
        /// The value as given.
        value: String,
        /// What a valid value looks like.
        expected: &'static str,
    },
}

/// A supported finding type and its defaults, as listed by [`supported_types`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TypeInfo {
    /// The finding type, e.g. `UnauthorizedAccess:EC2/TorClient`.
    pub finding_type: &'static str,
    /// `service.action.actionType`, or `None` for Malware Protection findings.
    pub action_type: Option<&'static str>,
    /// The default resource role.
    pub role: ResourceRole,
    /// The default severity for the default role.
    pub severity: f64,
}

/// Lists every finding type [`generate`] supports, in catalog order.
pub fn supported_types() -> impl Iterator<Item = TypeInfo> {
    catalog::TYPES.iter().map(|spec| TypeInfo {
        finding_type: spec.finding_type,
        action_type: spec.action.action_type(),
        role: spec.role,
        severity: spec.severity_for(spec.role),
    })
}

/// Turns a finding type into a file name stem: lowercase, every run of other characters than
/// ASCII letters and digits becomes one `-` (`Backdoor:EC2/C&CActivity.B!DNS` →
/// `backdoor-ec2-c-cactivity-b-dns`).
pub fn slug(finding_type: &str) -> String {
    let mut slug = String::with_capacity(finding_type.len());
    let mut separator = false;
    for character in finding_type.chars() {
        if character.is_ascii_alphanumeric() {
            if separator && !slug.is_empty() {
                slug.push('-');
            }
            separator = false;
            slug.push(character.to_ascii_lowercase());
        } else {
            separator = true;
        }
    }
    slug
}

/// Generates a finding of `finding_type` for an EC2 instance.
///
/// # Errors
///
/// Returns [`FixtureError::UnknownType`] (with the closest supported types) for a type not in
/// the catalog, and [`FixtureError::InvalidOption`] for an option value GuardDuty would never
/// report, such as a malformed instance id or a severity outside 1.0-10.0.
pub fn generate(finding_type: &str, options: &FixtureOptions) -> Result<Value, FixtureError> {
    let spec = catalog::find(finding_type).ok_or_else(|| FixtureError::UnknownType {
        finding_type: finding_type.to_owned(),
        suggestions: suggest(finding_type),
    })?;
    let settings = Settings::resolve(spec, options)?;
    let malware = matches!(spec.action, ActionSpec::MalwareScan(_));
    let timeline = if malware { &MALWARE_SCAN } else { &ACTIVITY };

    let interfaces = instance::interfaces(&settings);
    let (title, description) = service::title_and_description(&settings, spec);
    let detail = json!({
        "schemaVersion": "2.0",
        "accountId": settings.account,
        "region": settings.region,
        "partition": settings.partition,
        "id": settings.finding_id,
        "arn": format!(
            "arn:{}:guardduty:{}:{}:detector/{}/finding/{}",
            settings.partition, settings.region, settings.account, settings.detector_id,
            settings.finding_id
        ),
        "type": spec.finding_type,
        "resource": instance::resource(&settings, &interfaces, malware),
        "service": service::service(&settings, spec, &interfaces, timeline),
        "severity": severity_value(settings.severity),
        "createdAt": timeline.created_at,
        "updatedAt": timeline.updated_at,
        "title": title,
        "description": description,
    });
    let mut output = if options.bare {
        detail
    } else {
        json!({
        "version": "0",
        "id": envelope_id(&settings.finding_id, timeline.updated_at),
        "detail-type": FINDING_DETAIL_TYPE,
        "source": GUARDDUTY_SOURCE,
        "account": settings.account,
        "time": timeline.event_time,
        "region": settings.region,
        "resources": [],
            "detail": detail,
        })
    };
    // Sorted keys make the text the same whether or not serde_json's `preserve_order` feature
    // is on, which depends on what else the build links.
    output.sort_all_objects();
    Ok(output)
}

/// The options after defaults and checks.
#[derive(Debug)]
struct Settings {
    instance_id: String,
    region: String,
    account: String,
    partition: &'static str,
    detector_id: String,
    finding_id: String,
    role: ResourceRole,
    severity: f64,
    enis: usize,
    vpc_id: Option<String>,
    subnet_id: Option<String>,
    security_groups: Vec<String>,
    sample: bool,
}

impl Settings {
    fn resolve(spec: &TypeSpec, options: &FixtureOptions) -> Result<Self, FixtureError> {
        let default_instance = if options.sample {
            instance::SAMPLE_INSTANCE_ID
        } else {
            DEFAULT_INSTANCE_ID
        };
        let instance_id = options.instance_id.as_deref().unwrap_or(default_instance);
        check_resource_id("instance id", instance_id, "i-")?;
        let region = options.region.as_deref().unwrap_or(DEFAULT_REGION);
        check(
            "region",
            region,
            is_region(region),
            "a region code such as `eu-west-1`",
        )?;
        let account = options.account.as_deref().unwrap_or(DEFAULT_ACCOUNT);
        let account_valid = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        check("account", account, account_valid, "12 digits")?;

        let role = options.role.unwrap_or(spec.role);
        let severity = options.severity.unwrap_or_else(|| spec.severity_for(role));
        if !(1.0..=10.0).contains(&severity) {
            return Err(invalid(
                "severity",
                severity.to_string(),
                "a number from 1.0 to 10.0",
            ));
        }
        if options.network_interfaces > MAX_NETWORK_INTERFACES {
            return Err(invalid(
                "number of network interfaces",
                options.network_interfaces.to_string(),
                "at most 15",
            ));
        }
        if let Some(vpc_id) = &options.vpc_id {
            check_resource_id("VPC id", vpc_id, "vpc-")?;
        }
        if let Some(subnet_id) = &options.subnet_id {
            check_resource_id("subnet id", subnet_id, "subnet-")?;
        }
        for group in &options.security_groups {
            check_resource_id("security group id", group, "sg-")?;
        }

        let finding_id = match &options.finding_id {
            Some(id) => {
                let valid = id.len() == 32 && is_lower_hex(id);
                check("finding id", id, valid, "32 lowercase hex digits")?;
                id.clone()
            }
            None => hex32(&[spec.finding_type, instance_id]),
        };
        Ok(Self {
            instance_id: instance_id.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            partition: partition(region),
            detector_id: hex32(&[account, region, "detector"]),
            finding_id,
            role,
            severity,
            enis: options.network_interfaces,
            vpc_id: options.vpc_id.clone(),
            subnet_id: options.subnet_id.clone(),
            security_groups: options.security_groups.clone(),
            sample: options.sample,
        })
    }
}

/// The fixed times of a finding, in the formats GuardDuty uses (milliseconds in the finding,
/// whole seconds in the envelope).
struct Timeline {
    first_seen: &'static str,
    last_seen: &'static str,
    created_at: &'static str,
    updated_at: &'static str,
    event_time: &'static str,
    count: u32,
}

/// Activity seen several times: the finding was created, then updated.
const ACTIVITY: Timeline = Timeline {
    first_seen: "2026-11-30T09:58:12.000Z",
    last_seen: "2026-11-30T10:11:40.000Z",
    created_at: "2026-11-30T10:05:01.123Z",
    updated_at: "2026-11-30T10:15:22.456Z",
    event_time: "2026-11-30T10:15:30Z",
    count: 4,
};

/// A malware scan: one result, published when the scan completes and never updated.
const MALWARE_SCAN: Timeline = Timeline {
    first_seen: "2026-11-30T10:16:05.000Z",
    last_seen: "2026-11-30T10:24:51.000Z",
    created_at: "2026-11-30T10:25:03.512Z",
    updated_at: "2026-11-30T10:25:03.512Z",
    event_time: "2026-11-30T10:25:10Z",
    count: 1,
};

fn invalid(option: &'static str, value: String, expected: &'static str) -> FixtureError {
    FixtureError::InvalidOption {
        option,
        value,
        expected,
    }
}

fn check(
    option: &'static str,
    value: &str,
    valid: bool,
    expected: &'static str,
) -> Result<(), FixtureError> {
    if valid {
        Ok(())
    } else {
        Err(invalid(option, value.to_owned(), expected))
    }
}

/// Checks an EC2 id: `prefix` then 8 or 17 lowercase hex digits.
fn check_resource_id(
    option: &'static str,
    value: &str,
    prefix: &'static str,
) -> Result<(), FixtureError> {
    let valid = value
        .strip_prefix(prefix)
        .is_some_and(|digits| matches!(digits.len(), 8 | 17) && is_lower_hex(digits));
    let expected = match prefix {
        "i-" => "`i-` and 8 or 17 lowercase hex digits",
        "vpc-" => "`vpc-` and 8 or 17 lowercase hex digits",
        "subnet-" => "`subnet-` and 8 or 17 lowercase hex digits",
        _ => "`sg-` and 8 or 17 lowercase hex digits",
    };
    check(option, value, valid, expected)
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// Accepts region codes such as `eu-west-1`, `us-gov-west-1` and `ap-southeast-2`: lowercase
/// words joined by `-`, the first of two letters, the last a number.
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    parts.len() >= 3
        && first.len() == 2
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// The AWS partition of a region: `aws-cn` for China, `aws-us-gov` for GovCloud.
fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// A severity as JSON: an integer when it is whole (GuardDuty writes `8`, not `8.0`).
fn severity_value(severity: f64) -> Value {
    if severity.fract() == 0.0 {
        // INVARIANT: `Settings::resolve` keeps the severity within 1.0-10.0, so the cast is exact.
        json!(severity as i64)
    } else {
        Number::from_f64(severity).map_or(Value::Null, Value::Number)
    }
}

/// Closest supported types to `input`, for the unknown-type error. A type matches when its
/// whole name or the part after `/` is within a small edit distance (ignoring case), or
/// contains `input` as written.
fn suggest(input: &str) -> Vec<&'static str> {
    let requested = input.to_ascii_lowercase();
    let mut scored: Vec<(f64, &'static str)> = catalog::TYPES
        .iter()
        .map(|spec| {
            let name = spec.finding_type.to_ascii_lowercase();
            let family = name.rsplit('/').next().unwrap_or(&name);
            let score = if requested.len() >= 3 && name.contains(&requested) {
                1.0
            } else {
                strsim::normalized_damerau_levenshtein(&requested, &name)
                    .max(strsim::normalized_damerau_levenshtein(&requested, family))
            };
            (score, spec.finding_type)
        })
        .filter(|(score, _)| *score >= 0.7)
        .collect();
    scored.sort_by(|left, right| right.0.total_cmp(&left.0));
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}

/// A 64-bit hash of `parts`: FNV-1a over the parts (each followed by a zero byte so that
/// `["ab", "c"]` and `["a", "bc"]` differ), then the SplitMix64 finalizer to spread the bits.
fn digest(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// 16 hex digits derived from `parts`.
fn hex(parts: &[&str]) -> String {
    format!("{:016x}", digest(parts))
}

/// 32 hex digits derived from `parts`, the shape of a GuardDuty finding or detector id.
fn hex32(parts: &[&str]) -> String {
    let mut salted = parts.to_vec();
    salted.push("high");
    let high = digest(&salted);
    if let Some(last) = salted.last_mut() {
        *last = "low";
    }
    format!("{high:016x}{:016x}", digest(&salted))
}

/// An EventBridge event id: a UUID in version 4 layout, derived from the finding id and its
/// update time because EventBridge gives every publication of a finding a new id.
fn envelope_id(finding_id: &str, updated_at: &str) -> String {
    let high = digest(&[finding_id, updated_at, "envelope-high"]);
    let low = digest(&[finding_id, updated_at, "envelope-low"]);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xffff,
        high & 0x0fff,
        0x8000 | ((low >> 48) & 0x3fff),
        low & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::finding::{self, Input};

    fn event(finding_type: &str, options: &FixtureOptions) -> Value {
        generate(finding_type, options).unwrap_or_else(|error| panic!("{finding_type}: {error}"))
    }

    fn defaults(finding_type: &str) -> Value {
        event(finding_type, &FixtureOptions::default())
    }

    fn parsed(value: &Value) -> finding::Finding {
        match finding::parse(value.to_string().as_bytes()) {
            Ok(Input::Finding(found)) => *found,
            Ok(Input::Skipped { reason }) => panic!("skipped: {reason}"),
            Err(error) => panic!("{error}"),
        }
    }

    fn all_types() -> Vec<&'static str> {
        supported_types().map(|info| info.finding_type).collect()
    }

    fn band(severity: f64) -> &'static str {
        match severity {
            value if value < 4.0 => "Low",
            value if value < 7.0 => "Medium",
            value if value < 9.0 => "High",
            _ => "Critical",
        }
    }

    /// The action type GuardDuty reports, judged from the type name alone.
    fn expected_action_type(finding_type: &str) -> Option<&'static str> {
        let dns_family = [
            "!DNS",
            "DomainRequest",
            "DNSDataExfiltration",
            "MetadataDNSRebind",
        ];
        if finding_type.starts_with("Execution:EC2/") {
            None
        } else if finding_type.starts_with("Recon:EC2/PortProbe") {
            Some("PORT_PROBE")
        } else if dns_family
            .iter()
            .any(|marker| finding_type.contains(marker))
        {
            Some("DNS_REQUEST")
        } else {
            Some("NETWORK_CONNECTION")
        }
    }

    #[test]
    fn catalog_has_every_current_ec2_type() {
        let types = all_types();
        assert_eq!(types.len(), 42);
        for finding_type in &types {
            assert!(finding_type.contains(":EC2/"), "{finding_type}");
        }
        let mut unique = types.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), types.len(), "duplicate rows");
    }

    #[test]
    fn every_type_parses_as_instance_finding() {
        for finding_type in all_types() {
            let found = parsed(&defaults(finding_type));
            assert_eq!(found.summary.finding_type, finding_type);
            assert_eq!(found.summary.resource_type, "Instance", "{finding_type}");
            assert_eq!(
                found.summary.instance_id.as_deref(),
                Some(DEFAULT_INSTANCE_ID),
                "{finding_type}"
            );
            assert_eq!(found.summary.account_id.as_deref(), Some(DEFAULT_ACCOUNT));
            assert_eq!(found.summary.region.as_deref(), Some(DEFAULT_REGION));
            assert!(!found.summary.sample, "{finding_type}");
            assert!(found.envelope.is_some(), "{finding_type}");
        }
    }

    #[test]
    fn every_type_has_its_action_type() {
        for finding_type in all_types() {
            let value = defaults(finding_type);
            let service = &value["detail"]["service"];
            let actual = service["action"]["actionType"].as_str();
            assert_eq!(actual, expected_action_type(finding_type), "{finding_type}");
            match actual {
                Some("NETWORK_CONNECTION") => {
                    let action = &service["action"]["networkConnectionAction"];
                    assert!(action["remoteIpDetails"]["organization"]["asn"].is_string());
                    assert!(action["localPortDetails"]["port"].is_u64());
                }
                Some("DNS_REQUEST") => {
                    let action = &service["action"]["dnsRequestAction"];
                    assert!(action["domain"].is_string(), "{finding_type}");
                    assert!(action["domainWithSuffix"].is_string(), "{finding_type}");
                }
                Some("PORT_PROBE") => {
                    let details = &service["action"]["portProbeAction"]["portProbeDetails"];
                    assert_eq!(details.as_array().map(Vec::len), Some(2));
                }
                _ => {
                    assert!(service.get("action").is_none(), "{finding_type}");
                    assert!(service["ebsVolumeScanDetails"]["scanId"].is_string());
                    let volumes = &value["detail"]["resource"]["ebsVolumeDetails"];
                    assert!(volumes["scannedVolumeDetails"].is_array(), "{finding_type}");
                }
            }
        }
    }

    #[test]
    fn default_severity_bands() {
        let cases = [
            ("UnauthorizedAccess:EC2/TorClient", "High"),
            ("Backdoor:EC2/C&CActivity.B!DNS", "High"),
            ("CryptoCurrency:EC2/BitcoinTool.B", "High"),
            ("Trojan:EC2/DNSDataExfiltration", "High"),
            ("Behavior:EC2/NetworkPortUnusual", "Medium"),
            ("DefenseEvasion:EC2/UnusualDoHActivity", "Medium"),
            ("Impact:EC2/AbusedDomainRequest.Reputation", "Medium"),
            ("Recon:EC2/PortProbeUnprotectedPort", "Low"),
            ("UnauthorizedAccess:EC2/SSHBruteForce", "Low"),
            ("UnauthorizedAccess:EC2/RDPBruteForce", "Low"),
            ("Impact:EC2/WinRMBruteForce", "Low"),
        ];
        for (finding_type, expected) in cases {
            let severity = parsed(&defaults(finding_type)).summary.severity;
            assert_eq!(severity.map(band), Some(expected), "{finding_type}");
        }
    }

    #[test]
    fn brute_force_follows_role() {
        for finding_type in [
            "UnauthorizedAccess:EC2/SSHBruteForce",
            "UnauthorizedAccess:EC2/RDPBruteForce",
            "Impact:EC2/WinRMBruteForce",
        ] {
            let target = defaults(finding_type);
            let connection = &target["detail"]["service"]["action"]["networkConnectionAction"];
            assert_eq!(target["detail"]["service"]["resourceRole"], "TARGET");
            assert_eq!(connection["connectionDirection"], "INBOUND");
            assert_eq!(target["detail"]["severity"], 2);

            let options = FixtureOptions {
                role: Some(ResourceRole::Actor),
                ..FixtureOptions::default()
            };
            let actor = event(finding_type, &options);
            let connection = &actor["detail"]["service"]["action"]["networkConnectionAction"];
            assert_eq!(actor["detail"]["service"]["resourceRole"], "ACTOR");
            assert_eq!(connection["connectionDirection"], "OUTBOUND");
            assert_eq!(actor["detail"]["severity"], 8);
            assert_eq!(
                connection["remotePortDetails"]["port"],
                target["detail"]["service"]["action"]["networkConnectionAction"]["localPortDetails"]
                    ["port"]
            );
        }
    }

    #[test]
    fn port_probe_and_malware_target_instance() {
        for finding_type in [
            "Recon:EC2/PortProbeUnprotectedPort",
            "Recon:EC2/PortProbeEMRUnprotectedPort",
            "Execution:EC2/MaliciousFile",
        ] {
            let value = defaults(finding_type);
            assert_eq!(value["detail"]["service"]["resourceRole"], "TARGET");
        }
        let value = defaults("UnauthorizedAccess:EC2/TorClient");
        assert_eq!(value["detail"]["service"]["resourceRole"], "ACTOR");
    }

    #[test]
    fn severity_option_overrides_default() {
        let options = FixtureOptions {
            severity: Some(6.5),
            ..FixtureOptions::default()
        };
        let value = event("UnauthorizedAccess:EC2/TorClient", &options);
        assert_eq!(value["detail"]["severity"].as_f64(), Some(6.5));
    }

    #[test]
    fn whole_severity_is_integer() {
        let value = defaults("UnauthorizedAccess:EC2/TorClient");
        assert_eq!(value["detail"]["severity"].as_i64(), Some(8));
    }

    #[test]
    fn sample_is_recognised() {
        let options = FixtureOptions {
            sample: true,
            ..FixtureOptions::default()
        };
        for finding_type in all_types() {
            let value = event(finding_type, &options);
            let found = parsed(&value);
            assert!(found.summary.sample, "{finding_type}");
            assert!(finding::is_sample(&found.detail), "{finding_type}");
            assert_eq!(found.summary.instance_id.as_deref(), Some("i-99999999"));
            let interfaces = &found.detail["resource"]["instanceDetails"]["networkInterfaces"];
            assert_eq!(interfaces[0]["vpcId"], "GeneratedFindingVPCId");
        }
        assert!(!finding::is_sample(
            &defaults("UnauthorizedAccess:EC2/TorClient")["detail"]
        ));
    }

    #[test]
    fn sample_keeps_given_instance() {
        let options = FixtureOptions {
            sample: true,
            instance_id: Some("i-0123456789abcdef0".to_owned()),
            ..FixtureOptions::default()
        };
        let found = parsed(&event("UnauthorizedAccess:EC2/TorClient", &options));
        assert_eq!(
            found.summary.instance_id.as_deref(),
            Some("i-0123456789abcdef0")
        );
        assert!(found.summary.sample);
    }

    #[test]
    fn bare_finding_has_no_envelope() {
        let options = FixtureOptions {
            bare: true,
            ..FixtureOptions::default()
        };
        let value = event("Trojan:EC2/DropPoint!DNS", &options);
        assert!(value.get("detail-type").is_none());
        let found = parsed(&value);
        assert!(found.envelope.is_none());
        assert_eq!(found.summary.finding_type, "Trojan:EC2/DropPoint!DNS");
    }

    #[test]
    fn options_set_identity() {
        let options = FixtureOptions {
            instance_id: Some("i-0abcdef1234567890".to_owned()),
            region: Some("us-east-1".to_owned()),
            account: Some("444455556666".to_owned()),
            finding_id: Some("0123456789abcdef0123456789abcdef".to_owned()),
            ..FixtureOptions::default()
        };
        let value = event("Backdoor:EC2/C&CActivity.B", &options);
        let found = parsed(&value);
        assert_eq!(
            found.summary.instance_id.as_deref(),
            Some("i-0abcdef1234567890")
        );
        assert_eq!(found.summary.region.as_deref(), Some("us-east-1"));
        assert_eq!(found.summary.account_id.as_deref(), Some("444455556666"));
        assert_eq!(found.summary.id, "0123456789abcdef0123456789abcdef");
        assert_eq!(value["account"], "444455556666");
        assert_eq!(value["region"], "us-east-1");
        let arn = value["detail"]["arn"].as_str().unwrap_or_default();
        assert!(arn.starts_with("arn:aws:guardduty:us-east-1:444455556666:detector/"));
        assert!(arn.ends_with("/finding/0123456789abcdef0123456789abcdef"));
        let interface = &value["detail"]["resource"]["instanceDetails"]["networkInterfaces"][0];
        assert!(
            interface["privateDnsName"]
                .as_str()
                .is_some_and(|name| name.ends_with(".ec2.internal"))
        );
    }

    #[test]
    fn china_region_uses_its_partition() {
        let options = FixtureOptions {
            region: Some("cn-north-1".to_owned()),
            ..FixtureOptions::default()
        };
        let value = event("UnauthorizedAccess:EC2/TorClient", &options);
        assert_eq!(value["detail"]["partition"], "aws-cn");
        assert!(
            value["detail"]["arn"]
                .as_str()
                .is_some_and(|arn| arn.starts_with("arn:aws-cn:"))
        );
    }

    #[test]
    fn network_interfaces_follow_count() {
        let options = FixtureOptions {
            network_interfaces: 3,
            ..FixtureOptions::default()
        };
        let value = event("UnauthorizedAccess:EC2/TorClient", &options);
        let interfaces = value["detail"]["resource"]["instanceDetails"]["networkInterfaces"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(interfaces.len(), 3);
        let ids: Vec<&str> = interfaces
            .iter()
            .filter_map(|interface| interface["networkInterfaceId"].as_str())
            .collect();
        assert_eq!(ids.len(), 3);
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert_ne!(ids[0], ids[2]);
        assert_eq!(interfaces[0]["vpcId"], interfaces[2]["vpcId"]);
        assert_eq!(interfaces[0]["subnetId"], interfaces[1]["subnetId"]);
        assert_ne!(interfaces[0]["subnetId"], interfaces[2]["subnetId"]);
        assert_eq!(
            interfaces[1]["securityGroups"].as_array().map(Vec::len),
            Some(2)
        );
        assert!(interfaces[0].get("publicIp").is_some());
        assert!(interfaces[1].get("publicIp").is_none());
    }

    #[test]
    fn zero_interfaces_still_parse() {
        let options = FixtureOptions {
            network_interfaces: 0,
            ..FixtureOptions::default()
        };
        let value = event("UnauthorizedAccess:EC2/TorClient", &options);
        let interfaces = &value["detail"]["resource"]["instanceDetails"]["networkInterfaces"];
        assert_eq!(interfaces.as_array().map(Vec::len), Some(0));
        assert_eq!(parsed(&value).summary.resource_type, "Instance");
    }

    #[test]
    fn network_options_apply_to_every_interface() {
        let options = FixtureOptions {
            network_interfaces: 2,
            vpc_id: Some("vpc-0aaaabbbbccccdddd".to_owned()),
            subnet_id: Some("subnet-0aaaabbbbccccdddd".to_owned()),
            security_groups: vec!["sg-0aaaabbbbccccdddd".to_owned(), "sg-12345678".to_owned()],
            ..FixtureOptions::default()
        };
        let value = event("UnauthorizedAccess:EC2/TorClient", &options);
        let interfaces = &value["detail"]["resource"]["instanceDetails"]["networkInterfaces"];
        for index in 0..2 {
            let interface = &interfaces[index];
            assert_eq!(interface["vpcId"], "vpc-0aaaabbbbccccdddd");
            assert_eq!(interface["subnetId"], "subnet-0aaaabbbbccccdddd");
            assert_eq!(
                interface["securityGroups"][0]["groupId"],
                "sg-0aaaabbbbccccdddd"
            );
            assert_eq!(interface["securityGroups"][1]["groupId"], "sg-12345678");
        }
    }

    #[test]
    fn output_is_deterministic() {
        for finding_type in all_types() {
            assert_eq!(
                defaults(finding_type),
                defaults(finding_type),
                "{finding_type}"
            );
        }
    }

    #[test]
    fn ids_have_guardduty_shapes() {
        let value = defaults("UnauthorizedAccess:EC2/TorClient");
        let id = value["detail"]["id"].as_str().unwrap_or_default();
        assert_eq!(id.len(), 32);
        assert!(is_lower_hex(id));
        let detector = value["detail"]["service"]["detectorId"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(detector.len(), 32);
        let envelope = value["id"].as_str().unwrap_or_default();
        let groups: Vec<usize> = envelope.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(envelope.chars().nth(14), Some('4'));
    }

    #[test]
    fn finding_id_depends_on_type_and_instance() {
        let first = defaults("UnauthorizedAccess:EC2/TorClient");
        let other_type = defaults("UnauthorizedAccess:EC2/TorRelay");
        let options = FixtureOptions {
            instance_id: Some("i-0123456789abcdef0".to_owned()),
            ..FixtureOptions::default()
        };
        let other_instance = event("UnauthorizedAccess:EC2/TorClient", &options);
        assert_ne!(first["detail"]["id"], other_type["detail"]["id"]);
        assert_ne!(first["detail"]["id"], other_instance["detail"]["id"]);
    }

    #[test]
    fn unknown_type_suggests_close_types() {
        let Err(FixtureError::UnknownType { suggestions, .. }) = generate(
            "UnauthorizedAccess:EC2/TorClinet",
            &FixtureOptions::default(),
        ) else {
            panic!("expected an unknown type error");
        };
        assert_eq!(
            suggestions.first(),
            Some(&"UnauthorizedAccess:EC2/TorClient")
        );

        let Err(FixtureError::UnknownType { suggestions, .. }) =
            generate("sshbruteforce", &FixtureOptions::default())
        else {
            panic!("expected an unknown type error");
        };
        assert_eq!(
            suggestions.first(),
            Some(&"UnauthorizedAccess:EC2/SSHBruteForce")
        );

        let Err(FixtureError::UnknownType { suggestions, .. }) = generate(
            "Policy:S3/BucketBlockPublicAccessDisabled",
            &FixtureOptions::default(),
        ) else {
            panic!("expected an unknown type error");
        };
        assert!(suggestions.is_empty(), "{suggestions:?}");
    }

    #[test]
    fn invalid_options_are_rejected() {
        let cases = [
            (
                FixtureOptions {
                    instance_id: Some("i-xyz".to_owned()),
                    ..FixtureOptions::default()
                },
                "instance id",
            ),
            (
                FixtureOptions {
                    region: Some("EU-WEST-1".to_owned()),
                    ..FixtureOptions::default()
                },
                "region",
            ),
            (
                FixtureOptions {
                    account: Some("1234".to_owned()),
                    ..FixtureOptions::default()
                },
                "account",
            ),
            (
                FixtureOptions {
                    severity: Some(0.5),
                    ..FixtureOptions::default()
                },
                "severity",
            ),
            (
                FixtureOptions {
                    severity: Some(f64::NAN),
                    ..FixtureOptions::default()
                },
                "severity",
            ),
            (
                FixtureOptions {
                    network_interfaces: MAX_NETWORK_INTERFACES + 1,
                    ..FixtureOptions::default()
                },
                "number of network interfaces",
            ),
            (
                FixtureOptions {
                    finding_id: Some("ABCDEF".to_owned()),
                    ..FixtureOptions::default()
                },
                "finding id",
            ),
            (
                FixtureOptions {
                    security_groups: vec!["group-1".to_owned()],
                    ..FixtureOptions::default()
                },
                "security group id",
            ),
        ];
        for (options, expected) in cases {
            match generate("UnauthorizedAccess:EC2/TorClient", &options) {
                Err(FixtureError::InvalidOption { option, .. }) => assert_eq!(option, expected),
                other => panic!("{expected}: expected an invalid option error, got {other:?}"),
            }
        }
    }

    #[test]
    fn invalid_option_message_names_value() {
        let options = FixtureOptions {
            instance_id: Some("i-xyz".to_owned()),
            ..FixtureOptions::default()
        };
        let error = generate("UnauthorizedAccess:EC2/TorClient", &options).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid instance id `i-xyz`: expected `i-` and 8 or 17 lowercase hex digits"
        );
    }

    #[test]
    fn regions_are_checked() {
        for region in [
            "eu-west-1",
            "us-gov-west-1",
            "ap-southeast-2",
            "il-central-1",
        ] {
            assert!(is_region(region), "{region}");
        }
        for region in [
            "",
            "eu",
            "eu-west",
            "eu-west-x",
            "EU-WEST-1",
            "eu--1",
            "europe-west-1",
        ] {
            assert!(!is_region(region), "{region}");
        }
    }

    #[test]
    fn slugs_are_distinct_file_names() {
        assert_eq!(
            slug("Backdoor:EC2/C&CActivity.B!DNS"),
            "backdoor-ec2-c-cactivity-b-dns"
        );
        assert_eq!(
            slug("UnauthorizedAccess:EC2/TorClient"),
            "unauthorizedaccess-ec2-torclient"
        );
        let mut slugs: Vec<String> = all_types().into_iter().map(slug).collect();
        let count = slugs.len();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), count);
    }

    #[test]
    fn digest_separates_parts() {
        assert_ne!(digest(&["ab", "c"]), digest(&["a", "bc"]));
        assert_eq!(hex(&["x"]).len(), 16);
        assert_eq!(hex32(&["x"]).len(), 32);
        assert_ne!(hex32(&["x"]), hex32(&["y"]));
    }
}
