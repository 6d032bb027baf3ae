//! Runs the commands: reads what they need, calls the pure parts, prints.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::core::DynamicObject;
use kube::runtime::{WatchStreamExt, watcher};
use pravega_crds::PravegaCluster;
use pravega_crds::names::cluster_selector;
use serde_json::Value;

use crate::changes::{self, Change};
use crate::cli::{Cli, Command, Output};
use crate::error::Error;
use crate::kube_access::Target;
use crate::render::Style;
use crate::{plan, status};

/// How the output is drawn.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    /// Colours.
    pub style: Style,
    /// stdout is a terminal (`-w` redraws in place).
    pub interactive: bool,
}

/// Runs one command line.
pub async fn run(cli: Cli, terminal: Terminal) -> Result<(), Error> {
    let target = Target::connect(&cli.global.connect_options()).await?;
    match cli.command {
        Command::Status {
            name,
            watch,
            output,
        } => {
            if watch {
                status_watch(&target, &name, output, terminal).await
            } else {
                let report = status_once(&target, &name).await?;
                print_status(&report, output, terminal, false)
            }
        }
        Command::Plan { name, to, output } => plan_cmd(&target, &name, &to, output, terminal).await,
        Command::Upgrade {
            name,
            version,
            canary,
            dry_run,
        } => {
            let raw = target.cluster(&name).await?;
            let change = changes::upgrade(&raw, &version, canary)?;
            let idle = format!("spec.version is already {version}; nothing to change");
            apply(&target, &name, change, dry_run, terminal, &idle).await
        }
        Command::Pause { name, dry_run } => {
            let raw = target.cluster(&name).await?;
            let idle = "spec.upgrade.paused is already true; nothing to change";
            apply(
                &target,
                &name,
                changes::pause(&raw),
                dry_run,
                terminal,
                idle,
            )
            .await
        }
        Command::Resume { name, dry_run } => {
            let raw = target.cluster(&name).await?;
            let idle = "the upgrade is not paused; nothing to change";
            apply(
                &target,
                &name,
                changes::resume(&raw),
                dry_run,
                terminal,
                idle,
            )
            .await
        }
        Command::Rollback { name, dry_run } => {
            let raw = target.cluster(&name).await?;
            let change = changes::rollback(&raw)?;
            let idle = "spec.version is already status.currentVersion; nothing to roll back";
            apply(&target, &name, change, dry_run, terminal, idle).await
        }
    }
}

fn decode(raw: &Value, name: &str) -> Result<PravegaCluster, Error> {
    serde_json::from_value(raw.clone())
        .map_err(|e| Error::decode(format!("pravegacluster {name}"), e))
}

async fn status_once(target: &Target, name: &str) -> Result<status::StatusReport, Error> {
    let raw = target.cluster(name).await?;
    let cluster = decode(&raw, name)?;
    let pods = target.pods(name).await?;
    let events = target.events(name).await?;
    Ok(status::report(
        &raw,
        &cluster,
        &pods,
        &events,
        Timestamp::now(),
    ))
}

fn print_status(
    report: &status::StatusReport,
    output: Option<Output>,
    terminal: Terminal,
    watching: bool,
) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    match output {
        Some(Output::Json) => {
            let text = if watching {
                serde_json::to_string(report)
            } else {
                serde_json::to_string_pretty(report)
            }
            .map_err(|e| Error::decode("the status report", e))?;
            writeln!(stdout, "{text}")?;
        }
        None => {
            if watching && terminal.interactive {
                // Redraw in place: cursor home, clear the screen.
                write!(stdout, "\x1b[H\x1b[2J")?;
            }
            write!(stdout, "{}", status::render(report, terminal.style))?;
            if watching && !terminal.interactive {
                writeln!(stdout)?;
            }
        }
    }
    stdout.flush()?;
    Ok(())
}

enum Update {
    Cluster(Box<watcher::Event<DynamicObject>>),
    Pod(Box<watcher::Event<Pod>>),
}

/// The objects a watch has delivered, with the relist buffer of `watcher`'s `Init` phase.
struct Cache<K> {
    objects: BTreeMap<String, K>,
    buffer: Option<BTreeMap<String, K>>,
    synced: bool,
}

impl<K: kube::Resource> Cache<K> {
    fn new() -> Self {
        Cache {
            objects: BTreeMap::new(),
            buffer: None,
            synced: false,
        }
    }

    fn key(object: &K) -> String {
        object.meta().name.clone().unwrap_or_default()
    }

    /// Applies one event; returns true when the object set may have changed.
    fn apply(&mut self, event: watcher::Event<K>) -> bool {
        match event {
            watcher::Event::Init => {
                self.buffer = Some(BTreeMap::new());
                false
            }
            watcher::Event::InitApply(o) => {
                self.buffer
                    .get_or_insert_with(BTreeMap::new)
                    .insert(Self::key(&o), o);
                false
            }
            watcher::Event::InitDone => {
                self.objects = self.buffer.take().unwrap_or_default();
                self.synced = true;
                true
            }
            watcher::Event::Apply(o) => {
                self.objects.insert(Self::key(&o), o);
                true
            }
            watcher::Event::Delete(o) => {
                self.objects.remove(&Self::key(&o));
                true
            }
        }
    }
}

/// `status -w`: redraws whenever a watch on the cluster or on its pods reports a change that
/// changes what is shown. Ends on Ctrl-C, or when the cluster is deleted.
async fn status_watch(
    target: &Target,
    name: &str,
    output: Option<Output>,
    terminal: Terminal,
) -> Result<(), Error> {
    // Fail at once, as kubectl does, when the cluster does not exist.
    target.cluster(name).await?;
    let cluster_watch = watcher(
        target.clusters(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    )
    .default_backoff()
    .map_ok(|e| Update::Cluster(Box::new(e)));
    let pods: Api<Pod> = Api::namespaced(target.client.clone(), &target.namespace);
    let pod_watch = watcher(
        pods,
        watcher::Config::default().labels(&cluster_selector(name)),
    )
    .default_backoff()
    .map_ok(|e| Update::Pod(Box::new(e)));
    let mut updates = futures::stream::select(cluster_watch.boxed(), pod_watch.boxed());

    let mut clusters: Cache<DynamicObject> = Cache::new();
    let mut members: Cache<Pod> = Cache::new();
    let mut shown: Option<status::StatusReport> = None;
    let mut last_error: Option<String> = None;
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        let first = tokio::select! {
            _ = &mut interrupt => return Ok(()),
            next = updates.next() => next,
        };
        let mut batch = vec![first];
        // Take what arrives together as one change (a pod replacement is several events).
        while let Ok(next) = tokio::time::timeout(Duration::from_millis(50), updates.next()).await {
            let end = next.is_none();
            batch.push(next);
            if end {
                break;
            }
        }
        let mut changed = false;
        for item in batch {
            match item {
                None => {
                    return Err(Error::Transport(
                        "the watch on the cluster ended".to_owned(),
                    ));
                }
                Some(Err(e)) => {
                    // The watcher retries with backoff; say it once per distinct error.
                    let text = e.to_string();
                    if last_error.as_deref() != Some(&text) {
                        eprintln!("watch: {text} (retrying)");
                        last_error = Some(text);
                    }
                }
                Some(Ok(Update::Cluster(e))) => {
                    last_error = None;
                    changed |= clusters.apply(*e);
                }
                Some(Ok(Update::Pod(e))) => {
                    last_error = None;
                    changed |= members.apply(*e);
                }
            }
        }
        if !changed || !clusters.synced || !members.synced {
            continue;
        }
        let Some(object) = clusters.objects.get(name) else {
            println!("pravegacluster {name} deleted");
            return Ok(());
        };
        let raw = serde_json::to_value(object)
            .map_err(|e| Error::decode(format!("pravegacluster {name}"), e))?;
        let cluster = decode(&raw, name)?;
        let pods: Vec<Pod> = members.objects.values().cloned().collect();
        let events = target.events(name).await?;
        let report = status::report(&raw, &cluster, &pods, &events, Timestamp::now());
        let key = report.state_key();
        if shown.as_ref() != Some(&key) {
            print_status(&report, output, terminal, true)?;
            shown = Some(key);
        }
    }
}

async fn plan_cmd(
    target: &Target,
    name: &str,
    to: &str,
    output: Option<Output>,
    terminal: Terminal,
) -> Result<(), Error> {
    let raw = target.cluster(name).await?;
    let cluster = decode(&raw, name)?;
    let pods = target.pods(name).await?;
    let report = plan::report(&cluster, &pods, to, Timestamp::now());
    let mut stdout = std::io::stdout().lock();
    match output {
        Some(Output::Json) => {
            let text =
                serde_json::to_string_pretty(&report).map_err(|e| Error::decode("the plan", e))?;
            writeln!(stdout, "{text}")?;
        }
        None => {
            write!(stdout, "{}", plan::render(&report, terminal.style))?;
            if report.verdict.allowed && !report.replacements.is_empty() {
                writeln!(
                    stdout,
                    "\nTo start it: kubectl pravega {}upgrade {name} {to}",
                    target.namespace_flag()
                )?;
            }
        }
    }
    stdout.flush()?;
    match report.verdict.message {
        Some(message) if !report.verdict.allowed => Err(Error::Denied(message)),
        _ => Ok(()),
    }
}

/// Sends `change` (if any) and prints what changed, the API server's warnings (on stderr, as
/// kubectl prints them) and the command to watch it.
async fn apply(
    target: &Target,
    name: &str,
    change: Option<Change>,
    dry_run: bool,
    terminal: Terminal,
    unchanged: &str,
) -> Result<(), Error> {
    let Some(change) = change else {
        println!("pravegacluster.pravega.pravega.io/{name} unchanged: {unchanged}");
        return Ok(());
    };
    let (warnings, outcome) = target.merge_patch(name, &change.patch, dry_run).await;
    for w in &warnings {
        eprintln!("{} {w}", terminal_warning(terminal));
    }
    outcome?;
    let suffix = if dry_run { " (server dry run)" } else { "" };
    println!("pravegacluster.pravega.pravega.io/{name} patched{suffix}");
    for line in &change.summary {
        println!("  {line}");
    }
    if !dry_run {
        println!(
            "Watch it: kubectl pravega {}status {name} -w",
            target.namespace_flag()
        );
    }
    Ok(())
}

fn terminal_warning(terminal: Terminal) -> String {
    // kubectl colours warnings only on a terminal too; stderr follows stdout's choice here.
    terminal.style.yellow("Warning:")
}
