//! Settings that must never change once a cluster holds data, and how a change of them is
//! refused.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PersistentVolumeClaimSpec;

use crate::types::PravegaClusterSpec;
use crate::version::shorten;

use super::{Refusal, invalid};

/// The settings of a spec that must never change once a cluster exists: the segment container
/// count (data is partitioned by it), the kind of tier 2 (the data lives there), and the volume
/// claim templates (StatefulSets cannot change them, and the bookies' data is on those volumes).
/// The webhook compares those of the old and new spec; the operator compares the new spec's
/// with those it recorded on the Segment Store StatefulSet when it last applied it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FixedSettings {
    /// The Segment Store's and the Controller's container counts (the legacy key wins, as
    /// Pravega reads them; the images' shipped default is 4).
    pub container_counts: BTreeMap<String, String>,
    /// `filesystem`, `ecs` or `hdfs`.
    pub tier2: String,
    /// Volume claim templates by field.
    pub claim_templates: BTreeMap<String, Option<PersistentVolumeClaimSpec>>,
}

/// Annotation on the Segment Store StatefulSet: the [`FixedSettings`] it was applied with.
pub const FIXED_SETTINGS_KEY: &str = "pravega.pravega.io/fixed-settings";

/// The container-count settings: how they are named in messages, and the keys the Segment
/// Store or the Controller reads (the legacy key first: it wins when both are set).
const CONTAINER_COUNTS: [(&str, [&str; 2]); 2] = [
    (
        "pravegaservice.containerCount / pravegaservice.container.count",
        [
            "pravegaservice.containerCount",
            "pravegaservice.container.count",
        ],
    ),
    (
        "controller.containerCount / controller.container.count",
        ["controller.containerCount", "controller.container.count"],
    ),
];

/// The container count a spec gives, or the images' shipped default of 4.
fn container_count<'a>(spec: &'a PravegaClusterSpec, keys: [&str; 2]) -> &'a str {
    keys.iter()
        .find_map(|k| spec.pravega.options.get(*k))
        .map(|v| v.trim())
        .unwrap_or("4")
}

/// The volume claim templates of a spec, by field.
fn claim_templates(
    spec: &PravegaClusterSpec,
) -> [(&'static str, Option<&PersistentVolumeClaimSpec>); 4] {
    let s = &spec.bookkeeper.storage;
    [
        (
            "spec.bookkeeper.storage.ledgerVolumeClaimTemplate",
            s.ledger_volume_claim_template.as_deref(),
        ),
        (
            "spec.bookkeeper.storage.journalVolumeClaimTemplate",
            s.journal_volume_claim_template.as_deref(),
        ),
        (
            "spec.bookkeeper.storage.indexVolumeClaimTemplate",
            s.index_volume_claim_template.as_deref(),
        ),
        (
            "spec.pravega.cacheVolumeClaimTemplate",
            spec.pravega.cache_volume_claim_template.as_deref(),
        ),
    ]
}

/// The [`FixedSettings`] of a spec.
pub fn fixed_settings(spec: &PravegaClusterSpec) -> FixedSettings {
    FixedSettings {
        container_counts: CONTAINER_COUNTS
            .iter()
            .map(|(label, keys)| ((*label).to_owned(), container_count(spec, *keys).to_owned()))
            .collect(),
        tier2: spec.pravega.tier2().kind().field().to_owned(),
        claim_templates: claim_templates(spec)
            .into_iter()
            .map(|(field, t)| (field.to_owned(), t.cloned()))
            .collect(),
    }
}

fn count_changed(keys: &str, was: &str, is: &str) -> Refusal {
    invalid(format!(
        "spec.pravega.options: the segment container count ({keys}) cannot change once the cluster exists (it is {}; the request makes it {}); Pravega's data is partitioned by it",
        shorten(was),
        shorten(is)
    ))
}

fn tier2_changed(was: &str, is: &str) -> Refusal {
    invalid(format!(
        "spec.pravega.tier2: the kind of tier 2 storage cannot change once the cluster exists (it is {was}; the request makes it {is}); the cluster's data lives there"
    ))
}

fn claim_changed(field: &str) -> Refusal {
    invalid(format!(
        "{field} cannot change once the cluster exists: StatefulSets cannot change their volume claim templates, and existing volumes keep their size and class; create a new cluster to use other volumes"
    ))
}

/// Refuses a change of [`FixedSettings`], naming the setting (the operator's check, against
/// what it recorded when it last applied the workloads).
pub fn check_fixed(before: &FixedSettings, after: &FixedSettings) -> Result<(), Refusal> {
    for (keys, was) in &before.container_counts {
        let is = after.container_counts.get(keys);
        if is != Some(was) {
            return Err(count_changed(
                keys,
                was,
                is.map(String::as_str).unwrap_or("unset"),
            ));
        }
    }
    if before.tier2 != after.tier2 {
        return Err(tier2_changed(&before.tier2, &after.tier2));
    }
    for (field, template) in &before.claim_templates {
        if after.claim_templates.get(field) != Some(template) {
            return Err(claim_changed(field));
        }
    }
    Ok(())
}

/// The same rule between two specs (admission UPDATE), reading them in place.
pub fn check_change(old: &PravegaClusterSpec, new: &PravegaClusterSpec) -> Result<(), Refusal> {
    for (label, keys) in CONTAINER_COUNTS {
        let (was, is) = (container_count(old, keys), container_count(new, keys));
        if was != is {
            return Err(count_changed(label, was, is));
        }
    }
    let (was, is) = (old.pravega.tier2().kind(), new.pravega.tier2().kind());
    if was != is {
        return Err(tier2_changed(was.field(), is.field()));
    }
    for ((field, before), (_, after)) in claim_templates(old).into_iter().zip(claim_templates(new))
    {
        if before != after {
            return Err(claim_changed(field));
        }
    }
    Ok(())
}
