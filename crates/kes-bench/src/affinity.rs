//! Pinning the server and the load generator to separate CPUs (`--server-cpus`,
//! `--client-cpus`), so that neither takes time from the other's core and the server's cost per
//! request is what one core spends on it.

use anyhow::{Result, bail};

/// A set of CPUs, as `sched_setaffinity(2)` takes it.
#[derive(Clone, Copy)]
pub struct CpuSet(libc::cpu_set_t);

impl std::fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.cpus()).finish()
    }
}

impl CpuSet {
    /// Parses a CPU list as `taskset -c` takes it: `0`, `1,3`, `0-3`, `0-1,6`.
    pub fn parse(list: &str) -> Result<CpuSet> {
        // SAFETY: cpu_set_t is a plain bit array, for which all zeroes is the empty set.
        #[allow(unsafe_code)]
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
        let mut any = false;
        for part in list.split(',') {
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part.trim(), part.trim()),
            };
            let (Ok(first), Ok(last)) = (first.parse::<usize>(), last.parse::<usize>()) else {
                bail!("'{list}' is not a CPU list such as 0, 1,3 or 0-3");
            };
            if first > last || last >= max {
                bail!("'{list}' is not a CPU list such as 0, 1,3 or 0-3");
            }
            for cpu in first..=last {
                #[allow(unsafe_code)]
                // SAFETY: `cpu` is below the set's size, checked above.
                unsafe {
                    libc::CPU_SET(cpu, &mut set);
                }
                any = true;
            }
        }
        if !any {
            bail!("'{list}' names no CPU");
        }
        Ok(CpuSet(set))
    }

    /// The CPUs of the set, in order.
    pub fn cpus(&self) -> Vec<usize> {
        let max = 8 * std::mem::size_of::<libc::cpu_set_t>();
        #[allow(unsafe_code)]
        // SAFETY: every `c` is below the set's size.
        let is_set = |c: usize| unsafe { libc::CPU_ISSET(c, &self.0) };
        (0..max).filter(|&c| is_set(c)).collect()
    }

    /// The set as the system call takes it.
    pub fn raw(&self) -> &libc::cpu_set_t {
        &self.0
    }

    /// Pins the calling thread (and the threads it starts afterwards) to the set.
    pub fn pin_current_thread(&self) -> Result<()> {
        #[allow(unsafe_code)]
        // SAFETY: sched_setaffinity reads the set of the given size through a valid pointer.
        let rc = unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), self.raw())
        };
        if rc != 0 {
            bail!(
                "pinning to CPUs {:?}: {}",
                self.cpus(),
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse_as_taskset_takes_them() {
        assert_eq!(CpuSet::parse("0").unwrap().cpus(), vec![0]);
        assert_eq!(CpuSet::parse("1,3").unwrap().cpus(), vec![1, 3]);
        assert_eq!(CpuSet::parse("0-2,5").unwrap().cpus(), vec![0, 1, 2, 5]);
        for bad in ["", "x", "3-1", "1,", "99999"] {
            assert!(CpuSet::parse(bad).is_err(), "{bad}");
        }
    }
}
