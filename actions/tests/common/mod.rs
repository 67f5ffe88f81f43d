//! Test harness for the EC2 emulator: finds or starts it, builds clients with dummy
//! credentials pointed at it, creates VPCs, groups and instances, and counts API calls.
//!
//! The endpoint comes from `CORDON_TEST_EC2_ENDPOINT` or `AWS_ENDPOINT_URL`. Without either,
//! the harness runs `tests/support/emulator.sh start`, which reuses a running emulator or
//! starts one (it needs `tests/support/emulator.sh install` first). When that fails too, a
//! test fails if `CI` is set and is skipped with a notice otherwise. Only loopback endpoints
//! are accepted, so no test can reach real AWS.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_ec2::config::{
    ConfigBag, Credentials, Intercept, Region, RuntimeComponents, SharedCredentialsProvider,
    SharedInterceptor,
};
use aws_sdk_ec2::types::{Filter, IpPermission, IpRange, Tag};
use cordon_actions::{ClientSettings, Ec2Clients};
use cordon_engine::Summary;
use cordon_engine::plan::{MatchedRule, Plan, PlannedAction};
use serde_json::Value;

pub const REGION: &str = "eu-west-1";
pub const ZONE: &str = "eu-west-1b";
/// The account the emulator reports for its credentials (`MOTO_ACCOUNT_ID`).
pub const ACCOUNT: &str = "111122223333";

/// Returns the emulator endpoint, or `None` (after printing why) when tests should skip.
///
/// # Panics
///
/// Panics when `CI` is set and there is no emulator, or when the endpoint is not loopback.
pub fn endpoint() -> Option<String> {
    static ENDPOINT: OnceLock<Option<String>> = OnceLock::new();
    ENDPOINT.get_or_init(find_endpoint).clone()
}

fn find_endpoint() -> Option<String> {
    let configured = ["CORDON_TEST_EC2_ENDPOINT", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()));
    let found = configured.or_else(start_emulator);
    match found {
        Some(url) => {
            assert!(
                is_loopback_url(&url),
                "the EC2 endpoint `{url}` is not on a loopback address; tests only talk to a local emulator"
            );
            Some(url)
        }
        None if std::env::var_os("CI").is_some() => panic!(
            "CI is set but no EC2 emulator is available: set CORDON_TEST_EC2_ENDPOINT or \
             AWS_ENDPOINT_URL, or run `tests/support/emulator.sh install` so that the tests can start it"
        ),
        None => {
            eprintln!(
                "notice: skipping EC2 emulator test: no CORDON_TEST_EC2_ENDPOINT or AWS_ENDPOINT_URL, \
                 and `tests/support/emulator.sh start` failed (run `tests/support/emulator.sh install`)"
            );
            None
        }
    }
}

fn start_emulator() -> Option<String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/support/emulator.sh");
    let output = Command::new(&script).arg("start").output().ok()?;
    if !output.status.success() {
        eprintln!(
            "notice: `{} start` failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return None;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let url = stdout
        .lines()
        .find_map(|line| line.strip_prefix("export AWS_ENDPOINT_URL="))?
        .trim()
        .to_owned();
    eprintln!(
        "notice: using the EC2 emulator at {url}; stop it with `tests/support/emulator.sh stop`"
    );
    Some(url)
}

fn is_loopback_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .unwrap_or_default()
            .trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Builds an AWS configuration with static dummy credentials, never the default provider chain.
pub fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let credentials = Credentials::new("testing", "testing", None, None, "cordon-tests");
    let mut builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(credentials));
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    builder.build()
}

/// Settings with a short backoff, so that retries in tests take milliseconds.
pub fn settings(interceptors: Vec<SharedInterceptor>) -> ClientSettings {
    ClientSettings {
        initial_backoff: Duration::from_millis(5),
        interceptors,
        ..ClientSettings::default()
    }
}

/// Counts the EC2 requests sent, by operation, including retries.
#[derive(Clone, Debug, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl CallCounter {
    /// Returns the counts by operation name.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.counts.lock().unwrap().clone()
    }

    /// Returns the total number of requests.
    pub fn total(&self) -> usize {
        self.counts().values().sum()
    }

    /// Returns the operations that do not start with `Describe`.
    pub fn writes(&self) -> Vec<String> {
        self.counts()
            .into_keys()
            .filter(|operation| !operation.starts_with("Describe"))
            .collect()
    }

    pub fn reset(&self) {
        self.counts.lock().unwrap().clear();
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _config: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // EC2 uses the query protocol: the body is a form whose `Action` field names the call.
        let body = context.request().body().bytes().unwrap_or_default();
        let text = String::from_utf8_lossy(body);
        let operation = text
            .split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .unwrap_or("unknown")
            .to_owned();
        *self.counts.lock().unwrap().entry(operation).or_default() += 1;
        Ok(())
    }
}

/// A connection to the emulator: a plain client for setting up and reading back state, and
/// the clients the code under test uses, which count their calls.
pub struct Emulator {
    pub ec2: aws_sdk_ec2::Client,
    pub clients: Ec2Clients,
    pub counter: CallCounter,
}

/// Returns a connection to the emulator, or `None` when the test should skip.
pub fn emulator() -> Option<Emulator> {
    let url = endpoint()?;
    let counter = CallCounter::default();
    let ec2 = aws_sdk_ec2::Client::new(&sdk_config(Some(&url)));
    let clients = Ec2Clients::from_sdk_config(
        sdk_config(Some(&url)),
        settings(vec![SharedInterceptor::new(counter.clone())]),
    );
    Some(Emulator {
        ec2,
        clients,
        counter,
    })
}

/// A VPC with one subnet.
#[derive(Clone, Debug)]
pub struct Network {
    pub vpc: String,
    pub subnet: String,
}

impl Emulator {
    pub async fn network(&self) -> Network {
        let vpc = self
            .ec2
            .create_vpc()
            .cidr_block("10.0.0.0/16")
            .send()
            .await
            .unwrap()
            .vpc
            .unwrap()
            .vpc_id
            .unwrap();
        let subnet = self
            .ec2
            .create_subnet()
            .vpc_id(&vpc)
            .cidr_block("10.0.1.0/24")
            .availability_zone(ZONE)
            .send()
            .await
            .unwrap()
            .subnet
            .unwrap()
            .subnet_id
            .unwrap();
        Network { vpc, subnet }
    }

    /// Creates a group. A new group has an allow-all egress rule; `keep_egress: false`
    /// removes it, as a quarantine group needs.
    pub async fn group(&self, network: &Network, name: &str, keep_egress: bool) -> String {
        let id = self
            .ec2
            .create_security_group()
            .group_name(name)
            .description(name)
            .vpc_id(&network.vpc)
            .send()
            .await
            .unwrap()
            .group_id
            .unwrap();
        if !keep_egress {
            self.ec2
                .revoke_security_group_egress()
                .group_id(&id)
                .ip_permissions(all_traffic())
                .send()
                .await
                .unwrap();
        }
        id
    }

    /// Creates a group that allows all traffic in and out.
    pub async fn allow_all_group(&self, network: &Network, name: &str) -> String {
        let id = self.group(network, name, true).await;
        self.ec2
            .authorize_security_group_ingress()
            .group_id(&id)
            .ip_permissions(all_traffic())
            .send()
            .await
            .unwrap();
        id
    }

    async fn image(&self) -> String {
        static IMAGE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        IMAGE
            .get_or_init(|| async {
                let images = self
                    .ec2
                    .describe_images()
                    .owners("amazon")
                    .send()
                    .await
                    .unwrap();
                images.images()[0].image_id().unwrap().to_owned()
            })
            .await
            .clone()
    }

    /// Starts an instance with one network interface in `groups`; returns the instance id
    /// and the interface id.
    pub async fn instance(&self, network: &Network, groups: &[&str]) -> (String, String) {
        let image = self.image().await;
        let response = self
            .ec2
            .run_instances()
            .image_id(image)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Medium)
            .min_count(1)
            .max_count(1)
            .subnet_id(&network.subnet)
            .set_security_group_ids(Some(
                groups.iter().map(|group| (*group).to_owned()).collect(),
            ))
            .send()
            .await
            .unwrap();
        let instance = &response.instances()[0];
        let eni = instance.network_interfaces()[0]
            .network_interface_id()
            .unwrap()
            .to_owned();
        (instance.instance_id().unwrap().to_owned(), eni)
    }

    /// Creates a network interface in `groups` and attaches it at `device_index`.
    pub async fn attach_interface(
        &self,
        instance_id: &str,
        network: &Network,
        groups: &[&str],
        device_index: i32,
    ) -> String {
        let eni = self
            .ec2
            .create_network_interface()
            .subnet_id(&network.subnet)
            .set_groups(Some(
                groups.iter().map(|group| (*group).to_owned()).collect(),
            ))
            .send()
            .await
            .unwrap()
            .network_interface
            .unwrap()
            .network_interface_id
            .unwrap();
        self.ec2
            .attach_network_interface()
            .network_interface_id(&eni)
            .instance_id(instance_id)
            .device_index(device_index)
            .send()
            .await
            .unwrap();
        eni
    }

    /// Creates a 1 GiB volume and attaches it to the instance.
    pub async fn attach_volume(&self, instance_id: &str, device: &str) -> String {
        let volume = self
            .ec2
            .create_volume()
            .size(1)
            .availability_zone(ZONE)
            .send()
            .await
            .unwrap()
            .volume_id
            .unwrap();
        self.ec2
            .attach_volume()
            .volume_id(&volume)
            .instance_id(instance_id)
            .device(device)
            .send()
            .await
            .unwrap();
        volume
    }

    /// Returns the interface's group ids, sorted.
    pub async fn groups_of(&self, eni: &str) -> Vec<String> {
        let response = self
            .ec2
            .describe_network_interfaces()
            .network_interface_ids(eni)
            .send()
            .await
            .unwrap();
        let mut groups: Vec<String> = response.network_interfaces()[0]
            .groups()
            .iter()
            .map(|group| group.group_id().unwrap().to_owned())
            .collect();
        groups.sort();
        groups
    }

    /// Returns a resource's tags.
    pub async fn tags_of(&self, resource: &str) -> BTreeMap<String, String> {
        let response = self
            .ec2
            .describe_tags()
            .filters(
                Filter::builder()
                    .name("resource-id")
                    .values(resource)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        response
            .tags()
            .iter()
            .map(|tag| {
                (
                    tag.key().unwrap().to_owned(),
                    tag.value().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Returns the snapshots of a volume tagged with the finding id, as (id, tags).
    pub async fn snapshots_of(&self, volume: &str, finding_id: &str) -> Vec<(String, Vec<Tag>)> {
        let response = self
            .ec2
            .describe_snapshots()
            .owner_ids("self")
            .filters(Filter::builder().name("volume-id").values(volume).build())
            .filters(
                Filter::builder()
                    .name("tag:cordon:finding-id")
                    .values(finding_id)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        response
            .snapshots()
            .iter()
            .map(|snapshot| {
                (
                    snapshot.snapshot_id().unwrap().to_owned(),
                    snapshot.tags().to_vec(),
                )
            })
            .collect()
    }

    pub async fn terminate(&self, instance_id: &str) {
        self.ec2
            .terminate_instances()
            .instance_ids(instance_id)
            .send()
            .await
            .unwrap();
    }
}

fn all_traffic() -> IpPermission {
    IpPermission::builder()
        .ip_protocol("-1")
        .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
        .build()
}

/// Returns a finding id unique to this test run, 32 hexadecimal characters like GuardDuty's.
pub fn finding_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let count = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:016x}{:08x}{count:08x}", std::process::id())
}

/// Returns a finding summary for an instance in the test region.
pub fn summary(instance_id: &str, finding_id: &str) -> Summary {
    Summary {
        id: finding_id.to_owned(),
        finding_type: "UnauthorizedAccess:EC2/TorClient".to_owned(),
        resource_type: "Instance".to_owned(),
        account_id: Some(ACCOUNT.to_owned()),
        region: Some(REGION.to_owned()),
        instance_id: Some(instance_id.to_owned()),
        severity: Some(8.0),
        sample: false,
    }
}

/// Returns a plan with one matched rule `test-rule` and the given actions.
pub fn plan(summary: Summary, actions: &[(&str, Value)]) -> Plan {
    Plan {
        finding: summary,
        matched: vec![MatchedRule {
            rule_id: "test-rule".to_owned(),
            location: "test.yaml:1:1".to_owned(),
            actions: actions
                .iter()
                .map(|(action, params)| PlannedAction {
                    action: (*action).to_owned(),
                    params: params.clone(),
                })
                .collect(),
        }],
        errors: Vec::new(),
        explanations: Vec::new(),
    }
}

/// Returns the values of the `status` fields of each outcome, for short asserts.
pub fn statuses(execution: &cordon_actions::Execution) -> Vec<&'static str> {
    execution
        .outcomes
        .iter()
        .map(|outcome| outcome.status.name())
        .collect()
}
