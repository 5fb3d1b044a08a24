//! Process hardening: keep keys out of swap and out of core dumps.
//!
//! On Linux the server locks its memory (`mlockall`, each page as it is first used) so key
//! material is never written to swap,
//! sets `RLIMIT_CORE` to 0 and marks the process not dumpable, so a crash or a debugger attach
//! by another user cannot write its memory to disk.

/// Whether and how to lock memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mlock {
    /// Lock where the system permits it (the process may lock unlimited memory).
    Auto,
    /// Refuse to start unless memory can be locked.
    Required,
    /// Do not lock.
    Off,
}

/// What [`harden`] did, for the startup banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    /// Memory is locked.
    pub locked: bool,
    /// Why it is not, if it is not.
    pub lock_note: Option<String>,
    /// Core dumps are off.
    pub no_core_dumps: bool,
}

/// Applies the process protections. Fails only when `mlock` is [`Mlock::Required`] and memory
/// cannot be locked.
pub fn harden(mlock: Mlock) -> Result<Hardening, String> {
    let no_core_dumps = disable_core_dumps();
    let (locked, lock_note) = match mlock {
        Mlock::Off => (false, Some("disabled by configuration".to_owned())),
        Mlock::Auto | Mlock::Required => match lock_memory(mlock == Mlock::Required) {
            Ok(()) => (true, None),
            Err(note) if mlock == Mlock::Required => {
                return Err(format!("failed to lock memory (mlock: required): {note}"));
            }
            Err(note) => (false, Some(note)),
        },
    };
    Ok(Hardening {
        locked,
        lock_note,
        no_core_dumps,
    })
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn disable_core_dumps() -> bool {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit and prctl take plain values and pointers to valid, initialised memory.
    let rlimit = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } == 0;
    // SAFETY: as above; PR_SET_DUMPABLE takes an integer argument.
    let dumpable = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } == 0;
    rlimit && dumpable
}

/// Whether the process has `CAP_IPC_LOCK`, which exempts it from `RLIMIT_MEMLOCK`.
#[cfg(target_os = "linux")]
fn has_ipc_lock_capability() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

/// Stack size of the runtime's threads. Request handling is shallow; the default 2 MiB per
/// thread matters because locked memory (`mlockall`) makes every stack page resident.
pub const THREAD_STACK: usize = 512 * 1024;
/// Threads for blocking keystore work (filesystem I/O) at most.
pub const MAX_BLOCKING_THREADS: usize = 16;

/// The server's async runtime: a multi-threaded tokio runtime with bounded, small-stacked
/// threads. Also caps glibc's per-thread malloc arenas, whose unreturned free memory otherwise
/// grows the resident set with the number of threads that ever allocated.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kes")
        .thread_stack_size(THREAD_STACK)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn limit_malloc_arenas() {
    // SAFETY: mallopt takes two integers and only tunes the allocator; called before the
    // runtime's threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Raises the soft open-files limit to the hard limit (as the Go runtime does), so the server
/// can hold as many connections as the system allows. Returns the resulting soft limit.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the valid rlimit struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Some(raised.rlim_cur);
        }
    }
    Some(limit.rlim_cur)
}

/// Elsewhere the limit is left as it is.
#[cfg(not(target_os = "linux"))]
pub fn raise_open_files_limit() -> Option<u64> {
    None
}

#[cfg(not(target_os = "linux"))]
fn disable_core_dumps() -> bool {
    false
}

/// Locks current and future memory. In `Auto` mode only when the memory-lock limit is
/// unlimited: with a finite limit, `MCL_FUTURE` would make later allocations fail once the
/// limit is reached, which is worse than swapping.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lock_memory(required: bool) -> Result<(), String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid rlimit struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    if limit.rlim_cur != libc::RLIM_INFINITY && !has_ipc_lock_capability() {
        // Try to raise it (permitted with CAP_SYS_RESOURCE or when the hard limit allows).
        let raised = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: setrlimit reads the valid rlimit struct passed by pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } != 0 {
            let _ = required;
            return Err(format!(
                "the memory-lock limit is {} bytes (RLIMIT_MEMLOCK); run as root, grant \
                 CAP_IPC_LOCK with an unlimited limit (e.g. LimitMEMLOCK=infinity), or set mlock: off",
                limit.rlim_cur
            ));
        }
    }
    // `MCL_ONFAULT` (Linux 4.4+) locks each page when it is first touched instead of making
    // every mapped page resident at once (the whole executable, every thread's full stack,
    // malloc's reserved arenas). A page that ever holds key material has been touched, so it is
    // locked all the same; pages never used cost nothing. Older kernels reject the flag with
    // EINVAL: lock everything there.
    // SAFETY: mlockall takes flags only.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT) } == 0 {
        return Ok(());
    }
    let on_fault = std::io::Error::last_os_error();
    if on_fault.raw_os_error() != Some(libc::EINVAL) {
        return Err(on_fault.to_string());
    }
    // SAFETY: as above.
    if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } != 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn lock_memory(_required: bool) -> Result<(), String> {
    Err("memory locking is only supported on Linux".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_never_locks() {
        let h = harden(Mlock::Off).unwrap_or_else(|e| panic!("{e}"));
        assert!(!h.locked);
        assert!(h.lock_note.is_some());
    }
}
