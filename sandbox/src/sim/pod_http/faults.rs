//! The annotations that put faults into a pod's HTTP answers, and how they are read.

use std::collections::BTreeMap;

/// Annotation: how many under-replicated ledgers this bookie pod adds to its cluster's count.
pub const UNDER_REPLICATED_LEDGERS: &str = "sandbox.pravega.io/under-replicated-ledgers";
/// Annotation: `unhealthy` makes the pod's health checks fail.
pub const HEALTH: &str = "sandbox.pravega.io/health";
/// Annotation: `true` makes the pod's servers refuse connections.
pub const UNREACHABLE: &str = "sandbox.pravega.io/unreachable";
/// Annotation: `true` makes a bookie read-only.
pub const BOOKIE_READ_ONLY: &str = "sandbox.pravega.io/bookie-read-only";

/// The most under-replicated ledgers one pod may claim (bounds the answer's size).
pub const MAX_UNDER_REPLICATED_LEDGERS: u64 = 100_000;

/// Ledger ids of a cluster's under-replicated ledgers start here (distinct, ascending).
pub(super) const FIRST_LEDGER_ID: u64 = 1000;

/// The faults a pod's annotations inject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Faults {
    pub under_replicated: u64,
    pub unhealthy: bool,
    pub unreachable: bool,
    pub read_only: bool,
}

/// Reads the fault annotations; the second part lists `(annotation, value, why)` for the values
/// that cannot be read (they are ignored).
pub(crate) fn faults(
    annotations: &BTreeMap<String, String>,
) -> (Faults, Vec<(String, String, String)>) {
    let mut f = Faults::default();
    let mut bad = Vec::new();
    let flag = |key: &str, accepted: (&str, &str), bad: &mut Vec<_>| -> bool {
        match annotations.get(key).map(|v| v.trim()) {
            None => false,
            Some(v) if v.eq_ignore_ascii_case(accepted.0) => true,
            Some(v) if v.is_empty() || v.eq_ignore_ascii_case(accepted.1) => false,
            Some(v) => {
                bad.push((
                    key.to_owned(),
                    v.to_owned(),
                    format!("expected {:?} or {:?}", accepted.0, accepted.1),
                ));
                false
            }
        }
    };
    f.unhealthy = flag(HEALTH, ("unhealthy", "healthy"), &mut bad);
    f.unreachable = flag(UNREACHABLE, ("true", "false"), &mut bad);
    f.read_only = flag(BOOKIE_READ_ONLY, ("true", "false"), &mut bad);
    if let Some(v) = annotations.get(UNDER_REPLICATED_LEDGERS) {
        match v.trim().parse::<u64>() {
            Ok(n) if n <= MAX_UNDER_REPLICATED_LEDGERS => f.under_replicated = n,
            _ => bad.push((
                UNDER_REPLICATED_LEDGERS.to_owned(),
                v.clone(),
                format!("expected a whole number from 0 to {MAX_UNDER_REPLICATED_LEDGERS}"),
            )),
        }
    }
    (f, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fault_annotations_are_read_and_bad_values_ignored() {
        let (f, bad) = faults(&annotations(&[
            (UNDER_REPLICATED_LEDGERS, "3"),
            (HEALTH, "unhealthy"),
            (UNREACHABLE, "true"),
            (BOOKIE_READ_ONLY, "false"),
        ]));
        assert_eq!(
            f,
            Faults {
                under_replicated: 3,
                unhealthy: true,
                unreachable: true,
                read_only: false
            }
        );
        assert!(bad.is_empty());
        let (f, bad) = faults(&annotations(&[
            (UNDER_REPLICATED_LEDGERS, "abc"),
            (HEALTH, "sick"),
            (UNREACHABLE, "yes"),
        ]));
        assert_eq!(f, Faults::default());
        let keys: Vec<&str> = bad.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(keys, [HEALTH, UNREACHABLE, UNDER_REPLICATED_LEDGERS]);
        let (f, bad) = faults(&annotations(&[(UNDER_REPLICATED_LEDGERS, "100000000000")]));
        assert_eq!(f.under_replicated, 0);
        assert_eq!(bad.len(), 1);
    }
}
