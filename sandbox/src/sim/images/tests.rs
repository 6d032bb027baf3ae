use super::bookie::{BOOKIE_JVM_VARIABLES, PodHost, bookie_id, shell_words};
use super::http::{HttpApi, HttpServer, http_server};
use super::jvm::jvm_size;
use super::*;

fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn bookies(names: &[&str]) -> HashSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn run(image: &str, a: &[&str], vars: &[(&str, &str)]) -> Outcome {
    run_with(image, a, vars, None, &[], &["pravega-cluster"])
}

fn run_with(
    image: &str,
    a: &[&str],
    vars: &[(&str, &str)],
    memory_limit: Option<u64>,
    mounts: &[&str],
    registered: &[&str],
) -> Outcome {
    let a = args(a);
    let e = env(vars);
    let m = args(mounts);
    play(
        &Start {
            image,
            args: &a,
            env: &e,
            memory_limit,
            mounts: &m,
        },
        &bookies(registered),
    )
}

fn crash_message(o: Outcome) -> (i32, String) {
    match o {
        Outcome::Crash { exit_code, message } => (exit_code, message),
        other => panic!("expected a crash, got {other:?}"),
    }
}

fn unready_message(o: Outcome) -> String {
    match o {
        Outcome::NeverReady { message } => message,
        other => panic!("expected never ready, got {other:?}"),
    }
}

/// A Segment Store environment that passes every check (filesystem tier 2).
const FS: [(&str, &str); 2] = [("TIER2_STORAGE", "FILESYSTEM"), ("NFS_MOUNT", "/mnt/tier2")];

fn ss(version: &str, extra: &[(&str, &str)], limit: Option<u64>) -> Outcome {
    let mut vars: Vec<(&str, &str)> = FS.to_vec();
    vars.extend_from_slice(extra);
    run_with(
        &format!("pravega/pravega:{version}"),
        &["segmentstore"],
        &vars,
        limit,
        &["/mnt/tier2"],
        &["pravega-cluster"],
    )
}

fn log(image: &str, a: &[&str], vars: &[(&str, &str)]) -> Vec<String> {
    let (a, e) = (args(a), env(vars));
    start_log(&Start {
        image,
        args: &a,
        env: &e,
        memory_limit: None,
        mounts: &[],
    })
}

#[test]
fn start_logs_show_the_resolved_settings() {
    assert_eq!(
        log("busybox:1.36", &["sleep", "3600"], &[]),
        ["starting busybox:1.36 with args [sleep 3600]"]
    );
    assert_eq!(
        log(
            "pravega/pravega:0.9.0",
            &["segmentstore"],
            &[
                ("JAVA_OPTS", "-Xmx1g -Dpravegaservice.clusterName=example"),
                ("TIER2_STORAGE", "FILESYSTEM")
            ]
        ),
        [
            "starting pravega/pravega:0.9.0 with args [segmentstore]",
            "JAVA_OPTS=-Xmx1g -Dpravegaservice.clusterName=example",
            "pravegaservice.clusterName=example",
            "TIER2_STORAGE=FILESYSTEM",
        ]
    );
    assert_eq!(
        log(
            "pravega/bookkeeper:0.7.0",
            &[],
            &[
                ("PRAVEGA_CLUSTER_NAME", "example"),
                ("BOOKIE_MEM_OPTS", "-Xms1g"),
                ("BK_BOOKIE_EXTRA_OPTS", "-Xms1g -Xmx1g"),
            ]
        ),
        [
            "starting pravega/bookkeeper:0.7.0 with args []",
            "PRAVEGA_CLUSTER_NAME=example (registering under /pravega/example/bookkeeper/ledgers/available)",
            "BOOKIE_MEM_OPTS=-Xms1g",
            "BOOKIE_GC_OPTS=",
            "BOOKIE_GC_LOGGING_OPTS=",
            "BOOKIE_EXTRA_OPTS=",
            "[/opt/bookkeeper/conf/bkenv.sh] Applying config BOOKIE_EXTRA_OPTS = -Xms1g -Xmx1g",
        ]
    );
    assert_eq!(
        log(
            "pravega/bookkeeper:0.4.0",
            &[],
            &[("BK_BOOKIE_EXTRA_OPTS", "x")]
        )[1],
        "PRAVEGA_CLUSTER_NAME=pravega-cluster (registering under /pravega/pravega-cluster/bookkeeper/ledgers/available)"
    );
    assert_eq!(
        log(
            "pravega/bookkeeper:0.4.0",
            &[],
            &[("BK_BOOKIE_EXTRA_OPTS", "x")]
        )
        .len(),
        6
    );
}

#[test]
fn only_semver_tagged_bookies_and_pravega_components_are_modelled() {
    assert_eq!(parse_version("0.5.0-1"), Some(v(0, 5)));
    assert_eq!(parse_version("0.13.0"), Some(v(0, 13)));
    assert_eq!(parse_version("0.7.0-rc1.2"), Some(v(0, 7)));
    for bad in [
        "latest",
        "0.5",
        "0.5.0.1",
        "0.5.x",
        "0.5.0-",
        "v0.5.0",
        "0.5.0-a_b",
    ] {
        assert_eq!(parse_version(bad), None, "{bad}");
    }
    let a = args(&["segmentstore"]);
    assert_eq!(
        identify("pravega/pravega:0.9.0", &a),
        Some((Role::SegmentStore, v(0, 9)))
    );
    assert_eq!(
        identify("registry.local:5000/org/pravega:0.9.0@sha256:abc", &a),
        Some((Role::SegmentStore, v(0, 9)))
    );
    assert_eq!(
        identify("pravega/pravega:0.9.0", &args(&["controller"])),
        Some((Role::Controller, v(0, 9)))
    );
    assert_eq!(identify("pravega/pravega:0.9.0", &[]), None);
    assert_eq!(identify("pravega/pravega:latest", &a), None);
    assert_eq!(identify("pravega/pravega", &a), None);
    assert_eq!(identify("pravega/pravega-operator:0.9.0", &a), None);
    assert_eq!(
        identify("pravega/bookkeeper:0.5.0-1", &[]),
        Some((Role::Bookie, v(0, 5)))
    );
    assert_eq!(identify("nginx:1.0.0", &a), None);
    // Unmodelled containers run, whatever they are given.
    assert_eq!(run("pravega/pravega:0.5.0", &[], &[]), Outcome::Run);
    assert_eq!(
        run("pravega/pravega:latest", &["segmentstore"], &[]),
        Outcome::Run
    );
}

#[test]
fn bookies_register_under_pravega_cluster_name() {
    let e = env(&[("PRAVEGA_CLUSTER_NAME", "example")]);
    assert_eq!(
        bookie_cluster("pravega/bookkeeper:0.4.0", &e).as_deref(),
        Some("example")
    );
    let empty = env(&[("PRAVEGA_CLUSTER_NAME", "")]);
    assert_eq!(
        bookie_cluster("pravega/bookkeeper:0.13.0", &empty).as_deref(),
        Some("pravega-cluster")
    );
    assert_eq!(
        bookie_cluster("pravega/bookkeeper:0.13.0", &env(&[])).as_deref(),
        Some("pravega-cluster")
    );
    assert_eq!(bookie_cluster("pravega/bookkeeper:latest", &e), None);
    assert_eq!(bookie_cluster("pravega/pravega:0.5.0", &e), None);
}

#[test]
fn bkenv_values_with_whitespace_abort_bookies_from_0_7() {
    let vars = [("BK_BOOKIE_EXTRA_OPTS", "-Xms1g -Xmx1g")];
    let (code, message) = crash_message(run("pravega/bookkeeper:0.7.0", &[], &vars));
    assert_eq!(code, 127);
    assert_eq!(
        message,
        "/opt/bookkeeper/conf/bkenv.sh: line 35: -Xmx1g: command not found"
    );
    // 0.5 and 0.6 (BookKeeper 4.7.3, no `set -e`): not fatal. 0.4: BK_* ignored.
    for version in ["0.4.0", "0.5.0-1", "0.6.0"] {
        assert_eq!(
            run(&format!("pravega/bookkeeper:{version}"), &[], &vars),
            Outcome::Run,
            "{version}"
        );
    }
    // The first failing line of the file is reported; unknown BOOKIE_* keys are taken as
    // keys too.
    let (_, message) = crash_message(run(
        "pravega/bookkeeper:0.13.0-1",
        &[],
        &[
            ("BK_BOOKIE_GC_OPTS", "-XX:+UseG1GC -XX:MaxGCPauseMillis=10"),
            ("BK_BOOKIE_CONF", "/a /b"),
            ("BK_BOOKIE_WHATEVER", "x y"),
        ],
    ));
    assert_eq!(
        message,
        "/opt/bookkeeper/conf/bkenv.sh: line 29: /b: command not found"
    );
    let (_, message) = crash_message(run(
        "pravega/bookkeeper:0.8.0",
        &[],
        &[("BK_BOOKIE_WHATEVER", "x y")],
    ));
    assert_eq!(
        message,
        "/opt/bookkeeper/conf/bkenv.sh: y: command not found"
    );
    // Leading whitespace: the first word is the command.
    let (_, message) = crash_message(run(
        "pravega/bookkeeper:0.7.0",
        &[],
        &[("BK_BOOKIE_EXTRA_OPTS", " -Xmx1g")],
    ));
    assert!(
        message.ends_with(": -Xmx1g: command not found"),
        "{message}"
    );
    // Single words, quoted values, further assignments and other BK_ keys are fine.
    for ok in [
        ("BK_BOOKIE_EXTRA_OPTS", "-Xmx1g"),
        ("BK_BOOKIE_EXTRA_OPTS", "\"-Xms1g -Xmx1g\""),
        ("BK_BOOKIE_EXTRA_OPTS", "'-Xms1g -Xmx1g'"),
        ("BK_BOOKIE_EXTRA_OPTS", "-Xmx1g\\ -Xms1g"),
        ("BK_BOOKIE_EXTRA_OPTS", "-Xmx1g OTHER=1"),
        ("BK_journalDirectories", "/a /b"),
        ("BOOKIE_EXTRA_OPTS", "-Xms1g -Xmx1g"),
    ] {
        assert_eq!(
            run("pravega/bookkeeper:0.7.0", &[], &[ok]),
            Outcome::Run,
            "{ok:?}"
        );
    }
}

#[test]
fn shell_words_follow_bash_quoting() {
    let words = shell_words("K=\"a b\" c 'd e'f X=1 \"Y\"=2").unwrap();
    assert_eq!(
        words,
        vec![
            ("K=a b".to_string(), true),
            ("c".to_string(), false),
            ("d ef".to_string(), false),
            ("X=1".to_string(), true),
            ("Y=2".to_string(), false),
        ]
    );
    assert_eq!(shell_words("K='a"), None);
}

#[test]
fn java_11_images_refuse_removed_jvm_flags() {
    let refused = |o: Outcome| crash_message(o);
    // Pravega: JAVA_OPTS, from 0.9.
    let opts = [("JAVA_OPTS", "-Xmx1g -XX:+UseCGroupMemoryLimitForHeap")];
    assert_eq!(
        refused(run("pravega/pravega:0.9.0", &["controller"], &opts)),
        (
            1,
            "Unrecognized VM option 'UseCGroupMemoryLimitForHeap'\nError: Could not create the Java Virtual Machine."
                .to_owned()
        )
    );
    assert_eq!(
        run("pravega/pravega:0.8.0", &["controller"], &opts),
        Outcome::Run
    );
    let (_, m) = refused(ss("0.9.0", &opts, None));
    assert!(m.starts_with("Unrecognized VM option 'UseCGroupMemoryLimitForHeap'"));
    assert_eq!(ss("0.8.0", &opts, None), Outcome::Run);
    // -XX:+IgnoreUnrecognizedVMOptions anywhere lets it start.
    let ignoring = [(
        "JAVA_OPTS",
        "-XX:+UseCGroupMemoryLimitForHeap -XX:+IgnoreUnrecognizedVMOptions",
    )];
    assert_eq!(
        run("pravega/pravega:0.9.0", &["controller"], &ignoring),
        Outcome::Run
    );
    // Valued flags are named with their value; the sign does not matter.
    let (_, m) = refused(run(
        "pravega/pravega:0.10.0",
        &["controller"],
        &[(
            "JAVA_OPTS",
            "-XX:-PrintGCDateStamps -XX:NumberOfGCLogFiles=5",
        )],
    ));
    assert!(
        m.starts_with("Unrecognized VM option 'PrintGCDateStamps'"),
        "{m}"
    );
    let (_, m) = refused(run(
        "pravega/pravega:0.10.0",
        &["controller"],
        &[("JAVA_OPTS", "-XX:GCLogFileSize=64m")],
    ));
    assert!(
        m.starts_with("Unrecognized VM option 'GCLogFileSize=64m'"),
        "{m}"
    );
    assert_eq!(
        run(
            "pravega/pravega:0.10.0",
            &["controller"],
            &[("JAVA_OPTS", "-XX:+UseG1GC -XX:+PrintGCDetails")]
        ),
        Outcome::Run
    );

    // Bookies: the four BOOKIE_*_OPTS variables, from 0.9.
    for var in BOOKIE_JVM_VARIABLES {
        let vars = [(var, "-XX:+PrintGCDateStamps")];
        let (code, m) = refused(run("pravega/bookkeeper:0.9.0", &[], &vars));
        assert_eq!(code, 1);
        assert!(
            m.starts_with("Unrecognized VM option 'PrintGCDateStamps'"),
            "{m}"
        );
        assert_eq!(run("pravega/bookkeeper:0.8.1", &[], &vars), Outcome::Run);
    }
    assert_eq!(
        run(
            "pravega/bookkeeper:0.9.0",
            &[],
            &[(
                "BOOKIE_GC_OPTS",
                "-XX:+UseGCLogFileRotation -XX:+IgnoreUnrecognizedVMOptions"
            )]
        ),
        Outcome::Run
    );
    // A single-word BK_BOOKIE_GC_OPTS replaces BOOKIE_GC_OPTS (bkenv.sh is sourced).
    let (_, m) = refused(run(
        "pravega/bookkeeper:0.9.0",
        &[],
        &[("BK_BOOKIE_GC_OPTS", "-XX:+PrintHeapAtGC")],
    ));
    assert!(
        m.starts_with("Unrecognized VM option 'PrintHeapAtGC'"),
        "{m}"
    );
    assert_eq!(
        run(
            "pravega/bookkeeper:0.9.0",
            &[],
            &[
                ("BOOKIE_GC_OPTS", "-XX:+PrintHeapAtGC"),
                ("BK_BOOKIE_GC_OPTS", "-XX:+UseG1GC")
            ]
        ),
        Outcome::Run
    );
}

#[test]
fn segment_store_cluster_name_comes_only_from_the_jvm_property() {
    let fs = FS.to_vec();
    let example = |extra: &[(&str, &str)]| {
        let mut vars = fs.clone();
        vars.extend_from_slice(extra);
        run_with(
            "pravega/pravega:0.5.0",
            &["segmentstore"],
            &vars,
            None,
            &["/mnt/tier2"],
            &["example"],
        )
    };
    // CLUSTER_NAME is not read: the default cluster name has no bookies.
    let m = unready_message(example(&[("CLUSTER_NAME", "example")]));
    assert_eq!(
        m,
        "no bookies registered under /pravega/pravega-cluster/bookkeeper/ledgers/available (the Segment Store's cluster name comes from -Dpravegaservice.clusterName in JAVA_OPTS)"
    );
    assert_eq!(
        example(&[("JAVA_OPTS", "-Xmx1g -Dpravegaservice.clusterName=example")]),
        Outcome::Run
    );
    // The last occurrence wins.
    let m = unready_message(example(&[(
        "JAVA_OPTS",
        "-Dpravegaservice.clusterName=example -Dpravegaservice.clusterName=other",
    )]));
    assert!(m.contains("/pravega/other/"), "{m}");
    // No bookies at all.
    let vars = fs.clone();
    let o = run_with(
        "pravega/pravega:0.13.0",
        &["segmentstore"],
        &vars,
        None,
        &["/mnt/tier2"],
        &[],
    );
    assert!(unready_message(o).starts_with("no bookies registered"));
    // The default cluster name matches bookies without PRAVEGA_CLUSTER_NAME.
    assert_eq!(ss("0.4.0", &[], None), Outcome::Run);
}

#[test]
fn segment_store_needs_a_reachable_tier_2() {
    let ss_with = |version: &str, vars: &[(&str, &str)], mounts: &[&str]| {
        run_with(
            &format!("pravega/pravega:{version}"),
            &["segmentstore"],
            vars,
            None,
            mounts,
            &["pravega-cluster"],
        )
    };
    for version in ["0.4.0", "0.5.0", "0.13.0"] {
        assert_eq!(
            unready_message(ss_with(version, &[], &[])),
            "tier 2 unreachable: TIER2_STORAGE is empty, so the Segment Store uses HDFS at localhost:9000"
        );
        assert_eq!(
            unready_message(ss_with(version, &[("TIER2_STORAGE", "")], &[])),
            "tier 2 unreachable: TIER2_STORAGE is empty, so the Segment Store uses HDFS at localhost:9000"
        );
    }
    // FILESYSTEM: NFS_MOUNT and a volume mounted there.
    let m = unready_message(ss_with("0.5.0", &[("TIER2_STORAGE", "FILESYSTEM")], &[]));
    assert!(m.contains("NFS_MOUNT is not set"), "{m}");
    let m = unready_message(ss_with("0.5.0", &FS, &["/tmp/pravega/cache"]));
    assert_eq!(
        m,
        "tier 2 unreachable: TIER2_STORAGE is FILESYSTEM but no volume is mounted at NFS_MOUNT (/mnt/tier2)"
    );
    assert_eq!(ss_with("0.5.0", &FS, &["/mnt/tier2/"]), Outcome::Run);
    // ...unless the script mounts NFS itself, which waits for NFS_SERVER.
    let in_container = [
        ("TIER2_STORAGE", "FILESYSTEM"),
        ("MOUNT_IN_CONTAINER", "true"),
    ];
    let m = unready_message(ss_with("0.5.0", &in_container, &[]));
    assert!(m.contains("NFS_SERVER is not set"), "{m}");
    let mut served = in_container.to_vec();
    served.push(("NFS_SERVER", "nfs:/export"));
    assert_eq!(ss_with("0.5.0", &served, &[]), Outcome::Run);
    // HDFS needs HDFS_URL.
    let m = unready_message(ss_with("0.6.0", &[("TIER2_STORAGE", "HDFS")], &[]));
    assert!(m.contains("HDFS_URL is not set"), "{m}");
    assert_eq!(
        ss_with(
            "0.6.0",
            &[("TIER2_STORAGE", "HDFS"), ("HDFS_URL", "hdfs://nn:8020")],
            &[]
        ),
        Outcome::Run
    );
}

#[test]
fn extended_s3_variables_change_at_0_7() {
    let ss_with = |version: &str, vars: &[(&str, &str)]| {
        let mut all = vec![("TIER2_STORAGE", "EXTENDEDS3"), ("EXTENDEDS3_BUCKET", "b")];
        all.extend_from_slice(vars);
        run_with(
            &format!("pravega/pravega:{version}"),
            &["segmentstore"],
            &all,
            None,
            &[],
            &["pravega-cluster"],
        )
    };
    let creds = [
        ("EXTENDEDS3_ACCESS_KEY_ID", "id"),
        ("EXTENDEDS3_SECRET_KEY", "secret"),
    ];
    let mut old = creds.to_vec();
    old.push(("EXTENDEDS3_URI", "http://ecs:9020"));
    let mut new = creds.to_vec();
    new.push(("EXTENDEDS3_CONFIGURI", "http://ecs:9020?namespace=ns"));
    // 0.4 to 0.6: EXTENDEDS3_URI.
    for version in ["0.4.0", "0.6.0"] {
        assert_eq!(ss_with(version, &old), Outcome::Run, "{version}");
        let m = unready_message(ss_with(version, &new));
        assert!(m.contains("EXTENDEDS3_URI is not set"), "{m}");
        let m = unready_message(ss_with(version, &old[2..]));
        assert!(
            m.contains("EXTENDEDS3_ACCESS_KEY_ID, EXTENDEDS3_SECRET_KEY are not set"),
            "{m}"
        );
    }
    // 0.7 on: EXTENDEDS3_CONFIGURI, and credentials unless the URI carries them.
    for version in ["0.7.0", "0.13.0"] {
        assert_eq!(ss_with(version, &new), Outcome::Run, "{version}");
        let m = unready_message(ss_with(version, &old));
        assert!(m.contains("EXTENDEDS3_CONFIGURI is not set"), "{m}");
        let m = unready_message(ss_with(version, &new[1..]));
        assert!(m.contains("EXTENDEDS3_ACCESS_KEY_ID is not set"), "{m}");
        assert_eq!(
            ss_with(
                version,
                &[(
                    "EXTENDEDS3_CONFIGURI",
                    "http://ecs:9020?identity=id&secretKey=s"
                )]
            ),
            Outcome::Run
        );
    }
    let m = unready_message(run_with(
        "pravega/pravega:0.7.0",
        &["segmentstore"],
        &[("TIER2_STORAGE", "EXTENDEDS3")],
        None,
        &[],
        &["pravega-cluster"],
    ));
    assert!(
        m.contains("EXTENDEDS3_CONFIGURI, EXTENDEDS3_BUCKET are not set"),
        "{m}"
    );
}

#[test]
fn segment_store_from_0_11_needs_more_direct_memory_than_cache() {
    const GIB: u64 = 1024 * 1024 * 1024;
    let crash = |o: Outcome| crash_message(o);
    // Default cache (4 GiB) with 2g of direct memory.
    let small = [("JAVA_OPTS", "-Xmx1g -XX:MaxDirectMemorySize=2g")];
    assert_eq!(
        crash(ss("0.11.0", &small, None)),
        (
            1,
            "Cache size (4294967296 B) configured is more than the JVM MaxDirectMemory(2147483648 B) value"
                .to_owned()
        )
    );
    assert_eq!(ss("0.10.0", &small, None), Outcome::Run);
    // A cache smaller than the direct memory passes; equal does not.
    let sized = |cache: &str| {
        format!("-Xmx1g -XX:MaxDirectMemorySize=2G -Dpravegaservice.cache.size.max={cache}")
    };
    let ok = sized("1073741824");
    assert_eq!(ss("0.11.0", &[("JAVA_OPTS", &ok)], None), Outcome::Run);
    let equal = sized("2147483648");
    assert!(matches!(
        ss("0.13.0", &[("JAVA_OPTS", &equal)], None),
        Outcome::Crash { .. }
    ));
    // The legacy name wins.
    let legacy = format!(
        "{} -Dpravegaservice.cacheMaxSize=4294967296",
        sized("1073741824")
    );
    let (_, m) = crash(ss("0.11.0", &[("JAVA_OPTS", &legacy)], None));
    assert!(m.starts_with("Cache size (4294967296 B)"), "{m}");
    // Without MaxDirectMemorySize: -Xmx; without either, a quarter of the memory limit.
    assert_eq!(
        ss("0.11.0", &[("JAVA_OPTS", "-Xmx8g")], Some(GIB)),
        Outcome::Run
    );
    let (_, m) = crash(ss("0.11.0", &[("JAVA_OPTS", "-Xmx4096m")], None));
    assert!(m.ends_with("MaxDirectMemory(4294967296 B) value"), "{m}");
    let (_, m) = crash(ss("0.11.0", &[], Some(8 * GIB)));
    assert!(m.ends_with("MaxDirectMemory(2147483648 B) value"), "{m}");
    assert_eq!(ss("0.11.0", &[], Some(32 * GIB)), Outcome::Run);
    assert_eq!(
        ss(
            "0.11.0",
            &[("JAVA_OPTS", "-XX:MaxRAMPercentage=75")],
            Some(8 * GIB)
        ),
        Outcome::Run
    );
    // No limit and nothing set: not checked.
    assert_eq!(ss("0.11.0", &[], None), Outcome::Run);
    // Sizes.
    assert_eq!(jvm_size("512"), Some(512));
    assert_eq!(jvm_size("2k"), Some(2048));
    assert_eq!(jvm_size("3M"), Some(3 << 20));
    assert_eq!(jvm_size("1t"), Some(1 << 40));
    assert_eq!(jvm_size("1x"), None);
    assert_eq!(jvm_size("g"), None);
    assert_eq!(jvm_size("99999999999999999999g"), None);
}

#[test]
fn segment_store_checks_come_in_start_order() {
    // A script waiting for tier 2 variables never starts the JVM.
    let o = run_with(
        "pravega/pravega:0.11.0",
        &["segmentstore"],
        &[
            ("TIER2_STORAGE", "EXTENDEDS3"),
            ("JAVA_OPTS", "-XX:+PrintGCDateStamps"),
        ],
        None,
        &[],
        &[],
    );
    assert!(unready_message(o).contains("EXTENDEDS3_CONFIGURI"));
    // A JVM refusal comes before the memory check, which comes before tier 2 and bookies.
    let o = run_with(
        "pravega/pravega:0.11.0",
        &["segmentstore"],
        &[(
            "JAVA_OPTS",
            "-XX:+PrintGCDateStamps -XX:MaxDirectMemorySize=1g",
        )],
        None,
        &[],
        &[],
    );
    assert!(crash_message(o).1.starts_with("Unrecognized VM option"));
    let o = run_with(
        "pravega/pravega:0.11.0",
        &["segmentstore"],
        &[("JAVA_OPTS", "-XX:MaxDirectMemorySize=1g")],
        None,
        &[],
        &[],
    );
    assert!(crash_message(o).1.starts_with("Cache size"));
    let o = run_with(
        "pravega/pravega:0.11.0",
        &["segmentstore"],
        &[],
        None,
        &[],
        &[],
    );
    assert!(unready_message(o).starts_with("tier 2 unreachable"));
}

fn server(image: &str, a: &[&str], vars: &[(&str, &str)]) -> Result<Option<HttpServer>, String> {
    let (a, e) = (args(a), env(vars));
    http_server(&Start {
        image,
        args: &a,
        env: &e,
        memory_limit: None,
        mounts: &[],
    })
}

#[test]
fn http_servers_follow_the_image_version_and_settings() {
    let on = [
        ("BK_httpServerEnabled", "true"),
        ("BK_httpServerPort", "8000"),
    ];
    // BookKeeper 4.5 (0.4) has no admin server; 4.7 and 4.9 no state API; 4.10+ both.
    assert_eq!(server("pravega/bookkeeper:0.4.0", &[], &on), Ok(None));
    for (version, state_api) in [
        ("0.5.0", false),
        ("0.8.0", false),
        ("0.9.0", true),
        ("0.13.0", true),
    ] {
        assert_eq!(
            server(&format!("pravega/bookkeeper:{version}"), &[], &on),
            Ok(Some(HttpServer {
                port: 8000,
                api: HttpApi::BookieAdmin { state_api }
            })),
            "{version}"
        );
    }
    assert_eq!(server("pravega/bookkeeper:0.9.0", &[], &[]), Ok(None));
    assert_eq!(
        server(
            "pravega/bookkeeper:0.9.0",
            &[],
            &[("BK_httpServerEnabled", "true")]
        )
        .map(|s| s.map(|s| s.port)),
        Ok(Some(8080))
    );
    assert!(
        server(
            "pravega/bookkeeper:0.9.0",
            &[],
            &[
                ("BK_httpServerEnabled", "true"),
                ("BK_httpServerPort", "http")
            ]
        )
        .is_err()
    );

    // The health API from 0.10: the Controller on REST_SERVER_PORT (default 9091).
    let controller = ["controller"];
    assert_eq!(
        server(
            "pravega/pravega:0.9.0",
            &controller,
            &[("REST_SERVER_PORT", "10080")]
        ),
        Ok(None)
    );
    let health = |component| HttpApi::PravegaHealth { component };
    assert_eq!(
        server(
            "pravega/pravega:0.10.0",
            &controller,
            &[("REST_SERVER_PORT", "10080")]
        ),
        Ok(Some(HttpServer {
            port: 10080,
            api: health("controller")
        }))
    );
    assert_eq!(
        server("pravega/pravega:0.10.0", &controller, &[]).map(|s| s.map(|s| s.port)),
        Ok(Some(9091))
    );
    // The Segment Store only when its REST server binds every address.
    let ss = ["segmentstore"];
    assert_eq!(
        server("pravega/pravega:0.11.0", &ss, &[("JAVA_OPTS", "-Xmx1g")]),
        Ok(None)
    );
    let open = [("JAVA_OPTS", "-Dpravegaservice.rest.listener.host=0.0.0.0")];
    assert_eq!(
        server("pravega/pravega:0.11.0", &ss, &open),
        Ok(Some(HttpServer {
            port: 6061,
            api: health("segmentstore")
        }))
    );
    assert_eq!(server("pravega/pravega:0.9.0", &ss, &open), Ok(None));
    assert_eq!(
        server(
            "pravega/pravega:0.11.0",
            &ss,
            &[(
                "JAVA_OPTS",
                "-Dpravegaservice.rest.listener.host=0.0.0.0 -Dpravegaservice.rest.listener.host=localhost"
            )]
        ),
        Ok(None)
    );
    assert_eq!(
        server(
            "pravega/pravega:0.11.0",
            &ss,
            &[(
                "JAVA_OPTS",
                "-Dpravegaservice.rest.listener.host=0.0.0.0 -Dpravegaservice.rest.listener.enable=false"
            )]
        ),
        Ok(None)
    );
}

#[test]
fn bookie_ids_are_host_names_or_ips() {
    let host = PodHost {
        name: "c-bookie-0",
        namespace: "ns",
        hostname: Some("c-bookie-0"),
        subdomain: Some("c-bookie-headless"),
        pod_ip: Some("127.9.0.2"),
    };
    assert_eq!(
        bookie_id(&env(&[("BK_useHostNameAsBookieID", "true")]), &host),
        "c-bookie-0.c-bookie-headless.ns.svc.cluster.local:3181"
    );
    assert_eq!(
        bookie_id(
            &env(&[
                ("BK_useHostNameAsBookieID", "false"),
                ("BK_bookiePort", "3182")
            ]),
            &host
        ),
        "127.9.0.2:3182"
    );
    assert_eq!(
        bookie_id(&env(&[("BK_advertisedAddress", "bk.example")]), &host),
        "bk.example:3181"
    );
    assert!(is_bookie("pravega/bookkeeper:0.9.0") && !is_bookie("pravega/bookkeeper:latest"));
}
