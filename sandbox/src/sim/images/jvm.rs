//! The JVM's side of the images: flags Java 11 refuses, sizes, and the `JAVA_OPTS` flags.

use std::collections::BTreeMap;

/// Flags Java 11 no longer knows (JDK 9 removed the GC logging flags in favour of unified
/// logging, JDK 11 removed UseCGroupMemoryLimitForHeap).
const REMOVED_IN_JAVA_11: [&str; 10] = [
    "UseCGroupMemoryLimitForHeap",
    "PrintGCDateStamps",
    "PrintGCTimeStamps",
    "PrintGCApplicationStoppedTime",
    "PrintGCApplicationConcurrentTime",
    "PrintTenuringDistribution",
    "PrintHeapAtGC",
    "UseGCLogFileRotation",
    "NumberOfGCLogFiles",
    "GCLogFileSize",
];

/// Why a Java 11 JVM refuses to start with `flags`: the first flag it does not know, unless
/// `-XX:+IgnoreUnrecognizedVMOptions` is among them. The JVM names the option as given after
/// `-XX:`, without its sign (hotspot arguments.cpp `Unrecognized VM option '%s'`).
pub(super) fn java11_refusal(flags: &[&str]) -> Option<String> {
    if flags.contains(&"-XX:+IgnoreUnrecognizedVMOptions") {
        return None;
    }
    flags.iter().find_map(|flag| {
        let option = flag.strip_prefix("-XX:")?;
        let name = option.strip_prefix(['+', '-']).unwrap_or(option);
        let bare = name.split('=').next().unwrap_or(name);
        REMOVED_IN_JAVA_11.contains(&bare).then(|| {
            format!(
                "Unrecognized VM option '{name}'\nError: Could not create the Java Virtual Machine."
            )
        })
    })
}

/// A JVM size: digits with an optional `k`, `m`, `g` or `t` suffix (either case).
pub(super) fn jvm_size(s: &str) -> Option<u64> {
    let (digits, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], Some(c.to_ascii_lowercase())),
        _ => (s, None),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let shift = match unit {
        None => 0,
        Some('k') => 10,
        Some('m') => 20,
        Some('g') => 30,
        Some('t') => 40,
        Some(_) => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// The value of the last `<prefix><value>` among `flags` (the JVM keeps the last one).
pub(super) fn last_value<'a>(flags: &[&'a str], prefix: &str) -> Option<&'a str> {
    flags.iter().rev().find_map(|f| f.strip_prefix(prefix))
}

/// `JAVA_OPTS` as the pravega image's scripts pass it to java: unquoted, so split on
/// whitespace (docker/pravega/scripts/entrypoint.sh@v0.5.0..v0.13.0).
pub(super) fn java_opts(env: &BTreeMap<String, String>) -> Vec<&str> {
    env.get("JAVA_OPTS")
        .map(|o| o.split_whitespace().collect())
        .unwrap_or_default()
}
