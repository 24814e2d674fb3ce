//! Cluster health: a pure model over Kubernetes objects (this module), fed by
//! watchers and served by the API in later work (see the health issue).

pub mod lean;
pub mod model;
pub mod protection;
pub mod summary;
pub mod usage;
pub mod verdict;
pub mod views;
pub mod watch;

/// Returns the pages freed memory sits on to the system. glibc keeps what is
/// freed in its arenas, and a watch's first list (pages of 500 objects
/// decoded, then dropped) or a usage reading (every pod's metrics in one
/// answer) leaves tens of MiB behind that the process no longer uses.
/// Called after each of those; a no-op with other allocators.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
