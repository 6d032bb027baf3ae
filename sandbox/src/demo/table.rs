//! What `kubectl get PravegaCluster` and `kubectl describe` show, as the demo prints it.

use super::NAME;
use pravega_crds::PravegaCluster;
use std::fmt::Write as _;

const COLUMNS: [&str; 6] = [
    "NAME",
    "VERSION",
    "DESIRED VERSION",
    "DESIRED MEMBERS",
    "READY MEMBERS",
    "AGE",
];

pub(super) fn table_header() -> String {
    format_row(&COLUMNS.map(str::to_owned))
}

pub(super) fn table_row(pk: &PravegaCluster) -> String {
    let s = pk.status.clone().unwrap_or_default();
    let age = pk
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| {
            let secs = k8s_openapi::jiff::Timestamp::now().as_second() - t.0.as_second();
            human_age(secs.max(0))
        })
        .unwrap_or_else(|| "<unknown>".to_owned());
    format_row(&[
        NAME.to_owned(),
        s.current_version.unwrap_or_default(),
        s.target_version.unwrap_or_default(),
        s.replicas.to_string(),
        s.ready_replicas.to_string(),
        age,
    ])
}

fn format_row(cells: &[String; 6]) -> String {
    let widths = [7, 7, 15, 15, 13, 3];
    let mut out = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            out.push_str(cell);
        } else {
            let _ = write!(out, "{cell:<width$}   ");
        }
    }
    out
}

/// Ages the way kubectl prints them: `45s`, `3m12s`, `2h5m`.
pub(super) fn human_age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// The `Status:` section of `kubectl describe PravegaCluster`, rendered the way kubectl renders
/// a custom resource.
pub(super) fn describe_status(pk: &PravegaCluster) -> String {
    let value = serde_json::to_value(pk.status.clone().unwrap_or_default()).unwrap_or_default();
    let mut out = String::from("Status:\n");
    describe_value(&value, 1, &mut out);
    out
}

fn title(key: &str) -> String {
    let mut out = String::new();
    for (i, c) in key.chars().enumerate() {
        if i == 0 {
            out.extend(c.to_uppercase());
        } else if c.is_uppercase() {
            out.push(' ');
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

fn describe_value(value: &serde_json::Value, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    match value {
        serde_json::Value::Object(map) => {
            let width = map.keys().map(|k| title(k).len() + 1).max().unwrap_or(0) + 2;
            for (k, v) in map {
                let label = format!("{}:", title(k));
                match v {
                    serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                        let _ = writeln!(out, "{indent}{label}");
                        describe_value(v, depth + 1, out);
                    }
                    other => {
                        let _ = writeln!(out, "{indent}{label:<width$}{}", scalar(other));
                    }
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                match item {
                    serde_json::Value::Object(_) => describe_value(item, depth, out),
                    other => {
                        let _ = writeln!(out, "{indent}{}", scalar(other));
                    }
                }
            }
        }
        other => {
            let _ = writeln!(out, "{indent}{}", scalar(other));
        }
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::SAMPLE;
    use pravega_crds::{ConditionType, reasons};
    #[test]
    fn ages_like_kubectl() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(185), "3m5s");
        assert_eq!(human_age(3600), "60m");
        assert_eq!(human_age(4 * 3600 + 120), "4h2m");
    }

    #[test]
    fn describe_renders_the_guides_shape() {
        let mut pk: PravegaCluster =
            serde_saphyr::from_str(SAMPLE).unwrap_or_else(|e| panic!("{e}"));
        let mut status = pravega_crds::PravegaClusterStatus {
            current_version: Some("0.4.0".into()),
            replicas: 8,
            current_replicas: 8,
            ready_replicas: 7,
            ..Default::default()
        };
        status.members.ready = vec!["example-bookie-1".into()];
        status.members.unready = vec!["example-bookie-0".into()];
        let t = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        );
        status.set_condition(
            ConditionType::Error,
            pravega_crds::ConditionStatus::True,
            reasons::UPGRADE_FAILED,
            "failed to sync bookkeeper version. pod example-bookie-0 is restarting",
            &t,
        );
        pk.status = Some(status);
        let text = describe_status(&pk);
        assert!(text.contains("  Current Version:"), "{text}");
        assert!(text.contains("    Message:"), "{text}");
        assert!(
            text.contains("failed to sync bookkeeper version. pod example-bookie-0 is restarting")
        );
        assert!(
            text.contains("    Unready:\n      example-bookie-0"),
            "{text}"
        );
        assert!(text.contains("  Ready Replicas:"), "{text}");
    }

    #[test]
    fn table_rows_align_with_the_header() {
        let header = table_header();
        assert!(
            header.starts_with(
                "NAME      VERSION   DESIRED VERSION   DESIRED MEMBERS   READY MEMBERS   AGE"
            ),
            "{header}"
        );
    }
}
