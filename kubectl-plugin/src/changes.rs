//! The merge patches behind `upgrade`, `pause`, `resume` and `rollback`: the documented spec
//! fields, nothing else. Pure functions of the cluster as read.

use serde_json::{Map, Value, json};

use crate::error::Error;

/// A patch to send and what it changes, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The JSON merge patch.
    pub patch: Value,
    /// One line per field changed: `spec.version: 0.4.0 -> 0.5.0`.
    pub summary: Vec<String>,
}

fn text<'a>(raw: &'a Value, pointer: &str) -> Option<&'a str> {
    raw.pointer(pointer).and_then(Value::as_str)
}

fn spec_version(raw: &Value) -> Result<&str, Error> {
    text(raw, "/spec/version")
        .ok_or_else(|| Error::Usage("the PravegaCluster has no spec.version".to_owned()))
}

/// `upgrade NAME VERSION [--canary N]`: `{"spec":{"version":VERSION}}`, with
/// `spec.upgrade.pauseAfterPods: N` only when `--canary` is given. `None` when nothing would
/// change.
pub fn upgrade(raw: &Value, version: &str, canary: Option<u32>) -> Result<Option<Change>, Error> {
    let before = spec_version(raw)?;
    let mut spec = Map::new();
    let mut summary = Vec::new();
    if before != version {
        spec.insert("version".to_owned(), json!(version));
        summary.push(format!("spec.version: {before} -> {version}"));
    }
    if let Some(n) = canary {
        let was = raw
            .pointer("/spec/upgrade/pauseAfterPods")
            .and_then(Value::as_i64);
        if was != Some(i64::from(n)) {
            spec.insert("upgrade".to_owned(), json!({ "pauseAfterPods": n }));
            summary.push(format!(
                "spec.upgrade.pauseAfterPods: {} -> {n} (the upgrade holds after {n} pod(s); resume with kubectl pravega resume)",
                was.map(|w| w.to_string()).unwrap_or_else(|| "unset".to_owned())
            ));
        }
    }
    if spec.is_empty() {
        return Ok(None);
    }
    Ok(Some(Change {
        patch: json!({ "spec": spec }),
        summary,
    }))
}

fn paused(raw: &Value) -> bool {
    raw.pointer("/spec/upgrade/paused")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// `pause NAME`: `{"spec":{"upgrade":{"paused":true}}}` (the emergency brake the README shows,
/// let through even while the webhook is down). `None` when already paused.
pub fn pause(raw: &Value) -> Option<Change> {
    (!paused(raw)).then(|| Change {
        patch: json!({"spec": {"upgrade": {"paused": true}}}),
        summary: vec!["spec.upgrade.paused: false -> true".to_owned()],
    })
}

/// `resume NAME`: `{"spec":{"upgrade":{"paused":false}}}`, and the canary hold
/// (`spec.upgrade.pauseAfterPods`) removed when one is set. `None` when neither is set.
pub fn resume(raw: &Value) -> Option<Change> {
    let mut upgrade = Map::new();
    let mut summary = Vec::new();
    if paused(raw) {
        upgrade.insert("paused".to_owned(), json!(false));
        summary.push("spec.upgrade.paused: true -> false".to_owned());
    }
    if let Some(n) = raw
        .pointer("/spec/upgrade/pauseAfterPods")
        .filter(|v| !v.is_null())
    {
        upgrade.insert("pauseAfterPods".to_owned(), Value::Null);
        summary.push(format!("spec.upgrade.pauseAfterPods: {n} -> unset"));
    }
    (!upgrade.is_empty()).then(|| Change {
        patch: json!({"spec": {"upgrade": upgrade}}),
        summary,
    })
}

/// `rollback NAME`: `spec.version` back to `status.currentVersion`, as the README's rollback
/// does. `None` when it is there already.
pub fn rollback(raw: &Value) -> Result<Option<Change>, Error> {
    let before = spec_version(raw)?;
    let current = text(raw, "/status/currentVersion").ok_or_else(|| {
        Error::Usage(
            "the cluster has no status.currentVersion yet: no version has run, so there is nothing to roll back to"
                .to_owned(),
        )
    })?;
    if before == current {
        return Ok(None);
    }
    Ok(Some(Change {
        patch: json!({"spec": {"version": current}}),
        summary: vec![format!(
            "spec.version: {before} -> {current} (status.currentVersion, the last version every member ran)"
        )],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "pravega.pravega.io/v1beta1", "kind": "PravegaCluster",
               "metadata": {"name": "example"}, "spec": spec, "status": status})
    }

    #[test]
    fn upgrade_sends_the_version_and_the_canary_only_when_asked() {
        let raw = cluster(
            json!({"version": "0.4.0"}),
            json!({"currentVersion": "0.4.0"}),
        );
        let c = upgrade(&raw, "0.5.0", None).unwrap().unwrap();
        assert_eq!(c.patch, json!({"spec": {"version": "0.5.0"}}));
        assert_eq!(c.summary, ["spec.version: 0.4.0 -> 0.5.0"]);
        let c = upgrade(&raw, "0.5.0", Some(1)).unwrap().unwrap();
        assert_eq!(
            c.patch,
            json!({"spec": {"version": "0.5.0", "upgrade": {"pauseAfterPods": 1}}})
        );
        assert_eq!(upgrade(&raw, "0.4.0", None).unwrap(), None);
    }

    #[test]
    fn pause_and_resume_flip_the_documented_field() {
        let running = cluster(json!({"version": "0.5.0"}), json!({}));
        assert_eq!(
            pause(&running).unwrap().patch,
            json!({"spec": {"upgrade": {"paused": true}}})
        );
        assert_eq!(resume(&running), None);
        let held = cluster(
            json!({"version": "0.5.0", "upgrade": {"paused": true, "pauseAfterPods": 2}}),
            json!({}),
        );
        assert_eq!(pause(&held), None);
        let r = resume(&held).unwrap();
        assert_eq!(
            r.patch,
            json!({"spec": {"upgrade": {"paused": false, "pauseAfterPods": null}}})
        );
        assert_eq!(r.summary.len(), 2);
    }

    #[test]
    fn rollback_sets_the_version_back_to_what_ran() {
        let failed = cluster(
            json!({"version": "0.5.0"}),
            json!({"currentVersion": "0.4.0", "targetVersion": "0.5.0"}),
        );
        let c = rollback(&failed).unwrap().unwrap();
        assert_eq!(c.patch, json!({"spec": {"version": "0.4.0"}}));
        let done = cluster(
            json!({"version": "0.4.0"}),
            json!({"currentVersion": "0.4.0"}),
        );
        assert_eq!(rollback(&done).unwrap(), None);
        let new = cluster(json!({"version": "0.4.0"}), json!({}));
        assert!(rollback(&new).is_err());
    }
}
