use super::*;
use serde_json::json;

fn spec(v: serde_json::Value) -> PravegaClusterSpec {
    serde_json::from_value(v).unwrap()
}

fn refused(v: serde_json::Value) -> String {
    match check_spec(&spec(v)) {
        Err((_, m)) => m,
        Ok(w) => panic!("allowed with warnings {w:?}"),
    }
}

#[test]
fn the_defaults_pass_at_every_supported_version() {
    for v in [
        "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "0.9.0", "0.10.0", "0.11.0", "0.13.0",
    ] {
        assert_eq!(check_spec(&spec(json!({"version": v}))), Ok(vec![]), "{v}");
    }
}

#[test]
fn heaps_must_fit_the_memory_limit() {
    let m = refused(json!({"version": "0.7.0", "pravega": {"segmentStoreJVMOptions": ["-Xmx4g"]}}));
    assert!(m.contains("spec.pravega.segmentStoreJVMOptions: the Segment Store heap (-Xmx, 4Gi) must be smaller than the container's memory limit (spec.pravega.segmentStoreResources.limits.memory, 2Gi)"), "{m}");
    let m = refused(
        json!({"version": "0.7.0", "bookkeeper": {"bookkeeperJVMOptions": {"memoryOpts": ["-Xmx1g", "-XX:MaxDirectMemorySize=1536m"]}}}),
    );
    assert!(m.contains("add up to more than"), "{m}");
    let m = refused(json!({"version": "0.7.0", "pravega": {"controllerjvmOptions": ["-Xmx1gb"]}}));
    assert!(
        m.contains("spec.pravega.controllerjvmOptions: -Xmx1gb"),
        "{m}"
    );
}

#[test]
fn direct_memory_must_exceed_the_cache_from_0_11() {
    let s = json!({"version": "0.11.0", "pravega": {
        "segmentStoreResources": {"limits": {"memory": "8Gi"}},
        "segmentStoreJVMOptions": ["-Xmx2g", "-XX:MaxDirectMemorySize=4g"],
        "options": {"pravegaservice.cache.size.max": "4294967296"}}});
    let m = refused(s.clone());
    assert!(m.contains("exceeds the cache size (4Gi)"), "{m}");
    let mut older = s;
    older["version"] = json!("0.10.0");
    let w = check_spec(&spec(older)).unwrap();
    assert!(
        w[0].contains("does not fit the Segment Store's direct memory"),
        "{w:?}"
    );
    let m = refused(
        json!({"version": "0.11.0", "pravega": {"options": {"pravegaservice.cacheMaxSize": "1g"}}}),
    );
    assert!(m.contains("must be a number of bytes"), "{m}");
}

#[test]
fn java_11_images_refuse_removed_flags() {
    let s = json!({"version": "0.9.0", "pravega": {"controllerjvmOptions": ["-XX:+UseCGroupMemoryLimitForHeap"]}});
    let m = refused(s.clone());
    assert!(
        m.contains("run Java 11, which refuses -XX:+UseCGroupMemoryLimitForHeap"),
        "{m}"
    );
    let mut old = s;
    old["version"] = json!("0.8.0");
    assert!(check_spec(&spec(old)).is_ok());
}

#[test]
fn tier2_needs_what_its_kind_needs() {
    let m = refused(
        json!({"version": "0.5.0", "pravega": {"tier2": {"ecs": {"uri": "http://ecs:9020", "bucket": "b"}}}}),
    );
    assert!(m.contains("ecs.credentials is required"), "{m}");
    let m = refused(
        json!({"version": "0.5.0", "pravega": {"tier2": {"filesystem": {"persistentVolumeClaim": {"claimName": "Bad_Name"}}}}}),
    );
    assert!(
        m.contains("claimName \"Bad_Name\" is not a valid object name"),
        "{m}"
    );
    let m = refused(
        json!({"version": "0.5.0", "pravega": {"tier2": {"filesystem": {}, "hdfs": {"uri": "hdfs://x"}}}}),
    );
    assert!(m.contains("sets filesystem and hdfs"), "{m}");
    let m = refused(
        json!({"version": "0.5.0", "pravega": {"segmentStoreResources": {"limits": {"cpu": "banana"}}}}),
    );
    assert!(
        m.contains(
            "spec.pravega.segmentStoreResources.limits.cpu: \"banana\" is not a Kubernetes quantity"
        ),
        "{m}"
    );
}

#[test]
fn options_that_a_start_script_would_split_are_refused() {
    let m = refused(json!({"version": "0.7.0", "pravega": {"options": {"a.b": "x y"}}}));
    assert!(
        m.starts_with("spec.pravega.options[a.b]: keys and values go to the JVM"),
        "{m}"
    );
    let m = refused(
        json!({"version": "0.7.0", "bookkeeper": {"options": {"BOOKIE_EXTRA_OPTS": "-Xms1g -Xmx1g"}}}),
    );
    assert!(m.contains("bookkeeperJVMOptions"), "{m}");
    assert!(
        check_spec(&spec(
            json!({"version": "0.7.0", "bookkeeper": {"options": {"BOOKIE_EXTRA_OPTS": "-Xmx1g"}}})
        ))
        .is_ok()
    );
}

#[test]
fn values_that_pass_the_schema_but_break_later_are_refused() {
    let long = "0.5.0-".to_owned() + &"a".repeat(60);
    let (reason, m) = check_spec(&spec(json!({"version": long}))).unwrap_err();
    assert_eq!(reason, DenyReason::InvalidVersion);
    assert!(m.contains("66 characters long"), "{m}");
    let m = refused(
        json!({"version": "0.5.0", "bookkeeper": {"image": {"repository": "Pravega/BookKeeper"}}}),
    );
    assert!(m.contains("is not a valid image repository"), "{m}");
    for ok in [
        "pravega/pravega",
        "registry.example.com:5000/pravega/pravega",
        "localhost/a__b",
        "a-b.c/d--e",
    ] {
        assert!(is_repository(ok), "{ok}");
    }
    for bad in [
        "Pravega/BookKeeper",
        "a//b",
        "-a",
        "a-",
        "host:notaport/x",
        "a b",
    ] {
        assert!(!is_repository(bad), "{bad}");
    }
    let m = refused(json!({"version": "0.5.0", "zookeeperUri": "a\nb"}));
    assert!(m.contains("is not a ZooKeeper connection string"), "{m}");
    for ok in [
        "zk:2181",
        "zk-0.zk:2181,zk-1.zk:2181/pravega",
        "10.0.0.1:2181",
        "[::1]:2181",
    ] {
        assert_eq!(check_zookeeper_uri(ok), Ok(()), "{ok}");
    }
    for bad in ["zk", "zk:0", "zk:99999", ":2181", "zk:2181/", "a b:2181"] {
        assert!(check_zookeeper_uri(bad).is_err(), "{bad}");
    }
    let m = refused(json!({"version": "0.5.0", "upgrade": {"timeout": "0s"}}));
    assert!(m.contains("too short"), "{m}");
    let m = refused(
        json!({"version": "0.5.0", "upgrade": {"timeout": "1m", "podStabilization": "60s"}}),
    );
    assert!(
        m.contains(
            "spec.upgrade.podStabilization 60s must be shorter than spec.upgrade.timeout 1m"
        ),
        "{m}"
    );
    let m = refused(json!({"version": "0.5.0", "upgrade": {"podStabilization": "soon"}}));
    assert!(m.contains("spec.upgrade.podStabilization:"), "{m}");
    let m = refused(json!({"version": "0.5.0", "bookkeeper": {"replicas": 1000000}}));
    assert!(
        m.contains("spec.bookkeeper.replicas is 1000000; this operator manages at most 100"),
        "{m}"
    );
    assert_eq!(MAX_CLUSTER_NAME, 31);
    assert!(check_cluster_name(&"a".repeat(31)).is_ok());
    let (_, m) = check_cluster_name(&"a".repeat(32)).unwrap_err();
    assert!(
        m.contains("is 32 characters; a PravegaCluster name can have at most 31"),
        "{m}"
    );
}

#[test]
fn fields_not_honoured_yet_warn() {
    let w = check_spec(&spec(json!({"version": "0.4.0",
        "externalAccess": {"enabled": true, "type": "LoadBalancer"},
        "tls": {"static": {"controllerSecret": "c"}},
        "bookkeeper": {"image": {"repository": "pravega/bookkeeper", "tag": "0.3.0"}, "options": {"a": "b"}}}))).unwrap();
    assert_eq!(w.len(), 4, "{w:?}");
    assert!(w[0].starts_with("spec.externalAccess is accepted but not honoured yet"));
    assert!(w[2].contains("spec.bookkeeper.image.tag 0.3.0 is ignored"));
    assert!(w[3].contains("ignored by pravega/bookkeeper 0.4 images"));
    let w = check_spec(&spec(json!({"version": "0.14.0"}))).unwrap();
    assert!(
        w[0].contains("outside the versions this operator knows (0.4 to 0.13)"),
        "{w:?}"
    );
}

#[test]
fn settings_that_hold_data_never_change() {
    let old = spec(json!({"version": "0.5.0"}));
    let same_count = spec(
        json!({"version": "0.5.0", "pravega": {"options": {"pravegaservice.containerCount": "4"}}}),
    );
    assert_eq!(check_change(&old, &same_count), Ok(()));
    let more = spec(
        json!({"version": "0.5.0", "pravega": {"options": {"controller.container.count": "8"}}}),
    );
    let (_, m) = check_change(&old, &more).unwrap_err();
    assert!(m.contains("controller.containerCount / controller.container.count) cannot change once the cluster exists (it is 4; the request makes it 8)"), "{m}");
    let hdfs = spec(
        json!({"version": "0.5.0", "pravega": {"tier2": {"hdfs": {"uri": "hdfs://nn:8020"}}}}),
    );
    let (_, m) = check_change(&old, &hdfs).unwrap_err();
    assert!(
        m.contains("(it is filesystem; the request makes it hdfs)"),
        "{m}"
    );
    let explicit_default =
        spec(json!({"version": "0.5.0", "pravega": {"tier2": {"filesystem": {}}}}));
    assert_eq!(check_change(&old, &explicit_default), Ok(()));
    let bigger = spec(
        json!({"version": "0.5.0", "bookkeeper": {"storage": {"ledgerVolumeClaimTemplate": {"resources": {"requests": {"storage": "50Gi"}}}}}}),
    );
    let (_, m) = check_change(&old, &bigger).unwrap_err();
    assert!(
        m.starts_with("spec.bookkeeper.storage.ledgerVolumeClaimTemplate cannot change"),
        "{m}"
    );
    // The webhook's check (two specs) and the operator's (recorded settings) agree.
    for new in [&same_count, &more, &hdfs, &explicit_default, &bigger] {
        assert_eq!(
            check_change(&old, new),
            check_fixed(&fixed_settings(&old), &fixed_settings(new))
        );
    }
}
