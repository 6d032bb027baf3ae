//! Which Kubernetes versions the operator runs against: the lowest one is checked at start
//! against the API server's `/version`, so that an older server fails clearly at once instead of
//! refusing objects later.
//!
//! The default, 1.21, is the first release that serves every API the operator uses: `policy/v1`
//! PodDisruptionBudgets (1.21), `events.k8s.io/v1` Events (1.19), `coordination.k8s.io/v1` Leases,
//! `apps/v1` workloads and server-side apply (beta and on by default from 1.18, GA in 1.22). The
//! operator sends no field that 1.21 does not know (`persistentVolumeClaimRetentionPolicy`, 1.23,
//! is left to the server's default); `tests/fields_sent.rs` holds every field path it sends to
//! a reviewed list of paths 1.21 serves. The webhook configuration's `matchConditions` need 1.28;
//! `deploy/kubernetes-1.27/` installs without them.

/// The lowest Kubernetes version the operator supports, as `major.minor`.
pub const DEFAULT_MIN_KUBERNETES_VERSION: &str = "1.21";

/// Reads `major.minor` (`1.21`; a patch, `v` prefix or suffix such as `1.27+` is ignored).
pub fn parse_minor(input: &str) -> Result<(u64, u64), String> {
    let s = input.trim().trim_start_matches('v');
    let mut parts = s.split('.');
    let number = |p: Option<&str>| -> Option<u64> {
        let digits: String = p?.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    match (number(parts.next()), number(parts.next())) {
        (Some(major), Some(minor)) => Ok((major, minor)),
        _ => Err(format!(
            "{input:?} is not a Kubernetes version such as \"1.21\""
        )),
    }
}

/// The API server's version from the `major` and `minor` of its `/version` (managed clusters
/// report a minor such as `27+`).
pub fn server_minor(major: &str, minor: &str) -> Result<(u64, u64), String> {
    parse_minor(&format!("{major}.{minor}"))
}

/// Refuses a server older than `min`, with a message that says what to do.
pub fn check(server: (u64, u64), min: (u64, u64)) -> Result<(), String> {
    if server >= min {
        return Ok(());
    }
    Err(format!(
        "the API server runs Kubernetes {}.{}, older than {}.{}, the lowest this operator supports; upgrade the cluster, or lower --min-kubernetes-version at your own risk",
        server.0, server.1, min.0, min.1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_as_servers_report_them() {
        assert_eq!(parse_minor("1.21"), Ok((1, 21)));
        assert_eq!(parse_minor("v1.33.0"), Ok((1, 33)));
        assert_eq!(server_minor("1", "27+"), Ok((1, 27)));
        assert!(parse_minor("latest").is_err());
        assert!(parse_minor("1").is_err());
        assert_eq!(parse_minor(DEFAULT_MIN_KUBERNETES_VERSION), Ok((1, 21)));
    }

    #[test]
    fn older_servers_are_refused() {
        assert_eq!(check((1, 33), (1, 21)), Ok(()));
        assert_eq!(check((1, 21), (1, 21)), Ok(()));
        assert_eq!(check((2, 0), (1, 21)), Ok(()));
        let e = check((1, 19), (1, 21)).unwrap_err();
        assert!(
            e.starts_with("the API server runs Kubernetes 1.19, older than 1.21"),
            "{e}"
        );
    }
}
