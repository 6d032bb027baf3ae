//! Rules on sizing: resource requests within limits, JVM heaps and direct memory that fit the
//! memory limit, flags the image's Java accepts, and a cache that fits.

use k8s_openapi::api::core::v1::ResourceRequirements;

use crate::contract;
use crate::jvm::{
    cache_size_option, effective_resources, jvm_field, jvm_flags, memory_of, refused_flag,
    resources_field,
};
use crate::names::Component;
use crate::quantity::{Bytes, parse_quantity};
use crate::types::PravegaClusterSpec;
use crate::version::shorten;

use super::{Refusal, invalid};

pub(super) fn check_resources(spec: &PravegaClusterSpec, c: Component) -> Result<(), Refusal> {
    let r: &ResourceRequirements = effective_resources(spec, c);
    for (part, map) in [("requests", &r.requests), ("limits", &r.limits)] {
        for (name, q) in map.iter().flatten() {
            parse_quantity(&q.0)
                .map_err(|e| invalid(format!("{}.{part}.{name}: {e}", resources_field(c))))?;
        }
    }
    Ok(())
}

/// The memory limit of a component's container, when it has one.
fn memory_limit(spec: &PravegaClusterSpec, c: Component) -> Option<u64> {
    let r = effective_resources(spec, c);
    let q = r.limits.as_ref()?.get("memory")?;
    crate::quantity::parse_memory(&q.0).ok()
}

fn component_name(c: Component) -> &'static str {
    match c {
        Component::Bookkeeper => "bookie",
        Component::Controller => "Controller",
        Component::SegmentStore => "Segment Store",
    }
}

fn java_of(spec: &PravegaClusterSpec, c: Component) -> u8 {
    let row = contract::contract(&spec.version);
    match c {
        Component::Bookkeeper => row.bookie.java,
        _ => row.pravega.java,
    }
}

pub(super) fn check_jvm(spec: &PravegaClusterSpec, c: Component) -> Result<(), Refusal> {
    let flags = jvm_flags(spec, c);
    let field = jvm_field(c);
    let java = java_of(spec, c);
    if let Some(flag) = refused_flag(&flags, java) {
        return Err(invalid(format!(
            "{field}: {} images of version {} run Java {java}, which refuses {flag} (\"Unrecognized VM option\") and would not start; remove it or add -XX:+IgnoreUnrecognizedVMOptions",
            component_name(c),
            shorten(&spec.version),
        )));
    }
    let (heap, direct) =
        memory_of(&flags).map_err(|(flag, e)| invalid(format!("{field}: {flag}: {e}")))?;
    let Some(limit) = memory_limit(spec, c) else {
        return Ok(());
    };
    let limit_field = format!("{}.limits.memory", resources_field(c));
    if let Some(heap) = heap {
        if heap >= limit {
            return Err(invalid(format!(
                "{field}: the {} heap (-Xmx, {}) must be smaller than the container's memory limit ({limit_field}, {}); lower -Xmx or raise the limit",
                component_name(c),
                Bytes(heap),
                Bytes(limit)
            )));
        }
        if let Some(direct) = direct
            && heap.saturating_add(direct) > limit
        {
            return Err(invalid(format!(
                "{field}: the {} heap (-Xmx, {}) and direct memory (-XX:MaxDirectMemorySize, {}) add up to more than the container's memory limit ({limit_field}, {})",
                component_name(c),
                Bytes(heap),
                Bytes(direct),
                Bytes(limit)
            )));
        }
    }
    Ok(())
}

pub(super) fn check_cache(spec: &PravegaClusterSpec) -> Result<(), Refusal> {
    let Some((key, value)) = cache_size_option(spec) else {
        return Ok(());
    };
    let cache: u64 = value.trim().parse().map_err(|_| {
        invalid(format!(
            "spec.pravega.options[{key}] is {:?}; it must be a number of bytes, e.g. \"1073741824\" for 1Gi",
            shorten(value)
        ))
    })?;
    let row = contract::contract(&spec.version);
    if !row.pravega.checks_direct_memory_at_start {
        return Ok(());
    }
    let flags = jvm_flags(spec, Component::SegmentStore);
    let Ok((heap, direct)) = memory_of(&flags) else {
        return Ok(());
    };
    // ServiceStarter.validateConfig (0.11+) uses -Xmx when MaxDirectMemorySize is unset.
    let Some(direct) = direct.or(heap) else {
        return Ok(());
    };
    if direct <= cache {
        return Err(invalid(format!(
            "spec.pravega.options[{key}]: Segment Stores from 0.11 refuse to start unless -XX:MaxDirectMemorySize ({}) exceeds the cache size ({}); lower the cache or raise -XX:MaxDirectMemorySize in spec.pravega.segmentStoreJVMOptions",
            Bytes(direct),
            Bytes(cache)
        )));
    }
    Ok(())
}
