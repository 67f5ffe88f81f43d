//! The list of actions. Adding an action means writing its module and adding one line to
//! [`ACTIONS`].

use std::sync::Arc;

use async_trait::async_trait;
use cordon_engine::registry::{ActionCatalog, ActionSpec};
use serde_json::Value;

use crate::context::{ActionError, Context};
use crate::outcome::{Outcome, Status};
use crate::{isolate, release, snapshot, tag};

/// Every action, in the order `cordon` lists them.
static ACTIONS: &[&dyn Action] = &[
    &isolate::Isolate,
    &release::Release,
    &tag::Tag,
    &snapshot::Snapshot,
];

/// When an action runs relative to the others of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Changes network access. These actions run first, one after another in plan order.
    Containment,
    /// Preserves or labels evidence. These actions run after containment, concurrently.
    Evidence,
}

/// An action the executor can run: the engine's view of it plus execution.
#[async_trait]
pub trait Action: ActionSpec {
    /// When the action runs.
    fn phase(&self) -> Phase;

    /// Runs the action with rendered `params`. Resources and write calls go into `outcome`
    /// as they happen, so that they are reported even when a later step fails.
    ///
    /// # Errors
    ///
    /// Returns the failure that stopped the action; the executor records it as
    /// [`Status::Failed`].
    async fn execute(
        &self,
        context: &Context<'_>,
        params: &Value,
        outcome: &mut Outcome,
    ) -> Result<Status, ActionError>;

    /// Returns true when running the action with `first` and then with `second` leaves the
    /// same state as running it with `first` alone. The executor skips a second containment
    /// action whose parameters differ in effect from one that already succeeded.
    fn same_effect(&self, first: &Value, second: &Value) -> bool {
        first == second
    }
}

/// Returns the action called `name`.
pub(crate) fn find(name: &str) -> Option<&'static dyn Action> {
    ACTIONS.iter().copied().find(|action| action.name() == name)
}

struct Catalog;

impl ActionCatalog for Catalog {
    fn get(&self, name: &str) -> Option<&dyn ActionSpec> {
        find(name).map(|action| action as &dyn ActionSpec)
    }

    fn names(&self) -> Vec<&'static str> {
        ACTIONS.iter().map(|action| action.name()).collect()
    }
}

/// Returns the catalog of EC2 actions, to load rules with.
pub fn catalog() -> Arc<dyn ActionCatalog> {
    Arc::new(Catalog)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names = catalog().names();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn permissions_are_ec2_actions() {
        for name in catalog().names() {
            let spec = catalog().get(name).map(|spec| spec.permissions()).unwrap();
            assert!(!spec.is_empty(), "{name} declares no permissions");
            for permission in spec {
                assert!(permission.starts_with("ec2:"), "{name}: {permission}");
            }
        }
    }
}
