//! The `pravega/bookkeeper` image: conf/bkenv.sh as apache/bookkeeper's scripts read it, what
//! makes a bookie refuse to start, and the id it registers under.

use super::http::{BOOKIE_DEFAULT_PORT, port};
use super::jvm::java11_refusal;
use super::{Outcome, Version, v};
use std::collections::BTreeMap;

// Bookies.

/// The keys of conf/bkenv.sh and their lines, identical in apache/bookkeeper
/// conf/bkenv.sh@release-4.7.3, @release-4.9.2, @release-4.11.1 and @release-4.14.1, the bases
/// of the 0.5 to 0.13 bookie images (docker/bookkeeper/Dockerfile@v0.5.0..v0.13.0). The lines
/// are commented out (`# KEY=`); apply-config-from-env.py uncomments and replaces a line in
/// place, so the key stays on its line.
const BKENV_KEYS: [(&str, u32); 17] = [
    ("BOOKIE_CONF", 29),
    ("BOOKIE_ZK_CONF", 32),
    ("BOOKIE_EXTRA_OPTS", 35),
    ("BOOKIE_EXTRA_CLASSPATH", 38),
    ("BOOKIE_PID_DIR", 41),
    ("BOOKIE_STOP_TIMEOUT", 44),
    ("BOOKIE_LOG_CONF", 57),
    ("BOOKIE_LOG_DIR", 60),
    ("BOOKIE_LOG_FILE", 63),
    ("BOOKIE_ROOT_LOGGER", 66),
    ("BOOKIE_MAX_HEAP_MEMORY", 72),
    ("BOOKIE_MIN_HEAP_MEMORY", 73),
    ("BOOKIE_MAX_DIRECT_MEMORY", 74),
    ("BOOKIE_MEM_OPTS", 75),
    ("BOOKIE_GC_OPTS", 78),
    ("BOOKIE_GC_LOGGING_OPTS", 81),
    ("BOOKIE_PERF_OPTS", 84),
];

/// The variables bin/common.sh puts on the bookie's java command line (apache/bookkeeper
/// bin/common.sh@release-4.9.2).
pub(super) const BOOKIE_JVM_VARIABLES: [&str; 4] = [
    "BOOKIE_MEM_OPTS",
    "BOOKIE_GC_OPTS",
    "BOOKIE_GC_LOGGING_OPTS",
    "BOOKIE_EXTRA_OPTS",
];

/// Splits a line as bash does into words, removing quotes. `None` for an unterminated quote.
pub(super) fn shell_words(line: &str) -> Option<Vec<(String, bool)>> {
    // Each word, and whether its first `=` (if any) was unquoted after a valid name, i.e.
    // whether bash reads it as an assignment.
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut assignment = false;
    let mut quoted_before_eq = false;
    let mut chars = line.chars().peekable();
    let mut end_word = |word: &mut String, in_word: &mut bool, assignment: &mut bool| {
        if *in_word {
            words.push((std::mem::take(word), *assignment));
        }
        *in_word = false;
        *assignment = false;
    };
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                end_word(&mut word, &mut in_word, &mut assignment);
                quoted_before_eq = false;
            }
            '\'' => {
                in_word = true;
                quoted_before_eq |= !word.contains('=');
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return None,
                    }
                }
            }
            '"' => {
                in_word = true;
                quoted_before_eq |= !word.contains('=');
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return None,
                        },
                        Some(c) => word.push(c),
                        None => return None,
                    }
                }
            }
            '\\' => {
                in_word = true;
                quoted_before_eq |= !word.contains('=');
                if let Some(c) = chars.next()
                    && c != '\n'
                {
                    word.push(c);
                }
            }
            '=' if in_word && !word.contains('=') && !quoted_before_eq && is_name(&word) => {
                assignment = true;
                word.push(c);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end_word(&mut word, &mut in_word, &mut assignment);
    Some(words)
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What bash does with the line `KEY=value` that apply-config-from-env.py writes: the command
/// it tries to run (a word after the assignments), or the value it assigns.
enum BkenvLine {
    Assigns(String),
    Runs(String),
    Unparsed,
}

fn bkenv_line(key: &str, value: &str) -> BkenvLine {
    let Some(words) = shell_words(&format!("{key}={value}")) else {
        return BkenvLine::Unparsed;
    };
    let mut words = words.into_iter();
    let assigned = match words.next() {
        Some((w, true)) => w
            .split_once('=')
            .map(|(_, v)| v.to_owned())
            .unwrap_or_default(),
        _ => return BkenvLine::Unparsed,
    };
    match words.find(|(_, is_assignment)| !is_assignment) {
        Some((command, _)) => BkenvLine::Runs(command),
        None => BkenvLine::Assigns(assigned),
    }
}

/// The `BK_BOOKIE_*` variables apply-config-from-env.py writes into conf/bkenv.sh (apache/
/// bookkeeper docker/scripts/apply-config-from-env.py@release-4.7.3..release-4.14.1: every
/// variable `BK_<key>` whose key is in a file of conf/ replaces that key's line with
/// `<key>=<value>`, unquoted), in the order bash reads them. Keys not in bkenv.sh are taken as
/// if they were (after the known ones), to be safe.
pub(super) fn bkenv_lines(env: &BTreeMap<String, String>) -> Vec<(Option<u32>, &str, &str)> {
    let mut lines: Vec<(Option<u32>, &str, &str)> = env
        .iter()
        .filter_map(|(name, value)| {
            let key = name.strip_prefix("BK_")?;
            key.starts_with("BOOKIE_").then(|| {
                let line = BKENV_KEYS.iter().find(|(k, _)| *k == key).map(|(_, l)| *l);
                (line, key, value.as_str())
            })
        })
        .collect();
    lines.sort_by_key(|(line, key, _)| (line.unwrap_or(u32::MAX), *key));
    lines
}

pub(super) fn bookie(version: Version, env: &BTreeMap<String, String>) -> Outcome {
    // From 0.5 the image runs apply-config-from-env.py (docker/bookkeeper/Dockerfile@v0.5.0
    // FROM apache/bookkeeper:4.7.3); the 0.4 image (BookKeeper 4.5.0) has no such script and
    // ignores BK_* variables (docker/bookkeeper/entrypoint.sh@v0.4.0).
    let mut jvm_vars: BTreeMap<&str, String> = BOOKIE_JVM_VARIABLES
        .iter()
        .filter_map(|k| env.get(*k).map(|v| (*k, v.clone())))
        .collect();
    if version >= v(0, 5) {
        for (line, key, value) in bkenv_lines(env) {
            match bkenv_line(key, value) {
                BkenvLine::Runs(command) => {
                    // bin/bookkeeper sources conf/bkenv.sh; from BookKeeper 4.9 it runs under
                    // `set -e` (apache/bookkeeper bin/bookkeeper@release-4.9.0), so the failed
                    // command aborts the bookie; the 0.7 image is FROM apache/bookkeeper:4.9.2
                    // (docker/bookkeeper/Dockerfile@v0.7.0). 0.5 and 0.6 are FROM 4.7.3, whose
                    // bin/bookkeeper has no `set -e`: the line fails and the bookie starts
                    // (without that variable).
                    if version >= v(0, 7) {
                        let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
                        return Outcome::Crash {
                            exit_code: 127,
                            message: format!(
                                "/opt/bookkeeper/conf/bkenv.sh: {at}{command}: command not found"
                            ),
                        };
                    }
                }
                // Sourced after the environment is read: the variable takes this value.
                BkenvLine::Assigns(assigned) => {
                    if let Some(name) = BOOKIE_JVM_VARIABLES.iter().find(|n| **n == key) {
                        jvm_vars.insert(name, assigned);
                    }
                }
                BkenvLine::Unparsed => {}
            }
        }
    }
    // Java 11 from 0.9 (docker/bookkeeper/entrypoint.sh@v0.9.0 runs java-11); bin/common.sh
    // puts these variables, unquoted, on the java command line.
    if version >= v(0, 9) {
        let flags: Vec<&str> = BOOKIE_JVM_VARIABLES
            .iter()
            .filter_map(|k| jvm_vars.get(k))
            .flat_map(|v| v.split_whitespace())
            .collect();
        if let Some(message) = java11_refusal(&flags) {
            return Outcome::Crash {
                exit_code: 1,
                message,
            };
        }
    }
    Outcome::Run
}
/// Where a pod is found on the network, for a bookie's id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PodHost<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub hostname: Option<&'a str>,
    pub subdomain: Option<&'a str>,
    pub pod_ip: Option<&'a str>,
}
/// The id under which a bookie registers (what `list_bookies` shows): `BK_advertisedAddress`
/// when set, else with `BK_useHostNameAsBookieID=true` the pod's canonical host name (its FQDN
/// `<hostname>.<subdomain>.<namespace>.svc.cluster.local` when the pod has a subdomain, as a
/// StatefulSet's pods do; `useShortHostName` is false by default), else its IP; then
/// `:<bookiePort>` (Bookie.getBookieAddress@release-4.9.2, BookieImpl.getBookieAddress
/// @release-4.14.1; `bookieId`, 4.12+, is not modelled).
pub(crate) fn bookie_id(env: &BTreeMap<String, String>, host: &PodHost<'_>) -> String {
    let value = |name: &str| env.get(name).map(String::as_str).unwrap_or("").trim();
    let port = port("BK_bookiePort", value("BK_bookiePort")).unwrap_or(BOOKIE_DEFAULT_PORT);
    let address = match value("BK_advertisedAddress") {
        "" if value("BK_useHostNameAsBookieID").eq_ignore_ascii_case("true") => {
            let hostname = host.hostname.filter(|h| !h.is_empty()).unwrap_or(host.name);
            match host.subdomain.filter(|s| !s.is_empty()) {
                Some(sub) => format!("{hostname}.{sub}.{}.svc.cluster.local", host.namespace),
                None => hostname.to_owned(),
            }
        }
        "" => host.pod_ip.unwrap_or_default().to_owned(),
        advertised => advertised.to_owned(),
    };
    format!("{address}:{port}")
}
