//! Log setup from Lambda's advanced logging controls.
//!
//! Lambda sets `AWS_LAMBDA_LOG_FORMAT` (`Text` or `JSON`) and, for the JSON format,
//! `AWS_LAMBDA_LOG_LEVEL` (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL`). When
//! `AWS_LAMBDA_LOG_LEVEL` is unset, `RUST_LOG` applies with its usual syntax, and the level
//! is `INFO` when both are unset.

use std::env;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::EnvFilter;

/// Crates whose logs stay at `INFO` or quieter whatever level `AWS_LAMBDA_LOG_LEVEL` sets, because
/// at `DEBUG` and `TRACE` the AWS SDK and HTTP stack log whole requests, responses and
/// signing steps. `RUST_LOG` can still raise them when `AWS_LAMBDA_LOG_LEVEL` is unset.
const QUIET_TARGETS: &[&str] = &[
    "aws_config",
    "aws_runtime",
    "aws_sdk",
    "aws_sigv4",
    "aws_smithy",
    "h2",
    "hyper",
    "rustls",
    "tower",
];

/// The log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines, without timestamps because CloudWatch adds its own.
    Text,
    /// One JSON object per line, as Lambda's JSON log format expects.
    Json,
}

/// The logging settings read from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The line format.
    pub format: Format,
    /// The filter directives, in `RUST_LOG` syntax.
    pub directives: String,
    /// A problem with the environment, logged once logging works.
    pub warning: Option<String>,
}

/// Reads the settings from Lambda's variables, with `RUST_LOG` as the fallback.
pub fn settings(lookup: impl Fn(&str) -> Option<String>) -> Settings {
    let format = match lookup("AWS_LAMBDA_LOG_FORMAT") {
        Some(value) if value.eq_ignore_ascii_case("json") => Format::Json,
        _ => Format::Text,
    };
    let mut warning = None;
    let lambda_level = lookup("AWS_LAMBDA_LOG_LEVEL").filter(|value| !value.is_empty());
    let directives = match lambda_level {
        Some(name) => {
            let level = lambda_level_filter(&name).unwrap_or_else(|| {
                warning = Some(format!(
                    "invalid `AWS_LAMBDA_LOG_LEVEL` value `{name}`: expected TRACE, DEBUG, \
                     INFO, WARN, ERROR or FATAL; logging at INFO"
                ));
                LevelFilter::INFO
            });
            directives_for(level)
        }
        None => match lookup("RUST_LOG").filter(|value| !value.is_empty()) {
            Some(directives) => directives,
            None => directives_for(LevelFilter::INFO),
        },
    };
    Settings {
        format,
        directives,
        warning,
    }
}

/// Maps a Lambda log level name to a filter. Lambda's `FATAL` has no `tracing` level of its
/// own, so it keeps `ERROR` lines.
fn lambda_level_filter(name: &str) -> Option<LevelFilter> {
    match name.to_ascii_uppercase().as_str() {
        "TRACE" => Some(LevelFilter::TRACE),
        "DEBUG" => Some(LevelFilter::DEBUG),
        "INFO" => Some(LevelFilter::INFO),
        "WARN" => Some(LevelFilter::WARN),
        "ERROR" | "FATAL" => Some(LevelFilter::ERROR),
        _ => None,
    }
}

fn directives_for(level: LevelFilter) -> String {
    let mut directives = level.to_string().to_ascii_lowercase();
    let quiet = level
        .min(LevelFilter::INFO)
        .to_string()
        .to_ascii_lowercase();
    for target in QUIET_TARGETS {
        directives.push_str(&format!(",{target}={quiet}"));
    }
    directives
}

/// Installs the global subscriber, writing to standard output as Lambda expects. Does
/// nothing when a subscriber is already installed.
pub fn init() {
    let settings = settings(|name| env::var(name).ok());
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(&settings.directives);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(false);
    let installed = match settings.format {
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        Format::Text => builder
            .without_time()
            .fmt_fields(cordon_actions::text_fields())
            .try_init(),
    };
    if installed.is_ok()
        && let Some(warning) = settings.warning
    {
        tracing::warn!("{warning}");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings_from(pairs: &[(&str, &str)]) -> Settings {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        settings(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_to_text_at_info() {
        let settings = settings_from(&[]);
        assert_eq!(settings.format, Format::Text);
        assert!(settings.directives.starts_with("info,"));
        assert_eq!(settings.warning, None);
    }

    #[test]
    fn json_format_is_case_insensitive() {
        assert_eq!(
            settings_from(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).format,
            Format::Json
        );
        assert_eq!(
            settings_from(&[("AWS_LAMBDA_LOG_FORMAT", "json")]).format,
            Format::Json
        );
        assert_eq!(
            settings_from(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).format,
            Format::Text
        );
    }

    #[test]
    fn lambda_levels_map_to_tracing() {
        let cases = [
            ("TRACE", "trace,"),
            ("DEBUG", "debug,"),
            ("INFO", "info,"),
            ("WARN", "warn,"),
            ("ERROR", "error,"),
            ("FATAL", "error,"),
            ("debug", "debug,"),
        ];
        for (name, prefix) in cases {
            let settings = settings_from(&[("AWS_LAMBDA_LOG_LEVEL", name)]);
            assert!(
                settings.directives.starts_with(prefix),
                "{name}: {}",
                settings.directives
            );
        }
    }

    #[test]
    fn sdk_stays_at_info_when_debugging() {
        let settings = settings_from(&[("AWS_LAMBDA_LOG_LEVEL", "TRACE")]);
        assert!(settings.directives.contains("aws_smithy=info"));
        assert!(settings.directives.contains("hyper=info"));
    }

    #[test]
    fn sdk_follows_quieter_levels() {
        let settings = settings_from(&[("AWS_LAMBDA_LOG_LEVEL", "ERROR")]);
        assert!(settings.directives.contains("aws_smithy=error"));
    }

    #[test]
    fn unknown_level_warns_and_uses_info() {
        let settings = settings_from(&[("AWS_LAMBDA_LOG_LEVEL", "LOUD")]);
        assert!(settings.directives.starts_with("info,"));
        assert!(
            settings
                .warning
                .is_some_and(|warning| warning.contains("`LOUD`"))
        );
    }

    #[test]
    fn lambda_level_overrides_rust_log() {
        let settings = settings_from(&[
            ("AWS_LAMBDA_LOG_LEVEL", "WARN"),
            ("RUST_LOG", "cordon=trace"),
        ]);
        assert!(settings.directives.starts_with("warn,"));
    }

    #[test]
    fn rust_log_applies_without_lambda_level() {
        let settings = settings_from(&[("RUST_LOG", "cordon_lambda=debug")]);
        assert_eq!(settings.directives, "cordon_lambda=debug");
    }

    #[test]
    fn directives_parse() {
        for name in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] {
            let settings = settings_from(&[("AWS_LAMBDA_LOG_LEVEL", name)]);
            assert!(
                EnvFilter::try_new(&settings.directives).is_ok(),
                "{}",
                settings.directives
            );
        }
    }
}
