//! Field management (server-side apply): which field manager owns which fields of an object,
//! kept in `metadata.managedFields` in the API server's own format, and what an apply does
//! with them: merge the applied configuration, remove what the applier stopped applying unless
//! someone else owns it, refuse (409) changing fields other managers own unless forced.
//!
//! Modelled on sigs.k8s.io/structured-merge-diff v4.4 (`fieldpath`, `typed`, `merge/update.go`)
//! as used by k8s.io/apiserver v0.32 `pkg/util/managedfields/internal`. The Kubernetes schema's
//! list types (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`)
//! come from a CRD's structural schema, and for built-in kinds from the table in
//! [`Types::builtin_list`] (the schemas the sandbox publishes for built-ins do not carry them).

mod apply;
mod compare;
mod fieldset;
mod types;

pub use apply::*;
pub use compare::*;
pub use fieldset::*;
pub use types::*;

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `manager`.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// `apiVersion` the fields are spelled in.
    pub api_version: String,
    /// `time` (RFC 3339, seconds).
    pub time: Option<String>,
    /// `subresource` (`""` for the main resource).
    pub subresource: String,
    /// `fieldsV1`.
    pub fields: FieldSet,
}

impl Entry {
    /// Whether `self` is the entry of this manager identity: manager, operation,
    /// subresource, and for updaters the apiVersion (`BuildManagerIdentifier`).
    pub fn is(&self, manager: &str, operation: &str, subresource: &str, api_version: &str) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == "Apply" || self.api_version == api_version)
    }

    /// How a conflict names this manager (`managedfields/internal/conflict.go` `printManager`:
    /// the identifier never carries the time).
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    fn from_json(v: &Value) -> Option<Entry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let operation = s("operation")?;
        if operation != "Apply" && operation != "Update" {
            return None;
        }
        if let Some(t) = v.get("fieldsType").and_then(Value::as_str)
            && t != "FieldsV1"
        {
            return None;
        }
        Some(Entry {
            manager: s("manager").unwrap_or_default(),
            operation,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").unwrap_or_default(),
            fields: FieldSet::from_fields_v1(v.get("fieldsV1").unwrap_or(&Value::Null)),
        })
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(m)
    }
}

/// Reads `metadata.managedFields` (entries that cannot be read are left out).
pub fn decode(obj: &Value) -> Vec<Entry> {
    obj.get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .map(|es| es.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

/// What a write's own `metadata.managedFields` asks for (k8s.io/apiserver v0.32
/// `managedfields/internal/fieldmanager.go` `Update`, and the "Clearing managedFields"
/// section of the server-side apply documentation): absent, empty or unreadable means "keep
/// the stored ones", a list with a single empty entry (`[{}]`) clears them, anything else
/// replaces them.
#[derive(Debug)]
pub enum Requested {
    /// Keep the stored entries.
    Keep,
    /// Clear them all.
    Reset,
    /// Use these.
    Replace(Vec<Entry>),
}

/// Takes `metadata.managedFields` out of a request's object.
pub fn take_requested(obj: &mut Value) -> Requested {
    let Some(v) = obj
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("managedFields"))
    else {
        return Requested::Keep;
    };
    let Some(items) = v.as_array() else {
        return Requested::Keep;
    };
    if items.len() == 1 && items[0].as_object().is_some_and(Map::is_empty) {
        return Requested::Reset;
    }
    let entries: Vec<Entry> = items.iter().filter_map(Entry::from_json).collect();
    if entries.is_empty() || entries.len() != items.len() {
        Requested::Keep
    } else {
        Requested::Replace(entries)
    }
}

/// Writes the entries into `obj`'s `metadata.managedFields` (left out when there are none),
/// without empty ones, in the API server's order: `Apply` before `Update`, then by time,
/// manager, apiVersion and subresource (`managedfields/internal/managedfields.go`
/// `sortEncodedManagedFields`).
pub fn encode(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (
            &a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                &b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let meta = crate::util::meta_mut(obj);
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// Records a non-apply write (create, update, patch) by `manager`: it owns what it changed,
/// which no other manager owns any longer; what it removed nobody owns
/// (structured-merge-diff `merge.Updater.Update`).
pub fn record_update(
    entries: &mut Vec<Entry>,
    changes: &Changes,
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
) {
    for e in entries.iter_mut() {
        e.fields.difference(&changes.removed);
        if !e.is(manager, "Update", subresource, api_version) {
            e.fields.difference(&changes.changed);
        }
    }
    if changes.changed.is_empty() {
        return;
    }
    match entries
        .iter_mut()
        .find(|e| e.is(manager, "Update", subresource, api_version))
    {
        Some(e) => {
            e.fields.union(&changes.changed);
            e.time = Some(now.to_string());
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
            subresource: subresource.to_string(),
            fields: changes.changed.clone(),
        }),
    }
}

/// One field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// How the owner is named (`"kubectl-edit" using apps/v1`).
    pub manager: String,
    /// The field (`.spec.replicas`).
    pub field: String,
}

/// The API server's answer to conflicting fields (`managedfields/internal/conflict.go`
/// `NewConflictError`: 409 `Conflict` with a `FieldManagerConflict` cause per field).
pub fn conflict_error(conflicts: &[Conflict]) -> crate::error::ApiError {
    let message = if let [c] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.field
        )
    } else {
        let mut by_manager: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for c in conflicts {
            by_manager.entry(&c.manager).or_default().push(&c.field);
        }
        let mut lines = Vec::new();
        for (m, fields) in by_manager {
            lines.push(format!("conflicts with {m}:"));
            lines.extend(fields.iter().map(|f| format!("- {f}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| {
            json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.field})
        })
        .collect();
    let mut e = crate::error::ApiError::custom(409, "Conflict", message);
    e.details = Some(json!({ "causes": causes }));
    e
}

/// An apply by `manager`, from the live object `before` to `after` (the configuration merged
/// in and pruned): conflicts with other managers (unless `force`, which takes the fields
/// away from them), then the applier owns exactly `applied`.
#[allow(clippy::too_many_arguments)]
pub fn record_apply(
    entries: &mut Vec<Entry>,
    changes: &Changes,
    applied: FieldSet,
    manager: &str,
    api_version: &str,
    subresource: &str,
    force: bool,
    now: &str,
) -> Result<(), Vec<Conflict>> {
    let mine = |e: &Entry| e.is(manager, "Apply", subresource, api_version);
    let mut conflicts = Vec::new();
    let mut taken = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if mine(e) {
            continue;
        }
        let both = e.fields.intersection(&changes.changed);
        if both.is_empty() {
            continue;
        }
        for p in both.paths() {
            conflicts.push(Conflict {
                manager: e.describe(),
                field: path_display(&p),
            });
        }
        taken.push((i, both));
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| (&a.manager, &a.field).cmp(&(&b.manager, &b.field)));
        return Err(conflicts);
    }
    for (i, both) in taken {
        entries[i].fields.difference(&both);
    }
    for e in entries.iter_mut() {
        if !mine(e) {
            e.fields.difference(&changes.removed);
        }
    }
    match entries.iter_mut().find(|e| mine(e)) {
        Some(e) => {
            e.fields = applied;
            e.api_version = api_version.to_string();
            if !changes.is_empty() || e.time.is_none() {
                e.time = Some(now.to_string());
            }
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: Some(now.to_string()),
            subresource: subresource.to_string(),
            fields: applied,
        }),
    }
    Ok(())
}

/// The manager of a write without `fieldManager`: the User-Agent up to its first `/`,
/// printable characters only, at most 128 bytes (k8s.io/apiserver v0.32
/// `endpoints/handlers/rest.go` `prefixFromUserAgent`).
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in prefix.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > 128 {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
