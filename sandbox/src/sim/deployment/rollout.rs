//! How many pods each ReplicaSet of a Deployment gets: `maxSurge` / `maxUnavailable` resolved,
//! the rolling step and the `Recreate` step.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Resolves an int-or-percent against `total`. Percentages round up for
/// `maxSurge` and down for `maxUnavailable`, as Kubernetes does.
pub(crate) fn resolve(
    value: Option<&IntOrString>,
    default: &str,
    total: i32,
    round_up: bool,
) -> Result<i32, String> {
    let owned;
    let v = match value {
        Some(v) => v,
        None => {
            owned = IntOrString::String(default.into());
            &owned
        }
    };
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.trim().parse().ok())
                .ok_or_else(|| {
                    format!("invalid value for IntOrString: invalid type: string {s:?}")
                })?;
            let scaled = pct * i64::from(total);
            let r = if round_up {
                (scaled + 99).div_euclid(100)
            } else {
                scaled.div_euclid(100)
            };
            Ok(r.clamp(0, i64::from(i32::MAX)) as i32)
        }
    }
}

/// `(maxSurge, maxUnavailable)` for `desired` replicas; never both zero.
pub(crate) fn fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let surge = resolve(max_surge, "25%", desired, true)?.max(0);
    let mut unavailable = resolve(max_unavailable, "25%", desired, false)?
        .max(0)
        .min(desired.max(0));
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

/// Replica counts of one ReplicaSet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RsCounts {
    /// `spec.replicas`
    pub spec: i32,
    /// `status.replicas`
    pub actual: i32,
    pub ready: i32,
    pub available: i32,
}

/// One step of a rolling update: the new ReplicaSet's target size, and the
/// target size of every old ReplicaSet (same order as given, oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RollingStep {
    pub new_spec: i32,
    pub old_specs: Vec<i32>,
}

/// The real controller's rolling-update arithmetic: first scale the new
/// ReplicaSet up as far as `maxSurge` allows; if it cannot grow, scale old
/// ReplicaSets down (unhealthy replicas first) as far as `maxUnavailable`
/// allows.
pub(crate) fn rolling_step(
    desired: i32,
    max_surge: i32,
    max_unavailable: i32,
    new: RsCounts,
    olds: &[RsCounts],
) -> RollingStep {
    let old_specs: Vec<i32> = olds.iter().map(|o| o.spec).collect();
    let all_spec: i32 = new.spec + old_specs.iter().sum::<i32>();

    // Scale the new ReplicaSet.
    let new_spec = if new.spec > desired {
        desired
    } else if new.spec < desired {
        let max_total = desired + max_surge;
        if all_spec >= max_total {
            new.spec
        } else {
            new.spec + (max_total - all_spec).min(desired - new.spec)
        }
    } else {
        new.spec
    };
    if new_spec != new.spec {
        return RollingStep {
            new_spec,
            old_specs,
        };
    }

    // Scale the old ReplicaSets down.
    let mut old_specs = old_specs;
    let old_total: i32 = old_specs.iter().sum();
    if old_total == 0 {
        return RollingStep {
            new_spec,
            old_specs,
        };
    }
    let min_available = desired - max_unavailable;
    let new_unavailable = new.spec - new.available;
    let max_scaled_down = all_spec - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return RollingStep {
            new_spec,
            old_specs,
        };
    }
    // Unhealthy replicas of old sets go first.
    let mut cleaned = 0;
    for (spec, o) in old_specs.iter_mut().zip(olds) {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = (*spec - o.available).max(0);
        let down = unhealthy.min(max_scaled_down - cleaned).min(*spec);
        *spec -= down;
        cleaned += down;
    }
    // Then healthy ones, keeping at least `min_available` available.
    let available: i32 = new.available + olds.iter().map(|o| o.available).sum::<i32>();
    let mut budget = (available - min_available).min(max_scaled_down - cleaned);
    for spec in old_specs.iter_mut() {
        if budget <= 0 {
            break;
        }
        let down = (*spec).min(budget);
        *spec -= down;
        budget -= down;
    }
    RollingStep {
        new_spec,
        old_specs,
    }
}

/// One step of a `Recreate` rollout: scale every old ReplicaSet to zero,
/// wait until their pods are gone, then scale the new one up.
pub(crate) fn recreate_step(desired: i32, new: RsCounts, olds: &[RsCounts]) -> RollingStep {
    if olds.iter().any(|o| o.spec > 0) {
        RollingStep {
            new_spec: new.spec.min(0),
            old_specs: vec![0; olds.len()],
        }
    } else if olds.iter().any(|o| o.actual > 0) {
        RollingStep {
            new_spec: new.spec,
            old_specs: olds.iter().map(|o| o.spec).collect(),
        }
    } else {
        RollingStep {
            new_spec: desired,
            old_specs: olds.iter().map(|o| o.spec).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.into())
    }

    #[test]
    fn percentages_round_like_kubernetes() {
        // Defaults are 25% / 25%: surge rounds up, unavailable rounds down.
        assert_eq!(fenceposts(None, None, 3), Ok((1, 0)));
        assert_eq!(fenceposts(None, None, 4), Ok((1, 1)));
        assert_eq!(fenceposts(None, None, 10), Ok((3, 2)));
        assert_eq!(fenceposts(Some(&s("50%")), Some(&s("50%")), 3), Ok((2, 1)));
        assert_eq!(
            fenceposts(Some(&IntOrString::Int(2)), Some(&IntOrString::Int(0)), 3),
            Ok((2, 0))
        );
        // Both zero is not allowed: one pod may be unavailable.
        assert_eq!(
            fenceposts(Some(&IntOrString::Int(0)), Some(&IntOrString::Int(0)), 3),
            Ok((0, 1))
        );
        assert_eq!(fenceposts(Some(&s("0%")), Some(&s("0%")), 1), Ok((0, 1)));
        assert!(fenceposts(Some(&s("abc")), None, 3).is_err());
        assert_eq!(resolve(Some(&s("25%")), "0%", 1, true), Ok(1));
        assert_eq!(resolve(Some(&s("25%")), "0%", 1, false), Ok(0));
    }

    fn rs(spec: i32, available: i32) -> RsCounts {
        RsCounts {
            spec,
            actual: spec,
            ready: available,
            available,
        }
    }

    #[test]
    fn rolling_step_surges_first_then_scales_old_down() {
        // 3 replicas, surge 1, unavailable 0: new grows to 1 while old stays at 3.
        let step = rolling_step(3, 1, 0, rs(0, 0), &[rs(3, 3)]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 1,
                old_specs: vec![3]
            }
        );
        // New pod not yet available: nothing may go.
        let step = rolling_step(3, 1, 0, rs(1, 0), &[rs(3, 3)]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 1,
                old_specs: vec![3]
            }
        );
        // New pod available: one old pod goes.
        let step = rolling_step(3, 1, 0, rs(1, 1), &[rs(3, 3)]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 1,
                old_specs: vec![2]
            }
        );
        // Then the new one grows again.
        let step = rolling_step(3, 1, 0, rs(1, 1), &[rs(2, 2)]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 2,
                old_specs: vec![2]
            }
        );
    }

    #[test]
    fn rolling_step_cleans_unhealthy_old_replicas_first() {
        // An old set with crash-looping pods can be scaled down without
        // waiting for the new set.
        let step = rolling_step(3, 1, 1, rs(1, 0), &[rs(1, 0), rs(2, 2)]);
        assert_eq!(step.new_spec, 1);
        assert_eq!(step.old_specs, vec![0, 2]);
    }

    proptest::proptest! {
        /// Drives the arithmetic against a cluster where new pods become
        /// available one step after they are asked for, from any previous
        /// size: the rollout always converges to `desired` pods on the new
        /// set, never asks for more than `desired + maxSurge` pods in total
        /// (once within that bound), and never scales away availability
        /// below `desired - maxUnavailable`.
        #[test]
        fn rolling_updates_converge_within_bounds(
            desired in 0i32..10,
            previous in 0i32..10,
            surge_pct in 0i32..=100,
            unavailable_pct in 0i32..=100,
        ) {
            let (surge, unav) = fenceposts(
                Some(&s(&format!("{surge_pct}%"))),
                Some(&s(&format!("{unavailable_pct}%"))),
                desired,
            )
            .map_err(proptest::test_runner::TestCaseError::fail)?;
            let mut new = rs(0, 0);
            let mut olds = vec![rs(previous, previous)];
            let min_available = desired - unav;
            for _ in 0..200 {
                let step = rolling_step(desired, surge, unav, new, &olds);
                let total_before = new.spec + olds.iter().map(|o| o.spec).sum::<i32>();
                let total = step.new_spec + step.old_specs.iter().sum::<i32>();
                proptest::prop_assert!(total <= (desired + surge).max(total_before));
                let available_before = new.available + olds.iter().map(|o| o.available).sum::<i32>();
                let kept: i32 = step.new_spec.min(new.available)
                    + step.old_specs.iter().zip(&olds).map(|(s, o)| (*s).min(o.available)).sum::<i32>();
                proptest::prop_assert!(kept >= min_available.min(available_before));
                let unchanged = step.new_spec == new.spec
                    && step.old_specs == olds.iter().map(|o| o.spec).collect::<Vec<_>>();
                if unchanged && new.available == new.spec {
                    break;
                }
                // What was asked for last time is available now.
                new = RsCounts { spec: step.new_spec, actual: step.new_spec, ready: new.spec.min(step.new_spec), available: new.spec.min(step.new_spec) };
                olds = step.old_specs.iter().map(|s| rs(*s, *s)).collect();
            }
            proptest::prop_assert_eq!(new.spec, desired);
            proptest::prop_assert!(olds.iter().all(|o| o.spec == 0));
        }
    }

    #[test]
    fn recreate_stops_everything_before_starting_the_new_pods() {
        let old = RsCounts {
            spec: 3,
            actual: 3,
            ready: 3,
            available: 3,
        };
        let step = recreate_step(3, RsCounts::default(), &[old]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 0,
                old_specs: vec![0]
            }
        );
        // Old pods still terminating: wait.
        let draining = RsCounts {
            spec: 0,
            actual: 2,
            ready: 0,
            available: 0,
        };
        let step = recreate_step(3, RsCounts::default(), &[draining]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 0,
                old_specs: vec![0]
            }
        );
        // All gone: the new set gets every replica.
        let step = recreate_step(3, RsCounts::default(), &[RsCounts::default()]);
        assert_eq!(
            step,
            RollingStep {
                new_spec: 3,
                old_specs: vec![0]
            }
        );
    }
}
