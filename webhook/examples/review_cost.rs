//! CPU time and heap allocations of deciding one review, without HTTP or TLS: what
//! `pravega_webhook::admission::review` costs for the bodies the `bench` example sends.
//!
//! Run: `cargo run --release -p pravega-webhook --example review_cost`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use pravega_webhook::admission::review;

mod support;

/// The system allocator, counting allocations.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as the caller promised for this call.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller promised for this call.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as the caller promised for this call.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const REVIEWS: u32 = 200_000;

fn main() {
    for (what, body) in [
        ("UPDATE as kubectl apply sends it", support::review_body()),
        ("small CREATE", support::small_body()),
    ] {
        let reviewed = review(&body);
        println!(
            "{what} ({} bytes, {}):",
            body.len(),
            reviewed.verdict.decision()
        );
        for (step, answer) in [("decide", false), ("decide and render the answer", true)] {
            let allocations = ALLOCATIONS.load(Ordering::Relaxed);
            let started = Instant::now();
            for _ in 0..REVIEWS {
                let reviewed = review(black_box(&body));
                if answer {
                    black_box(reviewed.to_http());
                } else {
                    black_box(reviewed);
                }
            }
            let elapsed = started.elapsed();
            println!(
                "  {step:<30} {:>6.2} µs   {:>3} allocations",
                elapsed.as_secs_f64() * 1e6 / f64::from(REVIEWS),
                (ALLOCATIONS.load(Ordering::Relaxed) - allocations) / REVIEWS as usize
            );
        }
    }
}
