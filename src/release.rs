//! `cordon release`: give an isolated instance's network interfaces their recorded groups
//! back.

use clap::Args;

use crate::aws::{AwsArgs, runtime};
use crate::plan::Format;
use crate::{EXIT_FAILURE, EXIT_OK, EXIT_USAGE};

#[derive(Args)]
pub struct ReleaseArgs {
    /// The instance id, e.g. `i-0123456789abcdef0`.
    #[arg(long, value_name = "ID")]
    instance: String,
    /// The instance's region; by default the configured AWS region.
    #[arg(long)]
    region: Option<String>,
    /// The instance tag set to `released` once every interface has its groups back, when the
    /// instance carries it. An empty value leaves the tags alone.
    #[arg(long, value_name = "KEY", default_value = "cordon:status")]
    status_tag: String,
    /// Make only read calls and print the write calls that would be made.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    aws: AwsArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Restores the groups. Exit 0 when restored, already restored or skipped, 1 when a network
/// interface could not be restored, 2 for an invalid instance id or endpoint URL.
pub fn run(args: &ReleaseArgs) -> u8 {
    if let Err(code) = args.aws.check() {
        return code;
    }
    if !args.status_tag.is_empty()
        && let Err(message) = cordon_actions::check_status_tag(&args.status_tag)
    {
        eprintln!("error: invalid `--status-tag`: {message}");
        return EXIT_USAGE;
    }
    if !cordon_actions::is_instance_id(&args.instance) {
        eprintln!(
            "error: invalid `--instance {}`: expected an instance id such as `i-0123456789abcdef0`",
            args.instance
        );
        return EXIT_USAGE;
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let outcome = runtime.block_on(async {
        let clients = args.aws.clients(args.region.clone()).await;
        cordon_actions::release_instance(
            &clients,
            &args.instance,
            None,
            Some(&args.status_tag),
            args.dry_run,
        )
        .await
    });
    match args.format {
        Format::Text => {
            if args.dry_run {
                println!("dry run: no changes made");
            }
            print!("{}", outcome.to_text());
        }
        Format::Json => match serde_json::to_string_pretty(&outcome) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("error: cannot encode the result: {error}");
                return EXIT_FAILURE;
            }
        },
    }
    if outcome.failed() {
        EXIT_FAILURE
    } else {
        EXIT_OK
    }
}
