//! Outcomes of executed actions, serialized into the CLI output and the Lambda response.

use cordon_engine::plan::printable;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// The result of an action, or of one resource inside an action.
///
/// Serialized with a `status` field (`changed`, `would_change`, `already_done`, `skipped`,
/// `failed`, `not_started`) next to the fields of the variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// The action made changes.
    Changed,
    /// A dry run found changes to make and made none.
    WouldChange,
    /// Everything was already in the requested state, so nothing was written.
    AlreadyDone,
    /// The action does not apply, e.g. the instance does not exist.
    Skipped {
        /// The reason it does not apply.
        reason: String,
    },
    /// The action failed.
    Failed {
        /// The EC2 error code (`UnauthorizedOperation`, `InvalidGroup.NotFound`, ...) or one of
        /// cordon's own codes in snake case (`egress_not_empty`, `requester_managed`, ...).
        code: String,
        /// A description of the failure, with the resource ids involved.
        message: String,
    },
    /// The action was never started, e.g. because too little time was left.
    NotStarted {
        /// The reason it was not started.
        reason: String,
    },
}

impl Status {
    /// Creates a [`Status::Skipped`].
    pub fn skipped(reason: impl Into<String>) -> Self {
        Self::Skipped {
            reason: reason.into(),
        }
    }

    /// Creates a [`Status::Failed`].
    pub fn failed(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Failed {
            code: code.into(),
            message: message.into(),
        }
    }

    /// Creates a [`Status::NotStarted`].
    pub fn not_started(reason: impl Into<String>) -> Self {
        Self::NotStarted {
            reason: reason.into(),
        }
    }

    /// Returns true for [`Status::Failed`].
    pub fn is_failed(&self) -> bool {
        matches!(self, Self::Failed { .. })
    }

    /// Returns `changed`, or `would_change` in a dry run.
    pub fn change(dry_run: bool) -> Self {
        if dry_run {
            Self::WouldChange
        } else {
            Self::Changed
        }
    }

    /// Returns the serialized name of the variant.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::WouldChange => "would_change",
            Self::AlreadyDone => "already_done",
            Self::Skipped { .. } => "skipped",
            Self::Failed { .. } => "failed",
            Self::NotStarted { .. } => "not_started",
        }
    }

    /// Returns the reason or error message of the variant, when it has one.
    pub fn detail(&self) -> Option<String> {
        match self {
            Self::Skipped { reason } | Self::NotStarted { reason } => Some(reason.clone()),
            Self::Failed { code, message } => Some(format!("{code}: {message}")),
            Self::Changed | Self::WouldChange | Self::AlreadyDone => None,
        }
    }
}

/// The kind of an AWS resource named in an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// An EC2 instance (`i-...`).
    Instance,
    /// An elastic network interface (`eni-...`).
    NetworkInterface,
    /// An EBS volume (`vol-...`).
    Volume,
    /// An EBS snapshot (`snap-...`).
    Snapshot,
    /// A security group (`sg-...`).
    SecurityGroup,
}

/// One resource an action read, changed or would change, with what happened to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resource {
    /// The resource id, e.g. `eni-0123456789abcdef0`.
    pub id: String,
    /// The kind of resource the id names.
    pub kind: ResourceKind,
    /// The result for this resource.
    #[serde(flatten)]
    pub status: Status,
    /// More about the change, e.g. the groups before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Resource {
    /// Creates a resource entry without detail.
    pub fn new(id: impl Into<String>, kind: ResourceKind, status: Status) -> Self {
        Self {
            id: id.into(),
            kind,
            status,
            detail: None,
        }
    }

    /// Adds a detail line.
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// An EC2 API call that changes state, with its request parameters under their API names.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiCall {
    /// The operation name, e.g. `ModifyNetworkInterfaceAttribute`.
    pub operation: String,
    /// The request parameters, e.g. `{"NetworkInterfaceId": "eni-...", "Groups": ["sg-..."]}`.
    pub params: Value,
}

impl ApiCall {
    /// Creates a call record.
    pub fn new(operation: &str, params: Value) -> Self {
        Self {
            operation: operation.to_owned(),
            params,
        }
    }
}

/// The result of one planned action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// The action name, e.g. `isolate`.
    pub action: String,
    /// The rule that planned the action; absent for `cordon release`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// The overall result.
    #[serde(flatten)]
    pub status: Status,
    /// Every resource the action changed, would change, or found already done.
    pub resources: Vec<Resource>,
    /// The write calls made, in order; in a dry run, the write calls that would be made.
    pub calls: Vec<ApiCall>,
}

impl Outcome {
    /// Creates an outcome with no resources or calls.
    pub fn new(action: &str, rule_id: Option<&str>, status: Status) -> Self {
        Self {
            action: action.to_owned(),
            rule_id: rule_id.map(str::to_owned),
            status,
            resources: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// Returns true when the action failed.
    pub fn failed(&self) -> bool {
        self.status.is_failed()
    }

    /// Renders the outcome as indented lines of text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let rule = self
            .rule_id
            .as_deref()
            .map(|rule| format!(" (rule {rule})"))
            .unwrap_or_default();
        let _ = write!(out, "{}{rule}: {}", self.action, self.status.name());
        if let Some(detail) = self.status.detail() {
            let _ = write!(out, ": {}", printable(&detail));
        }
        out.push('\n');
        for resource in &self.resources {
            let id = printable(&resource.id);
            let _ = write!(out, "  {id} {}", resource.status.name());
            if let Some(detail) = resource.status.detail() {
                let _ = write!(out, ": {}", printable(&detail));
            }
            if let Some(detail) = &resource.detail {
                let _ = write!(out, " ({})", printable(detail));
            }
            out.push('\n');
        }
        for call in &self.calls {
            let _ = writeln!(out, "  call {} {}", call.operation, call.params);
        }
        out
    }
}

/// Sums up the outcomes of an action's resources: the first failure's code with every failed
/// id, otherwise `changed` (or `would_change`) when a resource changed, otherwise
/// `already_done`. `not_done` names what a failed resource lacks, e.g. `volumes not
/// snapshotted`.
pub(crate) fn summarize(resources: &[Resource], dry_run: bool, not_done: &str) -> Status {
    let failed: Vec<&Resource> = resources
        .iter()
        .filter(|resource| resource.status.is_failed())
        .collect();
    if let Some(Status::Failed { code, .. }) = failed.first().map(|resource| &resource.status) {
        let ids: Vec<String> = failed
            .iter()
            .map(|resource| format!("`{}`", resource.id))
            .collect();
        return Status::failed(
            code.clone(),
            format!(
                "{} of {} {not_done}: {}",
                failed.len(),
                resources.len(),
                ids.join(", ")
            ),
        );
    }
    changed_or_done(resources, dry_run)
}

/// Returns `changed` (or `would_change` in a dry run) when a resource changed, otherwise
/// `already_done`. Callers check for failed resources first.
pub(crate) fn changed_or_done(resources: &[Resource], dry_run: bool) -> Status {
    let changed = resources
        .iter()
        .any(|resource| matches!(resource.status, Status::Changed | Status::WouldChange));
    if changed {
        Status::change(dry_run)
    } else {
        Status::AlreadyDone
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn summary_names_every_failed_resource() {
        let volume = |id: &str, status| Resource::new(id, ResourceKind::Volume, status);
        let resources = [
            volume("vol-1", Status::Changed),
            volume("vol-2", Status::failed("IncorrectState", "busy")),
            volume("vol-3", Status::failed("other", "x")),
        ];
        let status = summarize(&resources, false, "volumes not snapshotted");
        assert_eq!(
            status,
            Status::failed(
                "IncorrectState",
                "2 of 3 volumes not snapshotted: `vol-2`, `vol-3`"
            )
        );
        let done = [volume("vol-1", Status::AlreadyDone)];
        assert_eq!(summarize(&done, true, "-"), Status::AlreadyDone);
        let changed = [volume("vol-1", Status::WouldChange)];
        assert_eq!(summarize(&changed, true, "-"), Status::WouldChange);
    }

    #[test]
    fn status_serializes_flat() {
        let mut outcome = Outcome::new("isolate", Some("tor"), Status::failed("X", "y"));
        outcome.resources.push(Resource::new(
            "eni-1",
            ResourceKind::NetworkInterface,
            Status::skipped("z"),
        ));
        let value = serde_json::to_value(&outcome).unwrap();
        assert_eq!(value["status"], json!("failed"));
        assert_eq!(value["code"], json!("X"));
        assert_eq!(value["message"], json!("y"));
        assert_eq!(value["resources"][0]["kind"], json!("network_interface"));
        assert_eq!(value["resources"][0]["status"], json!("skipped"));
        assert_eq!(value["resources"][0]["reason"], json!("z"));
    }

    #[test]
    fn unit_status_has_only_name() {
        let value = serde_json::to_value(Status::AlreadyDone).unwrap();
        assert_eq!(value, json!({"status": "already_done"}));
    }

    #[test]
    fn rule_id_absent_when_none() {
        let value = serde_json::to_value(Outcome::new("release", None, Status::Changed)).unwrap();
        assert!(value.get("rule_id").is_none());
    }
}
