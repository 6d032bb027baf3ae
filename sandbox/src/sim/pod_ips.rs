//! Pod IPs: each simulated pod gets its own loopback address, so that what it serves (see
//! [`super::pod_http`]) is reached at `http://<status.podIP>:<port>/` as in a cluster.
//!
//! A simulation reserves a block `127.X.0.0/16` (`X` in 1..=254, chosen at random, never the
//! `127.0.x.x` block that holds `127.0.0.1`) by binding a UDP socket to `127.X.0.1` at
//! [`BLOCK_MARKER_PORT`]. That bind is exclusive, within the process and between processes, so
//! two simulations running at once (in one test binary or in parallel ones) never hand out the
//! same address; a block that is taken is skipped and another one tried. Pods get `127.X.A.B`
//! with `B` in 1..=254 (never `127.X.0.1`, the marker), in order, wrapping around, so a released
//! address is reused as late as possible. A block that fills up brings another one.
//!
//! Where no block can be reserved (systems whose loopback is only `127.0.0.1`, such as macOS),
//! pods get `10.244.<node>.<n>` as before and serve nothing; a warning says so.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};

use super::rng::SplitMix64;

/// The UDP port bound at `127.X.0.1` to reserve the block `127.X.0.0/16`: unprivileged and below
/// Linux's ephemeral range (32768–60999), so no ordinary client socket takes it by chance.
pub const BLOCK_MARKER_PORT: u16 = 20_481;

/// How many random blocks are tried before giving up.
const BLOCK_ATTEMPTS: usize = 64;

/// Addresses in a block: `127.X.A.B`, offset `A * 256 + B`.
const BLOCK_SIZE: u32 = 1 << 16;

/// Seeds the block choice: differs between simulations of one process and between processes.
fn seed() -> u64 {
    static STARTS: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    nanos ^ (u64::from(std::process::id()) << 32) ^ STARTS.fetch_add(1, Ordering::Relaxed)
}

/// Whether `offset` in a block can be a pod's address: not `.0` or `.255`, not the marker.
fn usable(offset: u32) -> bool {
    let low = offset & 0xff;
    low != 0 && low != 255 && offset != 1
}

/// One reserved block `127.X.0.0/16`; the reservation lasts as long as the marker socket.
struct Block {
    x: u8,
    _marker: UdpSocket,
}

/// The pod IPs of one simulation.
pub(crate) struct PodIps {
    blocks: Vec<Block>,
    rng: SplitMix64,
    /// Addresses in use, and by which pod (uid).
    used: HashMap<Ipv4Addr, String>,
    /// The next offset tried in the last block.
    cursor: u32,
    /// No block could be reserved: `10.244.<node>.<n>` addresses, nothing served.
    fallback: bool,
}

/// Tries to reserve `127.x.0.0/16`.
fn reserve(x: u8) -> Option<Block> {
    if x == 0 || x == 255 {
        return None;
    }
    UdpSocket::bind((Ipv4Addr::new(127, x, 0, 1), BLOCK_MARKER_PORT))
        .ok()
        .map(|marker| Block { x, _marker: marker })
}

impl PodIps {
    /// Reserves a first block (or falls back, with a warning).
    pub(crate) fn new() -> Self {
        let mut ips = PodIps {
            blocks: Vec::new(),
            rng: SplitMix64::new(seed()),
            used: HashMap::new(),
            cursor: 1,
            fallback: false,
        };
        if !ips.reserve_block() {
            tracing::warn!(
                "no loopback block 127.X.0.0/16 could be reserved: pods get 10.244.x.y addresses and serve no HTTP"
            );
            ips.fallback = true;
        }
        ips
    }

    fn reserve_block(&mut self) -> bool {
        let taken: HashSet<u8> = self.blocks.iter().map(|b| b.x).collect();
        for _ in 0..BLOCK_ATTEMPTS {
            let x = 1 + self.rng.below(254) as u8;
            if taken.contains(&x) {
                continue;
            }
            if let Some(block) = reserve(x) {
                tracing::debug!(block = %format!("127.{x}.0.0/16"), "pod IP block reserved");
                self.blocks.push(block);
                self.cursor = 1;
                return true;
            }
        }
        false
    }

    /// Whether `ip` is an address of a block this simulation holds (so its pods may serve on it).
    pub(crate) fn owns(&self, ip: Ipv4Addr) -> bool {
        let [a, x, ..] = ip.octets();
        a == 127 && self.blocks.iter().any(|b| b.x == x)
    }

    /// A new address for pod `uid` on node `node`.
    pub(crate) fn allocate(&mut self, uid: &str, node: usize) -> Option<Ipv4Addr> {
        if self.fallback {
            let ip = (1..=254u8)
                .map(|n| Ipv4Addr::new(10, 244, node.min(255) as u8, n))
                .find(|ip| !self.used.contains_key(ip))?;
            self.used.insert(ip, uid.to_owned());
            return Some(ip);
        }
        loop {
            let x = self.blocks.last().map(|b| b.x)?;
            for step in 0..BLOCK_SIZE {
                let offset = (self.cursor + step) % BLOCK_SIZE;
                if !usable(offset) {
                    continue;
                }
                let ip = Ipv4Addr::new(127, x, (offset >> 8) as u8, (offset & 0xff) as u8);
                if self.used.contains_key(&ip) {
                    continue;
                }
                self.cursor = (offset + 1) % BLOCK_SIZE;
                self.used.insert(ip, uid.to_owned());
                return Some(ip);
            }
            // The block is full: another one.
            if !self.reserve_block() {
                tracing::warn!("every pod IP is in use and no further block could be reserved");
                return None;
            }
        }
    }

    /// Takes over the address a pod already has (a pod adopted from an earlier simulation):
    /// its block is reserved too when it is free, so the pod serves on it again. Tells whether
    /// this simulation owns the address.
    pub(crate) fn adopt(&mut self, uid: &str, ip: Ipv4Addr) -> bool {
        let [a, x, ..] = ip.octets();
        if a == 127
            && !self.fallback
            && !self.owns(ip)
            && let Some(block) = reserve(x)
        {
            self.blocks.insert(0, block);
        }
        self.used.insert(ip, uid.to_owned());
        self.owns(ip)
    }

    /// Releases the address of pod `uid`.
    pub(crate) fn release(&mut self, uid: &str, ip: Ipv4Addr) {
        if self.used.get(&ip).is_some_and(|u| u == uid) {
            self.used.remove(&ip);
        }
    }

    #[cfg(test)]
    fn blocks(&self) -> Vec<u8> {
        self.blocks.iter().map(|b| b.x).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulations_get_distinct_blocks_and_pods_distinct_addresses() {
        let mut a = PodIps::new();
        let mut b = PodIps::new();
        assert!(!a.fallback && !b.fallback, "Linux loopback is 127.0.0.0/8");
        assert_ne!(a.blocks(), b.blocks());
        // The marker really holds the block: binding it again fails.
        let x = a.blocks()[0];
        assert!(reserve(x).is_none());

        let mut seen = HashSet::new();
        for i in 0..600 {
            let ip = a.allocate(&format!("a{i}"), 0).unwrap();
            let [first, bx, _, low] = ip.octets();
            assert_eq!((first, bx), (127, x));
            assert!(low != 0 && low != 255 && ip != Ipv4Addr::new(127, x, 0, 1));
            assert!(seen.insert(ip), "{ip} handed out twice");
            assert!(a.owns(ip));
        }
        let other = b.allocate("b0", 0).unwrap();
        assert!(!seen.contains(&other) && !a.owns(other) && b.owns(other));
    }

    #[test]
    fn released_addresses_are_reused_last_and_adopted_ones_kept() {
        let mut ips = PodIps::new();
        let first = ips.allocate("p1", 0).unwrap();
        ips.release("p1", first);
        let second = ips.allocate("p2", 0).unwrap();
        assert_ne!(
            first, second,
            "a released address is not handed out again at once"
        );
        // Releasing needs the right owner.
        ips.release("someone-else", second);
        assert!(ips.used.contains_key(&second));

        // An address from a block nobody holds is adopted with its block.
        let mut taker = PodIps::new();
        let x = (1..=254u8)
            .find(|x| {
                !ips.blocks().contains(x) && !taker.blocks().contains(x) && reserve(*x).is_some()
            })
            .unwrap();
        let old = Ipv4Addr::new(127, x, 3, 7);
        assert!(taker.adopt("p3", old));
        assert!(taker.owns(old));
        // One held by another simulation is recorded but not served.
        assert!(!taker.adopt("p4", second));
        assert!(!taker.owns(second));
    }
}
