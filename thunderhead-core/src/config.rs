//! Tuning knobs of a tree and the limits that follow from the page size.

use crate::error::{Error, Result};

/// Settings of a tree. Limits on keys and values follow from the page size of the store.
#[derive(Clone, Debug)]
pub struct TreeConfig {
    /// Journal bytes a branch may hold before it flushes its heaviest child. Larger
    /// journals batch more updates per leaf write (less write amplification) at the cost
    /// of more messages for reads to consult.
    pub journal_bytes_max: usize,
    /// Bytes of decoded pages the cache keeps (pages in use are never evicted).
    pub cache_bytes_max: usize,
    /// Keep a durable store's free-space state inside the meta slot's page when it fits
    /// (it saves a page write per commit). Turning it off only serves to test the other
    /// path, a free-space extent, which large or fragmented stores take anyway.
    pub free_space_inline: bool,
    /// How many past revisions a store keeps readable (beyond named snapshots, which
    /// are kept until dropped).
    pub retention: Retention,
    /// Where commit times come from: the system clock, or for tests and simulation a
    /// fixed time, so that what a run writes depends on nothing but its inputs.
    pub clock: Clock,
}

/// Where a store's commit times (microseconds since the Unix epoch, in every meta slot)
/// come from. Commit times never go below the previous commit's, whatever the clock
/// says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock stopped at this many microseconds since the Unix epoch. For tests and
    /// simulation: with it, the same operations write the same bytes (the deterministic
    /// simulator compares two runs of a seed byte for byte). Age-based retention sees
    /// no time pass.
    Fixed(u64),
}

impl Clock {
    /// The time now, in microseconds since the Unix epoch.
    pub fn now_micros(self) -> u64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| {
                    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
                }),
            Clock::Fixed(micros) => micros,
        }
    }
}

/// Which past revisions a store keeps readable. Each limit that is set must hold for a
/// revision to stay: within the latest `revisions` (the latest counts as one), and
/// superseded less than `age` ago (so any moment of the last `age` can be read). With
/// neither set, every revision is kept. The latest revision is always kept. Pages only
/// past revisions read are reused once the revision goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many revisions, the latest included (at least 1).
    pub revisions: Option<u64>,
    /// Keep revisions superseded less than this long ago.
    pub age: Option<std::time::Duration>,
}

impl Retention {
    /// Only the latest revision (and named snapshots).
    pub const LATEST: Retention = Retention {
        revisions: Some(1),
        age: None,
    };

    /// The latest `count` revisions.
    pub fn revisions(count: u64) -> Self {
        Self {
            revisions: Some(count),
            age: None,
        }
    }

    /// Every revision superseded less than `age` ago.
    pub fn age(age: std::time::Duration) -> Self {
        Self {
            revisions: None,
            age: Some(age),
        }
    }

    /// Every revision, forever.
    pub fn all() -> Self {
        Self {
            revisions: None,
            age: None,
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Self::LATEST
    }
}

/// Journal budget used when none is given: half a mebibyte per branch (DESIGN.md §3.2
/// says why).
pub const JOURNAL_BYTES_MAX_DEFAULT: usize = 512 * 1024;
/// Largest journal budget accepted: pending byte tallies are stored as 32-bit numbers.
pub const JOURNAL_BYTES_MAX_LIMIT: usize = 1 << 30;
/// Cache budget used when none is given: 1 GiB, as redb's. The cache fills only as pages
/// are read, so a small store uses little of it; at a million rows of the side-by-side
/// benchmark (a 350 MiB tree) random gets took 3.6 s instead of 8.0 s with 64 MiB.
pub const CACHE_BYTES_MAX_DEFAULT: usize = 1024 * 1024 * 1024;
/// Segments one journal may have; past it they are merged. Also the room a branch page
/// reserves for segment slots.
pub const JOURNAL_SEGMENTS_MAX: usize = 12;
/// Deepest tree accepted: descent is bounded so a corrupt file cannot loop forever.
pub const TREE_DEPTH_MAX: usize = 32;
/// Largest value accepted, in bytes (values are addressed with 32-bit lengths in memory).
pub const VALUE_BYTES_MAX: usize = (u32::MAX as usize) - 4096;

impl Default for TreeConfig {
    fn default() -> Self {
        Self {
            journal_bytes_max: JOURNAL_BYTES_MAX_DEFAULT,
            cache_bytes_max: CACHE_BYTES_MAX_DEFAULT,
            free_space_inline: true,
            retention: Retention::LATEST,
            clock: Clock::System,
        }
    }
}

/// Limits derived from the page size.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes per page (node size).
    pub page_size_bytes: usize,
    /// Longest key accepted: an eighth of a page (2 KiB with the default 16 KiB pages).
    pub key_bytes_max: usize,
    /// A value is stored inline when key and value together take at most this many bytes
    /// (a quarter page less entry framing); larger values go to overflow extents.
    pub entry_inline_bytes_max: usize,
    /// Non-root nodes weigh at least this much (a quarter page): lighter ones are merged.
    pub node_fill_min_bytes: usize,
    /// Weight a split aims each piece at (three quarters of a page).
    pub node_split_target_bytes: usize,
    /// Journal budget per branch.
    pub journal_bytes_max: usize,
}

impl Limits {
    pub fn new(page_size_bytes: usize, config: &TreeConfig) -> Result<Self> {
        if !(thunderhead_disk::PAGE_SIZE_MIN_BYTES..=thunderhead_disk::PAGE_SIZE_MAX_BYTES)
            .contains(&page_size_bytes)
            || !page_size_bytes.is_power_of_two()
        {
            return Err(Error::Storage(thunderhead_disk::Error::InvalidPageSize(
                page_size_bytes,
            )));
        }
        if config.retention.revisions == Some(0) {
            return Err(Error::InvalidConfig(
                "retention.revisions counts the latest revision: at least 1".into(),
            ));
        }
        if config.journal_bytes_max == 0 {
            return Err(Error::InvalidConfig(
                "journal_bytes_max must be positive".into(),
            ));
        }
        Ok(Self {
            page_size_bytes,
            key_bytes_max: page_size_bytes / 8,
            entry_inline_bytes_max: page_size_bytes / 4 - 64,
            node_fill_min_bytes: page_size_bytes / 4,
            node_split_target_bytes: page_size_bytes * 3 / 4,
            journal_bytes_max: config.journal_bytes_max,
        })
    }
}
