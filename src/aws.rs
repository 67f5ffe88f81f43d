//! AWS settings shared by `cordon run` and `cordon release`.

use clap::Args;
use cordon_actions::{ClientSettings, Ec2Clients};

use crate::EXIT_USAGE;

/// Options for the EC2 endpoint.
#[derive(Args)]
pub struct AwsArgs {
    /// Send EC2 requests to this URL instead of the regional endpoint, e.g. a local emulator.
    /// `AWS_ENDPOINT_URL` does the same.
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
}

impl AwsArgs {
    /// Loads the AWS configuration (credentials, region) the usual way and applies the
    /// endpoint URL and the fallback region on top.
    pub async fn clients(&self, region: Option<String>) -> Ec2Clients {
        let settings = ClientSettings {
            endpoint_url: self.endpoint_url.clone(),
            region,
            ..ClientSettings::default()
        };
        Ec2Clients::load(settings).await
    }

    /// Rejects an endpoint URL that is not an `http://` or `https://` URL.
    pub fn check(&self) -> Result<(), u8> {
        let Some(url) = &self.endpoint_url else {
            return Ok(());
        };
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(());
        }
        eprintln!(
            "error: invalid `--endpoint-url {url}`: expected a URL such as `http://127.0.0.1:5000`"
        );
        Err(EXIT_USAGE)
    }
}

/// Creates the async runtime for the AWS calls.
pub fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("error: cannot start the async runtime: {error}");
            EXIT_USAGE
        })
}
