//! Shared helpers for Thunderhead's benchmarks.
//!
//! The workloads are generated from a fixed seed by a small inline PRNG, so every
//! harness (criterion benches here, side-by-side comparisons later) sees exactly the
//! same keys and values without extra dependencies.

pub use thunderhead_disk::SplitMix64;

/// `n` entries of random bytes, `key_len`-byte keys and `value_len`-byte values, in
/// generation (random) order, deterministically from `seed`.
///
/// Keys are not deduplicated: with 24-byte keys (redb's benchmark shape:
/// `keys_values(seed, 100_000, 24, 150)`) a collision is practically impossible, but
/// with very short keys later entries may overwrite earlier ones.
pub fn keys_values(
    seed: u64,
    n: usize,
    key_len: usize,
    value_len: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let mut key = vec![0; key_len];
            let mut value = vec![0; value_len];
            rng.fill(&mut key);
            rng.fill(&mut value);
            (key, value)
        })
        .collect()
}

/// The kernel's I/O counters of this process (`/proc/self/io`, Linux only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcIo {
    /// Bytes passed to write-like system calls (`wchar`).
    pub wchar: u64,
    /// Write-like system calls (`syscw`).
    pub syscw: u64,
    /// Bytes this process caused to be sent to the storage layer (`write_bytes`): the
    /// page-cache pages it dirtied, counted once per page until written back.
    pub write_bytes: u64,
    /// Bytes of dirtied page cache dropped before reaching storage, by truncation or
    /// deletion (`cancelled_write_bytes`).
    pub cancelled_write_bytes: u64,
}

impl ProcIo {
    /// The current counters, or `None` where `/proc/self/io` is unavailable.
    pub fn now() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/self/io").ok()?;
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
                .and_then(|value| value.trim().parse().ok())
        };
        Some(Self {
            wchar: field("wchar")?,
            syscw: field("syscw")?,
            write_bytes: field("write_bytes")?,
            cancelled_write_bytes: field("cancelled_write_bytes")?,
        })
    }

    /// The counts since `earlier`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            wchar: self.wchar - earlier.wchar,
            syscw: self.syscw - earlier.syscw,
            write_bytes: self.write_bytes - earlier.write_bytes,
            cancelled_write_bytes: self.cancelled_write_bytes - earlier.cancelled_write_bytes,
        }
    }
}

/// A memory figure of this process from `/proc/self/status` in bytes: `"VmHWM"` (peak
/// resident set), `"VmRSS"` (resident now), `"RssAnon"`, `"RssFile"`. `None` where
/// unavailable.
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// A new empty directory for one benchmark run under the system's temporary directory
/// (`TMPDIR`), named after `name` and the process.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("thunderhead-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let a = keys_values(7, 100, 24, 150);
        let b = keys_values(7, 100, 24, 150);
        assert_eq!(a, b);
        assert!(a.iter().all(|(k, v)| k.len() == 24 && v.len() == 150));
        assert_ne!(a, keys_values(8, 100, 24, 150));
        let mut keys: Vec<_> = a.iter().map(|(k, _)| k).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), 100);
    }

    #[test]
    fn proc_counters_read() {
        if std::path::Path::new("/proc/self/io").exists() {
            let before = ProcIo::now().unwrap();
            let dir = scratch_dir("proc-io");
            std::fs::write(dir.join("f"), [1u8; 10_000]).unwrap();
            let after = ProcIo::now().unwrap();
            std::fs::remove_dir_all(dir).unwrap();
            assert!(after.since(&before).wchar >= 10_000);
            let peak = proc_status_bytes("VmHWM").unwrap();
            assert!(peak > 0 && peak >= proc_status_bytes("VmRSS").unwrap());
        }
    }
}
