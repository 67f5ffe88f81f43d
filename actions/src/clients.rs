//! EC2 clients, one per region, created when first needed and then reused, and the account
//! their credentials belong to.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::config::timeout::TimeoutConfig;
use aws_sdk_ec2::config::{Region, SharedInterceptor};
use tokio::sync::OnceCell;

use crate::context::ActionError;

/// The maximum number of regions whose clients are kept. A finding names its own region, so
/// the bound keeps a long-running process from caching a client per made-up region.
const MAX_CACHED_REGIONS: usize = 32;

/// How clients are configured on top of the shared AWS configuration.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Sends every request to this URL instead of the regional EC2 endpoint. Without it,
    /// `AWS_ENDPOINT_URL` (read by `aws-config`) still applies.
    pub endpoint_url: Option<String>,
    /// The region for findings that name none. Without it, the region comes from `aws-config`
    /// (`AWS_REGION`, the profile, or instance metadata unless disabled).
    pub region: Option<String>,
    /// Attempts per call in the SDK's standard retry mode, counting the first one. Throttling
    /// (`RequestLimitExceeded`), 5xx errors and timeouts of one attempt are retried.
    pub max_attempts: u32,
    /// The base of the exponential backoff between attempts.
    pub initial_backoff: Duration,
    /// The time limit for one call, all attempts and backoff included.
    pub operation_timeout: Duration,
    /// The time limit for one attempt.
    pub attempt_timeout: Duration,
    /// Interceptors added to every EC2 client, e.g. to count calls in tests.
    pub interceptors: Vec<SharedInterceptor>,
    /// The account the credentials belong to. Without it, the account is read with STS
    /// GetCallerIdentity the first time a finding names one.
    pub account_id: Option<String>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            endpoint_url: None,
            region: None,
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            operation_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            interceptors: Vec::new(),
            account_id: None,
        }
    }
}

/// Why no client could be made for a finding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Neither the finding nor the configuration names a region.
    #[error("no AWS region: the finding names none and none is configured")]
    NoRegion,
    /// The region is not a well-formed region name.
    #[error("invalid AWS region `{0}`")]
    InvalidRegion(String),
}

impl ClientError {
    /// A code in snake case for outcomes: `no_region` or `invalid_region`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoRegion => "no_region",
            Self::InvalidRegion(_) => "invalid_region",
        }
    }
}

/// EC2 clients for the regions that findings name.
pub struct Ec2Clients {
    shared: SdkConfig,
    settings: ClientSettings,
    cache: Mutex<HashMap<String, aws_sdk_ec2::Client>>,
    account: OnceCell<String>,
}

impl std::fmt::Debug for Ec2Clients {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Ec2Clients")
            .field("default_region", &self.default_region())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Ec2Clients {
    /// Loads the AWS configuration the usual way (`aws-config` defaults: environment,
    /// profile, container or instance credentials) and applies `settings` on top.
    pub async fn load(settings: ClientSettings) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        Self::from_sdk_config(loader.load().await, settings)
    }

    /// Uses an AWS configuration built by the caller, e.g. with static credentials in tests.
    pub fn from_sdk_config(shared: SdkConfig, settings: ClientSettings) -> Self {
        let account = OnceCell::new_with(settings.account_id.clone());
        Self {
            shared,
            settings,
            cache: Mutex::new(HashMap::new()),
            account,
        }
    }

    /// Records the account the credentials belong to, e.g. from the ARN of the running Lambda
    /// function, so that [`Self::caller_account`] needs no call. Later values are ignored.
    pub fn set_caller_account(&self, account_id: &str) {
        // An error means a value is already set, and the credentials cannot change account.
        let _ = self.account.set(account_id.to_owned());
    }

    /// Returns the account the credentials belong to: the configured or recorded one, or else
    /// the one STS GetCallerIdentity names, read once and then kept.
    ///
    /// # Errors
    ///
    /// Returns the error of the STS call, or [`ClientError`]'s for the region it is sent to.
    pub async fn caller_account(&self, region: Option<&str>) -> Result<String, ActionError> {
        let account = self
            .account
            .get_or_try_init(|| async {
                let sts = self
                    .sts(region)
                    .map_err(|error| ActionError::new(error.code(), error.to_string()))?;
                let identity = sts
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|error| ActionError::from_sdk("GetCallerIdentity", &error))?;
                identity.account().map(str::to_owned).ok_or_else(|| {
                    ActionError::new("invalid_response", "GetCallerIdentity returned no account")
                })
            })
            .await?;
        Ok(account.clone())
    }

    /// The region used for findings that name none.
    pub fn default_region(&self) -> Option<&str> {
        self.settings
            .region
            .as_deref()
            .or_else(|| self.shared.region().map(Region::as_ref))
    }

    /// Returns the client for `region`, or for the default region when `region` is `None`.
    ///
    /// # Errors
    ///
    /// Returns [`ClientError::NoRegion`] when there is no region at all and
    /// [`ClientError::InvalidRegion`] for a name that is not a region.
    pub fn client(&self, region: Option<&str>) -> Result<aws_sdk_ec2::Client, ClientError> {
        let region = self.region(region)?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = cache.get(region) {
            return Ok(client.clone());
        }
        let client = self.build(region);
        if cache.len() < MAX_CACHED_REGIONS {
            cache.insert(region.to_owned(), client.clone());
        }
        Ok(client)
    }

    /// Returns the region a finding's calls go to, checked.
    fn region<'a>(&'a self, region: Option<&'a str>) -> Result<&'a str, ClientError> {
        let region = region
            .filter(|name| !name.is_empty())
            .or_else(|| self.default_region())
            .ok_or(ClientError::NoRegion)?;
        if is_region_name(region) {
            Ok(region)
        } else {
            Err(ClientError::InvalidRegion(region.to_owned()))
        }
    }

    /// Builds an STS client with the same endpoint, retries and timeouts as the EC2 clients.
    fn sts(&self, region: Option<&str>) -> Result<aws_sdk_sts::Client, ClientError> {
        let region = self.region(region)?;
        let mut builder = aws_sdk_sts::config::Builder::from(&self.shared)
            .region(Region::new(region.to_owned()))
            .retry_config(self.retry())
            .timeout_config(self.timeouts());
        if let Some(url) = &self.settings.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        Ok(aws_sdk_sts::Client::from_conf(builder.build()))
    }

    fn retry(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.settings.max_attempts.max(1))
            .with_initial_backoff(self.settings.initial_backoff)
    }

    fn timeouts(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .operation_timeout(self.settings.operation_timeout)
            .operation_attempt_timeout(self.settings.attempt_timeout)
            .build()
    }

    fn build(&self, region: &str) -> aws_sdk_ec2::Client {
        let settings = &self.settings;
        let mut builder = aws_sdk_ec2::config::Builder::from(&self.shared)
            .region(Region::new(region.to_owned()))
            .retry_config(self.retry())
            .timeout_config(self.timeouts());
        if let Some(url) = &settings.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        for interceptor in &settings.interceptors {
            builder = builder.interceptor(interceptor.clone());
        }
        aws_sdk_ec2::Client::from_conf(builder.build())
    }
}

/// Returns true for names shaped like AWS regions: lowercase letters, digits and hyphens,
/// starting with a letter, at most 32 characters (`eu-west-1`, `us-gov-west-1`).
fn is_region_name(name: &str) -> bool {
    name.len() <= 32
        && name.starts_with(|first: char| first.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients(region: Option<&str>) -> Ec2Clients {
        let mut shared = SdkConfig::builder().behavior_version(BehaviorVersion::latest());
        if let Some(region) = region {
            shared = shared.region(Region::new(region.to_owned()));
        }
        Ec2Clients::from_sdk_config(shared.build(), ClientSettings::default())
    }

    #[test]
    fn finding_region_wins() {
        let clients = clients(Some("eu-west-1"));
        let client = clients.client(Some("us-east-2")).unwrap();
        assert_eq!(
            client.config().region().map(Region::as_ref),
            Some("us-east-2")
        );
    }

    #[test]
    fn falls_back_to_configured_region() {
        let clients = clients(Some("eu-west-1"));
        let client = clients.client(None).unwrap();
        assert_eq!(
            client.config().region().map(Region::as_ref),
            Some("eu-west-1")
        );
    }

    #[test]
    fn no_region_is_an_error() {
        assert_eq!(
            clients(None).client(None).unwrap_err(),
            ClientError::NoRegion
        );
    }

    #[test]
    fn odd_region_is_rejected() {
        let error = clients(None).client(Some("evil.example/x")).unwrap_err();
        assert!(matches!(error, ClientError::InvalidRegion(_)));
    }

    #[test]
    fn clients_are_cached() {
        let clients = clients(Some("eu-west-1"));
        clients.client(Some("eu-west-1")).unwrap();
        clients.client(None).unwrap();
        clients.client(Some("eu-central-1")).unwrap();
        assert_eq!(clients.cache.lock().unwrap().len(), 2);
    }
}
