//! What each range of `pravega/pravega` and `pravega/bookkeeper` image versions reads: one pure
//! table, [`CONTRACTS`], consulted by the operator's workload builders and by the admission
//! rules. A component's pod template at version V follows the row of V, so an upgrade that
//! crosses a row boundary (0.4 → 0.5, 0.6 → 0.7, ...) changes what the new pods are given.
//!
//! Every row states facts read from the images' own sources at the tag named in the comment
//! (`pravega/pravega` `docker/bookkeeper`, `docker/pravega`, `ServiceConfig.java`;
//! `apache/bookkeeper` `docker/scripts`, `bin/`, `HttpRouter.java`). Nothing is copied from them.

use crate::version::parse_version;

/// The BookKeeper image's contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookieContract {
    /// The Apache BookKeeper release inside the image.
    pub bookkeeper_release: &'static str,
    /// Major version of the image's Java runtime.
    pub java: u8,
    /// `BK_<key>` variables are written into `conf/*` (`apply-config-from-env.py`), so
    /// `spec.bookkeeper.options` reach `bk_server.conf`. Before that only a few fixed variables
    /// are read.
    pub config_from_env: bool,
    /// The variable (set to `true`) that starts the auto-recovery daemon.
    pub autorecovery_switch: &'static str,
    /// Which `bin/bookkeeper` variables carry JVM options.
    pub jvm_variables: BookieJvmVariables,
    /// `bin/bookkeeper` runs under `set -e`: a `conf/bkenv.sh` line that the shell cannot run
    /// (e.g. `BOOKIE_EXTRA_OPTS=-Xms1g -Xmx1g`, written unquoted from `BK_BOOKIE_EXTRA_OPTS`)
    /// aborts the bookie.
    pub aborts_on_unrunnable_env_line: bool,
    /// Value of `BK_useHostNameAsBookieID` (upstream operator 0.4.5 sets `false` below 0.5).
    pub use_host_name_as_bookie_id: bool,
    /// The HTTP admin server, when the image can run it.
    pub http_admin: Option<BookieHttpAdmin>,
}

/// Which variables `bin/bookkeeper` reads JVM options from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookieJvmVariables {
    /// Only `BOOKIE_EXTRA_OPTS` (BookKeeper 4.5).
    ExtraOnly,
    /// `BOOKIE_MEM_OPTS`, `BOOKIE_GC_OPTS`, `BOOKIE_GC_LOGGING_OPTS` and `BOOKIE_EXTRA_OPTS`, each
    /// falling back to BookKeeper's default when empty (BookKeeper 4.7.1 and later).
    Split,
}

/// The bookie's HTTP admin server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookieHttpAdmin {
    /// `/api/v1/bookie/state` and `/api/v1/bookie/is_ready` are served (BookKeeper 4.10+).
    pub state_api: bool,
}

/// The Pravega image's contract (Controller and Segment Store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PravegaContract {
    /// Major version of the image's Java runtime.
    pub java: u8,
    /// Configuration keys have their pre-0.8 names (`pravegaservice.containerCount`); from 0.8
    /// the new names (`pravegaservice.container.count`) are read and the old ones still win
    /// when both are set.
    pub legacy_property_names: bool,
    /// The Segment Store's cache-size property and its default in bytes.
    pub cache_size_property: &'static str,
    /// Default of the cache size, in bytes.
    pub cache_size_default: u64,
    /// The cache lives in direct memory (from 0.7), so its size must fit `-XX:MaxDirectMemorySize`.
    pub cache_in_direct_memory: bool,
    /// The Segment Store refuses to start unless `-XX:MaxDirectMemorySize` (or `-Xmx` when it is
    /// unset) exceeds the cache size (`ServiceStarter.validateConfig`, 0.11+).
    pub checks_direct_memory_at_start: bool,
    /// How ECS tier 2 is configured.
    pub ecs: EcsVariables,
    /// The health REST API, where served.
    pub health: Option<HealthApi>,
}

/// The variables the image's tier 2 script reads for ECS (`TIER2_STORAGE=EXTENDEDS3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcsVariables {
    /// `EXTENDEDS3_URI`, `EXTENDEDS3_BUCKET`, `EXTENDEDS3_ROOT`, `EXTENDEDS3_NAMESPACE`,
    /// `EXTENDEDS3_ACCESS_KEY_ID`, `EXTENDEDS3_SECRET_KEY` (0.4 to 0.6).
    Url,
    /// `EXTENDEDS3_CONFIGURI`, `EXTENDEDS3_BUCKET`, `EXTENDEDS3_PREFIX`, with
    /// `EXTENDEDS3_ACCESS_KEY_ID` and `EXTENDEDS3_SECRET_KEY` appended to the URI (0.7+).
    ConfigUri,
}

/// Pravega's health REST API (0.10+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthApi {
    /// Readiness path; answers 200 with a JSON `true` or `false` body.
    pub readiness_path: &'static str,
    /// Liveness path; answers like readiness.
    pub liveness_path: &'static str,
    /// Port of the Segment Store's REST server (`pravegaservice.rest.listener.port`).
    pub segment_store_port: i32,
    /// Property that binds the Segment Store's REST server (default `localhost`).
    pub segment_store_host_property: &'static str,
}

/// The contract of one range of image versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageContract {
    /// First `major.minor` of the range.
    pub since: (u64, u64),
    /// The range, as the README's table writes it.
    pub range: &'static str,
    /// `pravega/bookkeeper`.
    pub bookie: BookieContract,
    /// `pravega/pravega`.
    pub pravega: PravegaContract,
}

/// Oldest version with a contract row.
pub const OLDEST_SUPPORTED: (u64, u64) = (0, 4);
/// Newest version whose images were read for this table.
pub const NEWEST_SUPPORTED: (u64, u64) = (0, 13);

const GIB: u64 = 1024 * 1024 * 1024;

const HEALTH: HealthApi = HealthApi {
    // shared/health-bindings/.../v1/ApiV1.java@v0.10.0: `/v1/health/{readiness,liveness}`.
    readiness_path: "/v1/health/readiness",
    liveness_path: "/v1/health/liveness",
    // ServiceConfig.java@v0.10.0: rest.listener.port 6061, rest.listener.host localhost.
    segment_store_port: 6061,
    segment_store_host_property: "pravegaservice.rest.listener.host",
};

/// Apache BookKeeper 4.5.0, inside the 0.4 bookkeeper image (docker/bookkeeper/Dockerfile@v0.4.0:
/// openjdk:8-jre-alpine + bookkeeper-server 4.5.0).
const BOOKKEEPER_4_5: BookieContract = BookieContract {
    bookkeeper_release: "4.5.0",
    java: 8,
    // docker/bookkeeper/entrypoint.sh@v0.4.0 edits bk_server.conf with sed from a few fixed
    // variables; there is no apply-config-from-env.py in the image.
    config_from_env: false,
    // entrypoint.sh@v0.4.0: `autoRecoveryDaemonEnabled=${BK_AUTORECOVERY}`.
    autorecovery_switch: "BK_AUTORECOVERY",
    // bookkeeper-server/bin/bookkeeper@release-4.5.0 reads BOOKIE_EXTRA_OPTS only.
    jvm_variables: BookieJvmVariables::ExtraOnly,
    aborts_on_unrunnable_env_line: false,
    // pravega-operator pkg/controller/pravega/bookie.go@v0.4.5: false below 0.5.0.
    use_host_name_as_bookie_id: false,
    // ServerConfiguration httpServerEnabled exists from BookKeeper 4.6.0.
    http_admin: None,
};

/// Apache BookKeeper 4.7.3 (docker/bookkeeper/Dockerfile@v0.5.0 and @v0.6.0: FROM
/// apache/bookkeeper:4.7.3).
const BOOKKEEPER_4_7: BookieContract = BookieContract {
    bookkeeper_release: "4.7.3",
    java: 8,
    // apache/bookkeeper docker/scripts/apply-config-from-env.py@release-4.7.3, run by
    // docker/scripts/common.sh: BK_<key> replaces `<key>=` in conf/*, unquoted.
    config_from_env: true,
    // docker/bookkeeper/entrypoint.sh@v0.5.0 no longer reads BK_AUTORECOVERY; the key is
    // conf/bk_server.conf's `autoRecoveryDaemonEnabled`.
    autorecovery_switch: "BK_autoRecoveryDaemonEnabled",
    // bin/common.sh@release-4.7.3: BOOKIE_MEM_OPTS=${BOOKIE_MEM_OPTS:-...} etc.
    jvm_variables: BookieJvmVariables::Split,
    // bin/bookkeeper@release-4.7.3 has no `set -e`.
    aborts_on_unrunnable_env_line: false,
    use_host_name_as_bookie_id: true,
    // conf/bk_server.conf@release-4.7.3 names VertxHttpServer; off unless BK_httpServerEnabled
    // is true (docker/scripts/common.sh@release-4.7.3 does not set it).
    http_admin: Some(BookieHttpAdmin { state_api: false }),
};

/// Apache BookKeeper 4.9.2 (docker/bookkeeper/Dockerfile@v0.7.0 and @v0.8.0: FROM
/// apache/bookkeeper:4.9.2).
const BOOKKEEPER_4_9: BookieContract = BookieContract {
    bookkeeper_release: "4.9.2",
    // bin/bookkeeper@release-4.9.0 (commit 7016d0af68) starts with `set -e`.
    aborts_on_unrunnable_env_line: true,
    // HttpRouter.java@release-4.9.2: no bookie/state or bookie/is_ready (4.10.0+).
    ..BOOKKEEPER_4_7
};

/// Apache BookKeeper 4.11.1 on Java 11 (docker/bookkeeper/Dockerfile@v0.9.0: FROM
/// apache/bookkeeper:4.11.1; the entrypoint exports JAVA_HOME java-11).
const BOOKKEEPER_4_11: BookieContract = BookieContract {
    bookkeeper_release: "4.11.1",
    java: 11,
    // HttpRouter.java@release-4.10.0 adds bookie/state and bookie/is_ready.
    http_admin: Some(BookieHttpAdmin { state_api: true }),
    ..BOOKKEEPER_4_9
};

/// Apache BookKeeper 4.14.1 on Java 11 (docker/bookkeeper/Dockerfile@v0.10.0 to @v0.13.0: FROM
/// apache/bookkeeper:4.14.1).
const BOOKKEEPER_4_14: BookieContract = BookieContract {
    bookkeeper_release: "4.14.1",
    ..BOOKKEEPER_4_11
};

/// Pravega 0.4 to 0.6 (docker/pravega/Dockerfile@v0.4.0, @v0.5.0: openjdk 8).
const PRAVEGA_0_4: PravegaContract = PravegaContract {
    java: 8,
    legacy_property_names: true,
    // ServiceConfig.java@v0.4.0 and @v0.6.0: cacheMaxSize, 16 GiB (RocksDB cache on disk).
    cache_size_property: "pravegaservice.cacheMaxSize",
    cache_size_default: 16 * GIB,
    cache_in_direct_memory: false,
    checks_direct_memory_at_start: false,
    // docker/pravega/entrypoint.sh@v0.4.0, scripts/init_tier2.sh@v0.6.0: EXTENDEDS3_URI/ROOT/...
    ecs: EcsVariables::Url,
    // controller/.../rest/v1/ApiV1.java@v0.4.0 serves /ping only.
    health: None,
};

/// Pravega 0.7 (docker/pravega/Dockerfile@v0.7.0: openjdk:8u212-jre-alpine3.9).
const PRAVEGA_0_7: PravegaContract = PravegaContract {
    // ServiceConfig.java@v0.7.0: cacheMaxSize 4 GiB, now a DirectMemoryCache.
    cache_size_default: 4 * GIB,
    cache_in_direct_memory: true,
    // docker/pravega/scripts/init_tier2.sh@v0.7.0: EXTENDEDS3_CONFIGURI/BUCKET/PREFIX.
    ecs: EcsVariables::ConfigUri,
    ..PRAVEGA_0_4
};

/// Pravega 0.8: commit efa9e08b (first in v0.8.0), ServiceConfig.java@v0.8.0: new key names,
/// legacy names still read (and winning, TypedProperties.java@v0.8.0).
const PRAVEGA_0_8: PravegaContract = PravegaContract {
    legacy_property_names: false,
    cache_size_property: "pravegaservice.cache.size.max",
    ..PRAVEGA_0_7
};

/// Pravega 0.9 (docker/pravega/Dockerfile@v0.9.0: openjdk:11.0.8-jre-slim).
const PRAVEGA_0_9: PravegaContract = PravegaContract {
    java: 11,
    ..PRAVEGA_0_8
};

/// Pravega 0.10 (docker/pravega/Dockerfile@v0.10.0: adoptopenjdk 11): the health API
/// (ApiV1.java@v0.10.0, ServiceConfig.java@v0.10.0).
const PRAVEGA_0_10: PravegaContract = PravegaContract {
    health: Some(HEALTH),
    ..PRAVEGA_0_9
};

/// Pravega 0.11 to 0.13: segmentstore/server/host/.../ServiceStarter.java@v0.11.0 validateConfig
/// (commit 1ac1a7ac) exits unless MaxDirectMemorySize exceeds cache.size.max; unchanged at
/// @v0.12.0 and @v0.13.0.
const PRAVEGA_0_11: PravegaContract = PravegaContract {
    checks_direct_memory_at_start: true,
    ..PRAVEGA_0_10
};

/// The table, oldest row first. A version uses the last row whose `since` it reaches.
pub const CONTRACTS: [ImageContract; 7] = [
    ImageContract {
        since: (0, 4),
        range: "0.4",
        bookie: BOOKKEEPER_4_5,
        pravega: PRAVEGA_0_4,
    },
    ImageContract {
        since: (0, 5),
        range: "0.5 – 0.6",
        bookie: BOOKKEEPER_4_7,
        pravega: PRAVEGA_0_4,
    },
    ImageContract {
        since: (0, 7),
        range: "0.7",
        bookie: BOOKKEEPER_4_9,
        pravega: PRAVEGA_0_7,
    },
    ImageContract {
        since: (0, 8),
        range: "0.8",
        bookie: BOOKKEEPER_4_9,
        pravega: PRAVEGA_0_8,
    },
    ImageContract {
        since: (0, 9),
        range: "0.9",
        bookie: BOOKKEEPER_4_11,
        pravega: PRAVEGA_0_9,
    },
    ImageContract {
        since: (0, 10),
        range: "0.10",
        bookie: BOOKKEEPER_4_14,
        pravega: PRAVEGA_0_10,
    },
    ImageContract {
        since: (0, 11),
        range: "0.11 – 0.13",
        bookie: BOOKKEEPER_4_14,
        pravega: PRAVEGA_0_11,
    },
];

/// `major.minor` of a version string, when it is a semantic version.
pub fn minor_of(version: &str) -> Option<(u64, u64)> {
    parse_version(version).ok().map(|v| (v.major, v.minor))
}

/// Whether the table covers `version` (0.4 to 0.13, pre-releases included).
pub fn is_supported(version: &str) -> bool {
    minor_of(version).is_some_and(|m| (OLDEST_SUPPORTED..=NEWEST_SUPPORTED).contains(&m))
}

/// The contract of `version`: the last row it reaches. Versions below the table use its first
/// row, versions above it (and strings that are not versions) its last row.
pub fn contract(version: &str) -> &'static ImageContract {
    let Some(minor) = minor_of(version) else {
        return &CONTRACTS[CONTRACTS.len() - 1];
    };
    CONTRACTS
        .iter()
        .rev()
        .find(|c| minor >= c.since)
        .unwrap_or(&CONTRACTS[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_ordered_and_cover_the_supported_range() {
        for pair in CONTRACTS.windows(2) {
            assert!(pair[0].since < pair[1].since);
        }
        assert_eq!(CONTRACTS[0].since, OLDEST_SUPPORTED);
        for (v, range) in [
            ("0.4.0", "0.4"),
            ("0.5.0-1", "0.5 – 0.6"),
            ("0.6.2", "0.5 – 0.6"),
            ("0.7.0", "0.7"),
            ("0.8.1", "0.8"),
            ("0.9.0", "0.9"),
            ("0.10.2", "0.10"),
            ("0.11.0", "0.11 – 0.13"),
            ("0.13.0", "0.11 – 0.13"),
            ("1.0.0", "0.11 – 0.13"),
            ("0.3.2", "0.4"),
            ("latest", "0.11 – 0.13"),
        ] {
            assert_eq!(contract(v).range, range, "{v}");
        }
        assert!(is_supported("0.4.0") && is_supported("0.13.0") && is_supported("0.5.0-1"));
        assert!(!is_supported("0.3.2") && !is_supported("0.14.0") && !is_supported("x"));
    }

    #[test]
    fn the_boundaries_the_images_cross() {
        assert_eq!(
            contract("0.4.0").bookie.autorecovery_switch,
            "BK_AUTORECOVERY"
        );
        assert_eq!(
            contract("0.5.0").bookie.autorecovery_switch,
            "BK_autoRecoveryDaemonEnabled"
        );
        assert!(!contract("0.6.0").bookie.aborts_on_unrunnable_env_line);
        assert!(contract("0.7.0").bookie.aborts_on_unrunnable_env_line);
        assert!(contract("0.7.0").pravega.legacy_property_names);
        assert!(!contract("0.8.0").pravega.legacy_property_names);
        assert_eq!(contract("0.8.9").pravega.java, 8);
        assert_eq!(contract("0.9.0").pravega.java, 11);
        assert!(contract("0.10.0").pravega.health.is_some());
        assert!(contract("0.9.0").pravega.health.is_none());
        assert!(!contract("0.10.0").pravega.checks_direct_memory_at_start);
        assert!(contract("0.11.0").pravega.checks_direct_memory_at_start);
        assert_eq!(contract("0.4.0").bookie.http_admin, None);
        assert_eq!(
            contract("0.9.0").bookie.http_admin,
            Some(BookieHttpAdmin { state_api: true })
        );
    }
}
