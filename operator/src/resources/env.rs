//! The environment of each component's container that depends on the version it runs (the
//! image contract's row): JVM options, bookie switches and tier 2 variables.

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};
use pravega_crds::contract::{BookieJvmVariables, EcsVariables, ImageContract, contract};
use pravega_crds::jvm::{bookie_jvm, default_cache_size, pravega_jvm};
use pravega_crds::names::Component;
use pravega_crds::{PravegaClusterSpec, Tier2};

use super::{BOOKIE_ADMIN_PORT, Owner, java_opts};

pub(super) fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

/// `POD_NAME` and `POD_NAMESPACE` from the downward API (init_kubernetes.sh needs both).
pub(super) fn downward_env() -> Vec<EnvVar> {
    [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ]
    .into_iter()
    .map(|(name, path)| EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    })
    .collect()
}

/// The environment of a bookie at the contract `row`.
pub(super) fn bookie_env(spec: &PravegaClusterSpec, row: &ImageContract) -> Vec<EnvVar> {
    let b = &row.bookie;
    let mut out = Vec::new();
    if spec.bookkeeper.auto_recovery {
        out.push(env(b.autorecovery_switch, "true"));
    }
    out.push(env(
        "BK_useHostNameAsBookieID",
        b.use_host_name_as_bookie_id.to_string(),
    ));
    if b.http_admin.is_some() {
        // ServerConfiguration httpServerEnabled/httpServerPort (BookKeeper 4.6+).
        out.push(env("BK_httpServerEnabled", "true"));
        out.push(env("BK_httpServerPort", BOOKIE_ADMIN_PORT.to_string()));
    }
    // Plain variables, not BK_BOOKIE_*: apply-config-from-env.py would write those unquoted into
    // conf/bkenv.sh, which bash then fails to run (bin/bookkeeper aborts under `set -e`, 4.9+).
    let jvm = bookie_jvm(spec);
    match b.jvm_variables {
        BookieJvmVariables::ExtraOnly => {
            out.push(env("BOOKIE_EXTRA_OPTS", jvm.all().join(" ")));
        }
        BookieJvmVariables::Split => {
            for (name, flags) in [
                ("BOOKIE_MEM_OPTS", &jvm.memory),
                ("BOOKIE_GC_OPTS", &jvm.gc),
                ("BOOKIE_GC_LOGGING_OPTS", &jvm.gc_logging),
                ("BOOKIE_EXTRA_OPTS", &jvm.extra),
            ] {
                // Empty means BookKeeper's own default (`${BOOKIE_GC_OPTS:-...}`).
                if !flags.is_empty() {
                    out.push(env(name, flags.join(" ")));
                }
            }
        }
    }
    out
}

/// `JAVA_OPTS` of the Controller or Segment Store at `version`: the JVM flags, the operator's
/// properties, then the spec's options (the cluster name last, so that it always matches the
/// bookies' `PRAVEGA_CLUSTER_NAME`).
pub fn pravega_java_opts(
    name: &str,
    spec: &PravegaClusterSpec,
    component: Component,
    version: &str,
) -> String {
    let row = contract(version);
    let mut parts = pravega_jvm(spec, component);
    if component == Component::SegmentStore {
        if let Some(health) = row.pravega.health {
            // ServiceConfig@v0.10.0: the REST (health) server binds localhost by default.
            parts.push(format!("-D{}=0.0.0.0", health.segment_store_host_property));
        }
        if spec.pravega.debug_logging {
            // config/logback.xml: the Segment Store logs at ${log.level:-INFO}.
            parts.push("-Dlog.level=DEBUG".to_owned());
        }
        if let Some((property, bytes)) = default_cache_size(spec, version) {
            parts.push(format!("-D{property}={bytes}"));
        }
    }
    let options = java_opts(&spec.pravega.options);
    if !options.is_empty() {
        parts.push(options);
    }
    // ServiceConfig.CLUSTER_NAME (pravegaservice.clusterName, 0.4 to 0.13): the Segment Store
    // reads its cluster name only from this property, not from CLUSTER_NAME.
    parts.push(format!("-Dpravegaservice.clusterName={name}"));
    parts.join(" ")
}

/// The environment of a Segment Store at `version`.
pub(super) fn segmentstore_env(owner: &Owner<'_>, version: &str) -> Vec<EnvVar> {
    let spec = owner.spec;
    let mut out = downward_env();
    out.push(env_java_opts(owner, Component::SegmentStore, version));
    if let Tier2::Ecs(ecs) = spec.pravega.tier2() {
        let endpoint = ecs.endpoint().unwrap_or_default().to_owned();
        match contract(version).pravega.ecs {
            // init_tier2.sh@v0.6.0 (entrypoint.sh@v0.4.0).
            EcsVariables::Url => {
                out.push(env("EXTENDEDS3_URI", endpoint));
                out.push(env("EXTENDEDS3_ROOT", ecs.root_path().unwrap_or("/")));
                if let Some(ns) = &ecs.namespace {
                    out.push(env("EXTENDEDS3_NAMESPACE", ns.clone()));
                }
            }
            // init_tier2.sh@v0.7.0..v0.13.0: the namespace goes into the configuration URI.
            EcsVariables::ConfigUri => {
                let uri = match (&ecs.config_uri, &ecs.namespace) {
                    (Some(uri), _) => uri.clone(),
                    (None, Some(ns)) => {
                        let sep = if endpoint.contains('?') { '&' } else { '?' };
                        format!("{endpoint}{sep}namespace={ns}")
                    }
                    (None, None) => endpoint,
                };
                out.push(env("EXTENDEDS3_CONFIGURI", uri));
                out.push(env("EXTENDEDS3_PREFIX", ecs.root_path().unwrap_or("/")));
            }
        }
    }
    out
}

pub(super) fn env_java_opts(owner: &Owner<'_>, component: Component, version: &str) -> EnvVar {
    env(
        "JAVA_OPTS",
        pravega_java_opts(owner.name, owner.spec, component, version),
    )
}
