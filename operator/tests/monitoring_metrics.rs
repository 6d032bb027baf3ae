//! Every metric the Grafana dashboard and the PrometheusRule in `deploy/monitoring/` query is
//! exposed by the real binaries: the operator and the webhook are started on the sandbox, a
//! cluster is created through the webhook, and both `/metrics` are scraped.

mod support;
mod support_upgrade;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// Metrics another change is adding to the operator now. The dashboard has one panel for
/// `pravega_operator_upgrade_blocked` ("Upgrade blocked by (reason)"), which shows data once the
/// operator exports it; until then it is skipped here, and nothing else may use it (checked below).
const PENDING: &[&str] = &["pravega_operator_upgrade_blocked"];
const PENDING_PANEL: &str = "Upgrade blocked by (reason)";

/// The metric names in a PromQL expression: identifiers starting with `pravega_`.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\bpravega_[a-z0-9_]*[a-z0-9]").expect("regex");
    re.find_iter(expr).map(|m| m.as_str().to_owned()).collect()
}

/// Every PromQL expression of the dashboard (panel targets, the variables' queries), with the
/// title of the panel it belongs to.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn panels(v: &Value, out: &mut Vec<(String, String)>) {
        for p in v.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or_default().to_owned();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((title.clone(), e.to_owned()));
                }
            }
            panels(&p["panels"], out);
        }
    }
    panels(&dashboard["panels"], &mut out);
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for q in [&var["query"]["query"], &var["definition"], &var["query"]] {
            if let Some(e) = q.as_str() {
                out.push((format!("variable {}", var["name"]), e.to_owned()));
            }
        }
    }
    out
}

/// Every alert expression of the PrometheusRule, with the alert's name.
fn rule_queries(rule: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in rule["spec"]["groups"].as_array().into_iter().flatten() {
        for r in g["rules"].as_array().into_iter().flatten() {
            if let Some(e) = r["expr"].as_str() {
                let name = r["alert"].as_str().or(r["record"].as_str()).unwrap_or("?");
                out.push((name.to_owned(), e.to_owned()));
            }
        }
    }
    out
}

/// The sample names an OpenMetrics exposition offers: every sample line's name, and for every
/// declared family the names its type implies (a counter `x` is queried as `x_total`, a
/// histogram as `x_bucket`, `x_sum`, `x_count`), so that a family with no sample yet counts.
fn exposed(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            match kind {
                "counter" => {
                    out.insert(format!("{name}_total"));
                }
                "histogram" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        out.insert(format!("{name}{suffix}"));
                    }
                }
                _ => {
                    out.insert(name.to_owned());
                }
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.insert(name);
        }
    }
    out
}

#[test]
fn names_are_read_out_of_expressions() {
    assert_eq!(
        metric_names(
            r#"time() - max by (namespace) (pravega_operator_upgrade_last_progress_timestamp_seconds{cluster=~"$cluster"}) > pravega_operator_upgrade_timeout_seconds / 2"#
        ),
        BTreeSet::from([
            "pravega_operator_upgrade_last_progress_timestamp_seconds".to_owned(),
            "pravega_operator_upgrade_timeout_seconds".to_owned()
        ])
    );
    let text = "# TYPE pravega_webhook_requests counter\n# TYPE x_seconds histogram\nup 1\n";
    let names = exposed(text);
    for n in ["pravega_webhook_requests_total", "x_seconds_bucket", "up"] {
        assert!(names.contains(n), "{n}: {names:?}");
    }
    assert!(!names.contains("pravega_webhook_requests"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_metric_the_dashboard_and_the_alerts_query_is_exposed() {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_file("deploy/monitoring/grafana-dashboard.json"))
            .expect("dashboard file"),
    )
    .expect("the dashboard is JSON");
    let rule: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(workspace_file("deploy/monitoring/prometheusrule.yaml"))
            .expect("rule file"),
    )
    .expect("the PrometheusRule is YAML");
    assert_eq!(rule["kind"], "PrometheusRule");
    let dashboard_queries = dashboard_queries(&dashboard);
    let rule_queries = rule_queries(&rule);
    let alerts: BTreeSet<&str> = rule_queries.iter().map(|(n, _)| n.as_str()).collect();
    for alert in [
        "PravegaUpgradeFailed",
        "PravegaUpgradeNotProgressing",
        "PravegaWebhookCertificateExpiring",
        "PravegaWebhookErrors",
        "PravegaOperatorNoLeader",
    ] {
        assert!(alerts.contains(alert), "{alert} missing: {alerts:?}");
    }

    // The pending metric is only in its own panel, and no alert depends on it.
    for (title, expr) in dashboard_queries.iter().chain(&rule_queries) {
        let uses_pending = metric_names(expr)
            .iter()
            .any(|n| PENDING.contains(&n.as_str()));
        assert!(
            !uses_pending || title == PENDING_PANEL,
            "{title} uses a pending metric: {expr}"
        );
    }

    let mut referenced = BTreeSet::new();
    for (_, expr) in dashboard_queries.iter().chain(&rule_queries) {
        referenced.extend(metric_names(expr));
    }
    assert!(
        referenced.len() >= 15,
        "the dashboard and the rules query the operator and the webhook: {referenced:?}"
    );
    let wanted: BTreeSet<String> = referenced
        .into_iter()
        .filter(|n| !PENDING.contains(&n.as_str()))
        .collect();

    let env = Env::start().await;
    let webhook = Webhook::start(&env.sandbox, &env.client, &webhook_bin()).await;
    let op = Operator::start(OPERATOR, env.kubeconfig(), &[]).await;
    env.apply_yaml(support::TIER2_CLAIM).await;
    let sample = workspace_file("deploy/sample/pravegacluster.yaml");
    env.kubectl_ok(&["apply", "-f", sample.to_str().expect("utf-8")])
        .await;
    env.wait_cluster("example", &[("VERSION", "0.4.0"), ("READY MEMBERS", "7")])
        .await;
    // Per-upgrade series exist while an upgrade is in flight: start one, and collect what both
    // binaries expose until every queried name was seen.
    env.set_version("example", "0.5.0").await;
    let seen = std::sync::Mutex::new(BTreeSet::<String>::new());
    eventually(
        "every queried metric exposed",
        Duration::from_secs(60),
        || async {
            let (_, operator) = op.get("/metrics").await;
            let (_, hook) = http_get(webhook.metrics_addr(), "/metrics").await;
            let mut seen = seen.lock().expect("seen");
            seen.extend(exposed(&operator));
            seen.extend(exposed(&hook));
            let missing: Vec<&String> = wanted.iter().filter(|n| !seen.contains(*n)).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "queried but not exposed: {missing:?}\noperator:\n{operator}\nwebhook:\n{hook}"
                ))
            }
        },
    )
    .await;
    env.wait_cluster("example", &[("VERSION", "0.5.0"), ("READY MEMBERS", "7")])
        .await;

    assert_eq!(op.terminate().await, Some(0));
    webhook.stop().await;
    env.shutdown().await;
}
