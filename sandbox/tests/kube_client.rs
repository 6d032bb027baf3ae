//! kube-rs clients against the library sandbox: watches, optimistic concurrency, the status
//! subresource and delete preconditions.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::watcher;
use pravega_sandbox::{Sandbox, SandboxOptions};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

fn cm(name: &str, v: i32) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"test": "w"}}, "data": {"v": v.to_string()}}),
    )
    .expect("configmap")
}

fn api_code(e: &kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(s) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// What the watcher emitted, simplified: `("apply"|"delete"|"init"|"initapply"|"initdone"|"error410", v)`.
async fn next_event<S>(w: &mut S) -> (String, String)
where
    S: futures::Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>> + Unpin,
{
    let ev = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watcher event in time")
        .expect("stream continues");
    let v = |c: &ConfigMap| {
        c.data
            .as_ref()
            .and_then(|d| d.get("v").cloned())
            .unwrap_or_default()
    };
    match ev {
        Ok(watcher::Event::Apply(c)) => ("apply".into(), v(&c)),
        Ok(watcher::Event::Delete(c)) => ("delete".into(), v(&c)),
        Ok(watcher::Event::Init) => ("init".into(), String::new()),
        Ok(watcher::Event::InitApply(c)) => ("initapply".into(), v(&c)),
        Ok(watcher::Event::InitDone) => ("initdone".into(), String::new()),
        Err(watcher::Error::WatchError(s)) => (format!("error{}", s.code), s.reason.clone()),
        Err(e) => panic!("unexpected watcher error: {e}"),
    }
}

/// Sets `data.v` of ConfigMap `a` to `i` with a merge patch.
async fn set_v(api: &Api<ConfigMap>, i: u32) {
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": i.to_string()}})),
    )
    .await
    .expect("patch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_every_change_in_order_across_restarts_and_relists_after_410() {
    let sb = Sandbox::start(SandboxOptions {
        watch_history: 5,
        ..SandboxOptions::default()
    })
    .await
    .expect("sandbox");
    let api: Api<ConfigMap> = Api::namespaced(sb.client().await.expect("client"), "default");
    let mut w = watcher(api.clone(), watcher::Config::default().labels("test=w")).boxed();
    assert_eq!(next_event(&mut w).await.0, "init");
    assert_eq!(next_event(&mut w).await.0, "initdone");

    api.create(&PostParams::default(), &cm("a", 0))
        .await
        .expect("create");
    assert_eq!(next_event(&mut w).await, ("apply".into(), "0".into()));
    for i in 1..=3 {
        set_v(&api, i).await;
        assert_eq!(next_event(&mut w).await, ("apply".into(), i.to_string()));
    }

    // A restart within the history window: the watch resumes, nothing is lost or repeated.
    sb.close_watches();
    for i in 4..=5 {
        set_v(&api, i).await;
    }
    assert_eq!(next_event(&mut w).await, ("apply".into(), "4".into()));
    assert_eq!(next_event(&mut w).await, ("apply".into(), "5".into()));

    // A restart after the window moved on: 410 Gone, then a relist with the current state.
    sb.close_watches();
    for i in 6..=15 {
        set_v(&api, i).await;
    }
    assert_eq!(
        next_event(&mut w).await,
        ("error410".into(), "Expired".into())
    );
    assert_eq!(next_event(&mut w).await.0, "init");
    assert_eq!(next_event(&mut w).await, ("initapply".into(), "15".into()));
    assert_eq!(next_event(&mut w).await.0, "initdone");
    api.delete("a", &DeleteParams::default())
        .await
        .expect("delete");
    assert_eq!(next_event(&mut w).await, ("delete".into(), "15".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_writes_conflict_and_selectors_page() {
    let sb = pravega_sandbox::testing::sandbox().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client().await.expect("client"), "default");
    let first = api
        .create(&PostParams::default(), &cm("c", 1))
        .await
        .expect("create");
    let mut second = first.clone();
    second.data = Some(BTreeMap::from([("v".to_string(), "2".to_string())]));
    api.replace("c", &PostParams::default(), &second)
        .await
        .expect("fresh replace");
    // `first` still carries the old resourceVersion.
    let err = api
        .replace("c", &PostParams::default(), &first)
        .await
        .expect_err("stale replace");
    assert_eq!(api_code(&err), (409, "Conflict".to_string()));
    assert!(
        err.to_string().contains("the object has been modified"),
        "{err}"
    );
    let dup = api
        .create(&PostParams::default(), &cm("c", 1))
        .await
        .expect_err("duplicate");
    assert_eq!(api_code(&dup), (409, "AlreadyExists".to_string()));
    let missing = api.get("nope").await.expect_err("missing");
    assert_eq!(api_code(&missing), (404, "NotFound".to_string()));

    // generateName, label selectors with set operators, limit + continue.
    for tier in ["a", "b", "c", "d"] {
        let o: ConfigMap = serde_json::from_value(
            json!({"metadata": {"generateName": "gen-", "labels": {"tier": tier}}}),
        )
        .expect("cm");
        let made = api
            .create(&PostParams::default(), &o)
            .await
            .expect("generateName");
        assert!(
            made.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("gen-") && n.len() == 9)
        );
    }
    let lp = ListParams::default()
        .labels("tier in (a,b,c),tier!=b")
        .limit(1);
    let page1 = api.list(&lp).await.expect("page 1");
    assert_eq!(page1.items.len(), 1);
    let token = page1.metadata.continue_.clone().expect("continue token");
    let page2 = api
        .list(&lp.clone().continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(page2.items.len(), 1);
    assert!(
        page2
            .metadata
            .continue_
            .as_deref()
            .is_none_or(str::is_empty)
    );
    let tiers: Vec<String> = page1
        .items
        .iter()
        .chain(page2.items.iter())
        .filter_map(|c| {
            c.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("tier").cloned())
        })
        .collect();
    let mut sorted = tiers.clone();
    sorted.sort();
    assert_eq!(sorted, ["a", "c"]);
    let none = api
        .list(&ListParams::default().labels("!tier,test"))
        .await
        .expect("exists");
    assert_eq!(
        none.items.len(),
        1,
        "only the first ConfigMap has `test` and no `tier`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_subresource_is_isolated_and_delete_preconditions_conflict() {
    let sb = pravega_sandbox::testing::sandbox().await;
    let pods: Api<Pod> = Api::namespaced(sb.client().await.expect("client"), "default");
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
        "status": {"phase": "Running"}})).expect("pod");
    let created = pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create");
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending"),
        "status on create is ignored"
    );
    assert_eq!(created.metadata.generation, Some(1));

    // A status write ignores everything but status.
    let s = pods
        .patch_status("p", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}, "spec": {"activeDeadlineSeconds": 5}, "status": {"phase": "Running"}})))
        .await
        .expect("status patch");
    assert_eq!(
        s.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running")
    );
    assert!(s.metadata.labels.is_none());
    assert_eq!(
        s.spec.as_ref().and_then(|s| s.active_deadline_seconds),
        None
    );
    assert_eq!(s.metadata.generation, Some(1));

    // A main-resource write ignores status; a spec change bumps the generation.
    let m = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"activeDeadlineSeconds": 5}, "status": {"phase": "Failed"}}),
            ),
        )
        .await
        .expect("patch");
    assert_eq!(
        m.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running")
    );
    assert_eq!(m.metadata.generation, Some(2));
    let l = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .expect("label patch");
    assert_eq!(
        l.metadata.generation,
        Some(2),
        "metadata changes keep the generation"
    );

    // Delete preconditions: wrong uid or stale resourceVersion conflict.
    let wrong_uid = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let e = pods
        .delete("p", &wrong_uid)
        .await
        .expect_err("uid precondition");
    assert_eq!(api_code(&e), (409, "Conflict".to_string()));
    assert!(
        e.to_string()
            .contains("Precondition failed: UID in precondition: not-the-uid"),
        "{e}"
    );
    let stale_rv = DeleteParams {
        preconditions: Some(Preconditions {
            uid: None,
            resource_version: created.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    let e = pods
        .delete("p", &stale_rv)
        .await
        .expect_err("rv precondition");
    assert_eq!(api_code(&e), (409, "Conflict".to_string()));
    let exact = DeleteParams {
        preconditions: Some(Preconditions {
            uid: l.metadata.uid.clone(),
            resource_version: l.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    pods.delete("p", &exact)
        .await
        .expect("delete with matching preconditions");
    // Unscheduled pods go at once.
    let all = pods.list(&ListParams::default()).await.expect("list");
    assert!(all.items.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selector_watches_dry_run_and_events_through_both_apis() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event;
    use kube::api::{WatchEvent, WatchParams};

    let sb = pravega_sandbox::testing::sandbox().await;
    let client = sb.client().await.expect("client");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // Objects entering and leaving a label selector are ADDED / DELETED for that watch.
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    let mut stream = api
        .watch(&WatchParams::default().labels("role=db"), &rv)
        .await
        .expect("watch")
        .boxed();
    api.create(&PostParams::default(), &cm("x", 1))
        .await
        .expect("create");
    let label = |role: &str| Patch::Merge(json!({"metadata": {"labels": {"role": role}}}));
    api.patch("x", &PatchParams::default(), &label("db"))
        .await
        .expect("enter");
    api.patch("x", &PatchParams::default(), &label("web"))
        .await
        .expect("leave");
    let mut kinds = Vec::new();
    while kinds.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("event")
            .expect("open")
            .expect("ok")
        {
            WatchEvent::Added(c) => kinds.push((
                "ADDED",
                c.metadata.labels.unwrap_or_default()["role"].clone(),
            )),
            WatchEvent::Deleted(c) => kinds.push((
                "DELETED",
                c.metadata.labels.unwrap_or_default()["role"].clone(),
            )),
            WatchEvent::Modified(_) => kinds.push(("MODIFIED", String::new())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        kinds,
        [("ADDED", "db".to_string()), ("DELETED", "web".to_string())]
    );

    // dryRun=All answers with the object but stores nothing.
    let dry = api
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &cm("dry", 1),
        )
        .await
        .expect("dry run");
    assert_eq!(dry.metadata.name.as_deref(), Some("dry"));
    assert_eq!(
        api_code(&api.get("dry").await.expect_err("not stored")),
        (404, "NotFound".to_string())
    );

    // An events.k8s.io/v1 Event is the same object as a core v1 Event (what kubectl describe lists).
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let ev: Event = serde_json::from_value(json!({"metadata": {"name": "x.1"}, "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "pravega-operator", "reportingInstance": "op-0", "action": "Upgrade", "reason": "UpgradeStarted",
        "type": "Normal", "note": "upgrading pod x-0", "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "namespace": "default"}}))
        .expect("event");
    events
        .create(&PostParams::default(), &ev)
        .await
        .expect("create event");
    let core: Api<CoreEvent> = Api::namespaced(client, "default");
    let seen = core
        .list(&ListParams::default().fields("involvedObject.name=x,involvedObject.kind=ConfigMap"))
        .await
        .expect("list");
    assert_eq!(seen.items.len(), 1);
    assert_eq!(seen.items[0].message.as_deref(), Some("upgrading pod x-0"));
    assert_eq!(seen.items[0].reason.as_deref(), Some("UpgradeStarted"));
    let back = events.get("x.1").await.expect("get");
    assert_eq!(back.note.as_deref(), Some("upgrading pod x-0"));
    assert_eq!(back.regarding.and_then(|r| r.name).as_deref(), Some("x"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_merges_and_removes_what_a_manager_stopped_applying() {
    let sb = pravega_sandbox::testing::sandbox().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client().await.expect("client"), "default");
    let apply = |labels: serde_json::Value, data: serde_json::Value| {
        Patch::Apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s", "labels": labels}, "data": data}),
        )
    };
    let pp = PatchParams::apply("pravega-operator").force();
    api.patch(
        "s",
        &pp,
        &apply(json!({"a": "1", "b": "2"}), json!({"x": "1", "y": "2"})),
    )
    .await
    .expect("apply creates");
    // Another manager adds a label of its own.
    api.patch(
        "s",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"other": "z"}}})),
    )
    .await
    .expect("merge");
    let got = api
        .patch("s", &pp, &apply(json!({"a": "1"}), json!({"x": "3"})))
        .await
        .expect("re-apply");
    let labels = got.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("a").map(String::as_str), Some("1"));
    assert!(
        !labels.contains_key("b"),
        "dropped from the applied configuration"
    );
    assert_eq!(
        labels.get("other").map(String::as_str),
        Some("z"),
        "owned by someone else"
    );
    assert_eq!(
        got.data,
        Some(BTreeMap::from([("x".to_string(), "3".to_string())]))
    );
    // fieldManager is required for apply.
    let err = api
        .patch("s", &PatchParams::default(), &apply(json!({}), json!({})))
        .await
        .expect_err("no field manager");
    assert_eq!(api_code(&err).0, 400);
}

/// A paginated list is one snapshot, as on a real API server: every page carries the first
/// page's resourceVersion, an object created between pages is not in them, and a watch started
/// from the list's resourceVersion sees it. (Paging through the live state instead loses such
/// objects for good: kube-rs' watcher and client-go's reflector start watching from the last
/// page's resourceVersion.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paginated_list_is_one_snapshot_and_a_watch_from_it_misses_nothing() {
    let sb = pravega_sandbox::testing::sandbox().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client().await.expect("client"), "default");
    for name in ["b", "d", "f"] {
        api.create(&PostParams::default(), &cm(name, 1))
            .await
            .expect("create");
    }
    let lp = ListParams::default().labels("test=w").limit(2);
    let page1 = api.list(&lp).await.expect("page 1");
    let rv = page1.metadata.resource_version.clone().expect("rv");
    let token = page1.metadata.continue_.clone().expect("continue token");
    assert_eq!(page1.metadata.remaining_item_count, Some(1));
    // Created between the pages, sorting before the next page's start ("a") and within it ("e").
    for name in ["a", "e"] {
        api.create(&PostParams::default(), &cm(name, 2))
            .await
            .expect("create");
    }
    let page2 = api
        .list(&lp.clone().continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(page2.metadata.resource_version.as_deref(), Some(&*rv));
    let names: Vec<String> = page1
        .items
        .iter()
        .chain(&page2.items)
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(names, ["b", "d", "f"], "the snapshot of the first page");
    // A watch from the list's resourceVersion sees both creations.
    let mut events = api
        .watch(&kube::api::WatchParams::default().labels("test=w"), &rv)
        .await
        .expect("watch")
        .boxed();
    let mut added = Vec::new();
    while added.len() < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event in time")
            .expect("the stream continues")
            .expect("an event");
        if let kube::api::WatchEvent::Added(c) = ev {
            added.extend(c.metadata.name);
        }
    }
    assert_eq!(added, ["a", "e"]);
    // Continuing a finished list again, or with a token the server no longer has, is 410.
    let gone = api
        .list(&lp.clone().continue_token(&token))
        .await
        .expect_err("a finished snapshot is gone");
    assert_eq!(api_code(&gone), (410, "Expired".to_string()));
    assert!(
        gone.to_string().contains("continue parameter is too old"),
        "{gone}"
    );
}

/// An object written with owners that are all gone is collected, as the garbage collector
/// collects it on a real cluster (a controller acting on a stale cache re-creates what a
/// deleted owner owned); one with a live owner stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_created_for_an_owner_that_is_gone_is_collected() {
    let sb = pravega_sandbox::testing::sandbox().await;
    let api: Api<ConfigMap> = Api::namespaced(sb.client().await.expect("client"), "default");
    let owner = api
        .create(&PostParams::default(), &cm("owner", 1))
        .await
        .expect("owner");
    let owned_by = |name: &str, uid: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
        ]}}))
        .expect("dependent")
    };
    let uid = owner.metadata.uid.clone().expect("uid");
    api.create(&PostParams::default(), &owned_by("kept", &uid))
        .await
        .expect("dependent of a live owner");
    assert!(api.get_opt("kept").await.expect("get").is_some());
    api.delete("owner", &DeleteParams::default())
        .await
        .expect("delete the owner");
    assert!(
        api.get_opt("kept").await.expect("get").is_none(),
        "collected with its owner"
    );
    // Re-created on a stale belief that the owner still exists.
    api.create(&PostParams::default(), &owned_by("late", &uid))
        .await
        .expect("the create itself succeeds");
    assert!(
        api.get_opt("late").await.expect("get").is_none(),
        "an object whose owners are all gone is collected"
    );
}
