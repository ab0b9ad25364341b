//! How the coordinator's memory goes back to the system.
//!
//! glibc serves large blocks from its own heaps, not from fresh mappings, once its adaptive
//! threshold has risen past their size (it rises with every large block freed), and keeps what
//! was freed there. Each password check frees a 19 MiB Argon2 block, and bursts of fan-out
//! free large buffers: measured with 3 000 simulated hosts, the coordinator then held 575–749 MB
//! where 153 MB were in use. A fixed threshold makes every block of 64 KiB or more a mapping of
//! its own, returned when it is freed (the coordinator-at-scale benchmark in
//! `coordinator/loadgen` shows the difference).

/// How often the pages freed in the allocator's heaps are handed back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Blocks from this size on get a mapping of their own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 64 * 1024;

pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; called before any other thread
    // exists.
    unsafe {
        // Fails only for a value out of range, which this is not.
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Hands the pages freed inside the allocator's heaps back to the system every
/// [`TRIM_EVERY`]: after a burst (a large network forming, a restart) the small blocks of
/// thousands of drained queues and send buffers are free but would stay counted.
pub fn trim_in_background() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    std::thread::Builder::new()
        .name("memory-trim".into())
        .spawn(|| loop {
            std::thread::sleep(TRIM_EVERY);
            // SAFETY: malloc_trim only releases free memory; it is thread-safe.
            unsafe {
                libc::malloc_trim(0);
            }
        })
        .map(drop)
        .unwrap_or_else(|e| tracing::warn!("no memory trimming: {e}"));
}
