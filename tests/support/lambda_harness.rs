//! Runs the real `bootstrap` binary under the local Runtime API (`runtime_api.py`) against
//! the EC2 emulator, with resources created by `ec2_fixture.py`.
//!
//! Tests that need the emulator call [`emulator`] first. It returns `None` (the test then
//! returns early) when `AWS_ENDPOINT_URL` is unset, and panics instead when `CI` is set, so
//! that a CI run without the emulator fails rather than passes empty.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the emulator's virtualenv, which has boto3.
fn python() -> PathBuf {
    match std::env::var_os("CORDON_VENV") {
        Some(venv) => PathBuf::from(venv).join("bin/python"),
        None => repo_root().join(".venv/bin/python"),
    }
}

/// Returns the emulator endpoint, `None` to skip the test, or panics when `CI` is set and no
/// emulator is configured.
pub fn emulator() -> Option<String> {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but AWS_ENDPOINT_URL is not: start the emulator with \
             `tests/support/emulator.sh start` and export its variables before `cargo test`"
        ),
        _ => {
            eprintln!("skipped: AWS_ENDPOINT_URL is not set (start tests/support/emulator.sh)");
            None
        }
    }
}

/// Returns the `bootstrap` executable: `CORDON_BOOTSTRAP` when set, otherwise the result of
/// `cargo build -p cordon-lambda --bin bootstrap`, built once per test process. Building it
/// here keeps the binary in step with the sources, because `cargo test` of this package
/// does not build another package's binaries.
pub fn bootstrap() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("CORDON_BOOTSTRAP") {
            return PathBuf::from(path);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(repo_root())
            .args(["build", "-p", "cordon-lambda", "--bin", "bootstrap"])
            .args(["--message-format", "json-render-diagnostics"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cargo build of bootstrap failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|message| message["reason"] == "compiler-artifact")
            .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
            .find(|path| path.file_name().is_some_and(|name| name == "bootstrap"))
            .unwrap()
    })
}

/// A fresh folder under the target directory for one test.
pub fn scratch_dir(test: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let index = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("lambda-{test}-{}-{index}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_python(args: &[&std::ffi::OsStr]) -> Output {
    let output = Command::new(python())
        .current_dir(repo_root())
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{:?} failed:\n{}",
        args,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A VPC with an instance, its network interfaces and volumes, and a quarantine group.
pub struct Instance {
    /// The ids printed by `ec2_fixture.py setup`.
    pub ids: Value,
    path: PathBuf,
    dir: PathBuf,
}

impl Instance {
    /// Creates the resources; `extra` goes to `ec2_fixture.py setup`, e.g. `--enis 3`.
    pub fn create(dir: &Path, extra: &[&str]) -> Self {
        let fixture = repo_root().join("tests/support/ec2_fixture.py");
        let mut args = vec![fixture.as_os_str(), "setup".as_ref()];
        args.extend(extra.iter().map(|arg| std::ffi::OsStr::new(*arg)));
        let output = run_python(&args);
        let ids: Value = serde_json::from_slice(&output.stdout).unwrap();
        let name = format!("setup-{}.json", ids["instance_id"].as_str().unwrap());
        let path = dir.join(name);
        std::fs::write(&path, &output.stdout).unwrap();
        Self {
            ids,
            path,
            dir: dir.to_owned(),
        }
    }

    /// The instance id.
    pub fn id(&self) -> &str {
        self.ids["instance_id"].as_str().unwrap()
    }

    /// The quarantine group id.
    pub fn quarantine_group(&self) -> &str {
        self.ids["quarantine_group"].as_str().unwrap()
    }

    /// Writes `tests/fixtures/FIXTURE` rewritten for this instance and returns its path.
    pub fn event(&self, fixture: &str, finding_id: Option<&str>) -> PathBuf {
        let script = repo_root().join("tests/support/ec2_fixture.py");
        let source = repo_root().join("tests/fixtures").join(fixture);
        let mut args = vec![
            script.as_os_str(),
            "event".as_ref(),
            source.as_os_str(),
            self.path.as_os_str(),
        ];
        if let Some(id) = finding_id {
            args.extend(["--finding-id".as_ref(), std::ffi::OsStr::new(id)]);
        }
        let output = run_python(&args);
        let path = self.dir.join(format!("{}-{fixture}", self.id()));
        std::fs::write(&path, output.stdout).unwrap();
        path
    }

    /// Writes an SQS event whose records carry `bodies` and returns its path.
    pub fn sqs_event(&self, bodies: &[PathBuf]) -> PathBuf {
        let script = repo_root().join("tests/support/ec2_fixture.py");
        let mut args = vec![script.as_os_str(), "sqs".as_ref(), self.path.as_os_str()];
        args.extend(bodies.iter().map(|body| body.as_os_str()));
        let output = run_python(&args);
        let path = self.dir.join(format!("{}-sqs.json", self.id()));
        std::fs::write(&path, output.stdout).unwrap();
        path
    }

    /// The instance's groups per network interface, tags and snapshots.
    pub fn describe(&self) -> State {
        let script = repo_root().join("tests/support/ec2_fixture.py");
        let output = run_python(&[
            script.as_os_str(),
            "describe".as_ref(),
            self.path.as_os_str(),
        ]);
        State(serde_json::from_slice(&output.stdout).unwrap())
    }
}

/// The output of `ec2_fixture.py describe`.
#[derive(Clone, Debug, PartialEq)]
pub struct State(pub Value);

impl State {
    /// The sorted group ids of each network interface, in device order.
    pub fn groups(&self) -> Vec<Vec<String>> {
        self.0["network_interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|eni| {
                eni["groups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|group| group.as_str().unwrap().to_owned())
                    .collect()
            })
            .collect()
    }

    /// The value of an instance tag.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.0["tags"][key].as_str()
    }

    /// The number of volumes attached to the instance.
    pub fn volume_count(&self) -> usize {
        self.0["volumes"].as_array().unwrap().len()
    }

    /// The snapshots of the instance's volumes.
    pub fn snapshots(&self) -> &Vec<Value> {
        self.0["snapshots"].as_array().unwrap()
    }
}

/// What `runtime_api.py` recorded, and the function's output.
pub struct Run {
    /// The record (see `runtime_api.py`).
    pub record: Value,
    /// The function's standard output and error.
    pub log: String,
}

impl Run {
    /// The invocations, in delivery order.
    pub fn invocations(&self) -> &Vec<Value> {
        self.record["invocations"].as_array().unwrap()
    }

    /// The body of invocation `index`, asserting that it succeeded.
    pub fn response(&self, index: usize) -> &Value {
        let invocation = &self.invocations()[index];
        assert_eq!(
            invocation["result"], "response",
            "invocation {index}: {invocation:#}\nlog:\n{}",
            self.log
        );
        &invocation["body"]
    }

    /// The body of invocation `index`, asserting that it failed.
    pub fn error(&self, index: usize) -> &Value {
        let invocation = &self.invocations()[index];
        assert_eq!(
            invocation["result"], "error",
            "invocation {index}: {invocation:#}\nlog:\n{}",
            self.log
        );
        &invocation["body"]
    }
}

/// Runs `bootstrap` on `events` under the local Runtime API with the shipped rules and `env`
/// added to its environment; `QUARANTINE_SG` and the log settings come only from `env`. A test
/// without the emulator passes its own loopback `AWS_ENDPOINT_URL` in `env`.
pub fn run_function(dir: &Path, events: &[PathBuf], env: &[(&str, &str)], extra: &[&str]) -> Run {
    let record_path = dir.join("record.json");
    let log_path = dir.join("function.log");
    let script = repo_root().join("tests/support/runtime_api.py");
    let mut command = Command::new(python());
    command
        .current_dir(repo_root())
        .arg(script)
        .arg("--record")
        .arg(&record_path)
        .arg("--log")
        .arg(&log_path)
        .args(["--wait", "60"])
        .args(extra)
        .args(events)
        .arg("--")
        .arg(bootstrap())
        .env("CORDON_RULES", repo_root().join("rules"))
        .env_remove("QUARANTINE_SG")
        .env_remove("AWS_LAMBDA_LOG_FORMAT")
        .env_remove("AWS_LAMBDA_LOG_LEVEL");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        output.status.success(),
        "runtime_api.py failed:\n{}\nfunction log:\n{log}",
        String::from_utf8_lossy(&output.stderr)
    );
    let record = serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    Run { record, log }
}

/// Returns the `status` of each outcome in a report, keyed by action name in plan order.
pub fn action_statuses(report: &Value) -> Vec<(String, String)> {
    report["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|outcome| {
            (
                outcome["action"].as_str().unwrap().to_owned(),
                outcome["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
