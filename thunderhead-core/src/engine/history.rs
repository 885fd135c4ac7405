//! Past revisions: which ones stay readable (the retention rules and named snapshots),
//! reading them, and the commit times that age-based retention and users go by.
//!
//! A past revision is readable while its pages are: the free space keeps a freed page
//! for as long as a kept version lies between the revision that wrote it and the one
//! that freed it (`FreeSpace::release`). What makes a revision kept is recorded here:
//! the retention floor (every revision from it on), snapshots (single revisions, until
//! dropped) and readers' pins. To read a past revision one needs its catalog's root, so
//! each commit records its predecessor's in the catalog (`r` entries) and deletes the
//! ones the floor has passed.

use thunderhead_disk::{Meta, PageStore};

use super::catalog::{self, Catalog, Past};
use super::{Engine, Reader, Writer};
use crate::config::{Clock, Retention};
use crate::error::{Error, Result};
use crate::tree::{Snapshot, Tree};

/// A named snapshot: the revision it keeps, and when that revision was committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The snapshot's name.
    pub name: Vec<u8>,
    /// The revision it keeps readable.
    pub revision: u64,
    /// When that revision was committed, in microseconds since the Unix epoch.
    pub time: u64,
}

/// A readable revision and when it was committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The revision.
    pub revision: u64,
    /// When it was committed, in microseconds since the Unix epoch.
    pub time: u64,
}

/// Microseconds since the Unix epoch by `clock`, never before `previous` (commit times
/// only grow, whatever the clock does).
pub(super) fn commit_time(clock: Clock, previous: u64) -> u64 {
    clock.now_micros().max(previous)
}

/// The retention floor after a commit of `revision` at `time` whose predecessor is
/// `base`: the oldest revision the rules keep, never lower than `floor` (what was let go
/// is gone). `catalog` holds the past revisions from `floor` on.
pub(super) fn retention_floor<C: Catalog>(
    retention: Retention,
    catalog: &C,
    floor: u64,
    base: &Meta,
    revision: u64,
    time: u64,
) -> Result<u64> {
    let mut kept_from = floor;
    if let Some(count) = retention.revisions {
        kept_from = kept_from.max((revision + 1).saturating_sub(count));
    }
    if let Some(age) = retention.age {
        // A revision goes once its successor is older than `age`: from then on no
        // moment of the last `age` saw it as the latest. Walk the revisions oldest
        // first (the past ones, the base, the new one) to the first that stays.
        let limit = time.saturating_sub(u64::try_from(age.as_micros()).unwrap_or(u64::MAX));
        let mut previous: Option<u64> = None;
        let mut next_from = kept_from;
        let stays = 'walk: loop {
            let pasts = catalog.pasts_from(next_from, 64)?;
            let batch_full = pasts.len() == 64;
            let mut later: Vec<(u64, u64)> = pasts
                .iter()
                .map(|past| (past.revision, past.time))
                .collect();
            if !batch_full {
                later.push((base.revision, base.time));
                later.push((revision, time));
            }
            for (candidate, committed) in later {
                if let Some(previous) = previous
                    && committed >= limit
                {
                    break 'walk previous;
                }
                previous = Some(candidate);
                next_from = candidate + 1;
            }
            if !batch_full {
                break revision;
            }
        };
        kept_from = kept_from.max(stays);
    }
    Ok(kept_from.min(revision))
}

impl<S: PageStore> Engine<S> {
    /// The oldest revision that can be read (named snapshots aside).
    pub fn oldest_retained(&self) -> u64 {
        self.shared.pins.floor()
    }

    /// Every readable revision from the retention floor to the latest, oldest first,
    /// with its commit time (revisions kept only by snapshots are in
    /// [`Engine::snapshots`]).
    pub fn history(&self) -> Result<Vec<CommitInfo>> {
        let reader = self.begin_read();
        let floor = self.oldest_retained();
        let mut entries: Vec<CommitInfo> = reader
            .catalog
            .pasts_from(floor, usize::MAX)?
            .into_iter()
            .map(|past| CommitInfo {
                revision: past.revision,
                time: past.time,
            })
            .collect();
        entries.push(CommitInfo {
            revision: reader.revision,
            time: reader.time,
        });
        // A revision a compaction followed has no entry: it reads as the next one,
        // which carries its time.
        let mut revisions = Vec::with_capacity(entries.len());
        let mut next = floor;
        for entry in entries {
            revisions.extend((next..entry.revision).map(|revision| CommitInfo {
                revision,
                time: entry.time,
            }));
            revisions.push(entry);
            next = entry.revision + 1;
        }
        Ok(revisions)
    }

    /// A reader of a past (or the latest) revision. Its pages stay untouched while it
    /// lives, even once the retention rules let the revision go.
    pub fn begin_read_at(&self, revision: u64) -> Result<Reader<S>> {
        let latest = self.begin_read();
        if revision == latest.revision {
            return Ok(latest);
        }
        if revision > latest.revision {
            return Err(Error::RevisionNotFound {
                revision,
                latest: latest.revision,
            });
        }
        if self.shared.pins.pin_retained(revision) {
            // Pinned at or after the floor: the latest catalog, which `latest` keeps
            // readable, has its entry (or, for one compaction left out, the next's).
            let found = latest.catalog.past_from(revision);
            let past = match found {
                // A later entry: a compaction followed this revision, and its entry
                // (same catalog) carries this revision's time.
                Ok(Some(past)) => Past {
                    revision,
                    time: past.time,
                    catalog: past.catalog,
                },
                Ok(None) => Past {
                    revision,
                    time: latest.time,
                    catalog: latest.catalog.version(),
                },
                Err(error) => {
                    self.shared.pins.unpin(revision);
                    return Err(error);
                }
            };
            return self.pinned_reader(past);
        }
        let snapshot = {
            let state = self.lock_state();
            let past = state
                .snapshots
                .values()
                .find(|past| past.revision == revision)
                .copied();
            if past.is_some() {
                self.shared.pins.pin(revision);
            }
            past
        };
        match snapshot {
            Some(past) => self.pinned_reader(past),
            None => Err(Error::RevisionPruned {
                revision,
                oldest_retained: self.oldest_retained(),
            }),
        }
    }

    /// A reader of the revision the named snapshot keeps.
    pub fn begin_read_snapshot(&self, name: &[u8]) -> Result<Reader<S>> {
        catalog::check_snapshot_name(name)?;
        let past = {
            let state = self.lock_state();
            let past = state.snapshots.get(name).copied();
            // Pinned under the state lock: a commit dropping the snapshot publishes
            // under it, and releases only what the next commit finds unpinned.
            if let Some(past) = past {
                self.shared.pins.pin(past.revision);
            }
            past
        };
        match past {
            Some(past) => self.pinned_reader(past),
            None => Err(Error::SnapshotNotFound {
                name: name.to_vec(),
            }),
        }
    }

    /// Every named snapshot, by name.
    pub fn snapshots(&self) -> Vec<SnapshotInfo> {
        self.lock_state()
            .snapshots
            .iter()
            .map(|(name, past)| SnapshotInfo {
                name: name.clone(),
                revision: past.revision,
                time: past.time,
            })
            .collect()
    }

    /// The reader of `past`, whose revision the caller has pinned (the reader unpins it
    /// when dropped, also if this fails).
    fn pinned_reader(&self, past: Past) -> Result<Reader<S>> {
        let pager = &self.shared.pager;
        let mut reader = Reader {
            catalog: Snapshot::new(pager.clone(), past.catalog),
            snapshot: Snapshot::new(pager.clone(), past.catalog),
            revision: past.revision,
            time: past.time,
            engine: self.clone(),
        };
        let default = reader.catalog.tree(b"")?.ok_or_else(|| {
            Error::corrupted(past.catalog.root, "a past catalog has no default tree")
        })?;
        reader.snapshot = Snapshot::new(pager.clone(), default);
        Ok(reader)
    }
}

impl<S: PageStore> Writer<'_, S> {
    /// Names the revision this writer began from (the latest committed one) as a
    /// snapshot when this writer commits: it stays readable, across reopens and
    /// crashes, until [`Writer::drop_snapshot`]. Copies nothing. Returns the revision.
    pub fn create_snapshot(&mut self, name: &[u8]) -> Result<u64> {
        catalog::check_snapshot_name(name)?;
        if self.snapshot_exists(name) {
            return Err(Error::SnapshotExists {
                name: name.to_vec(),
            });
        }
        let past = Past {
            revision: self.base.revision,
            time: self.base.time,
            catalog: super::version_of(&self.base),
        };
        self.snapshots.insert(name.to_vec(), Some(past));
        Ok(past.revision)
    }

    /// Drops the named snapshot when this writer commits; the pages only it kept are
    /// reused by later commits.
    pub fn drop_snapshot(&mut self, name: &[u8]) -> Result<()> {
        catalog::check_snapshot_name(name)?;
        if !self.snapshot_exists(name) {
            return Err(Error::SnapshotNotFound {
                name: name.to_vec(),
            });
        }
        self.snapshots.insert(name.to_vec(), None);
        Ok(())
    }

    /// Whether the named snapshot exists, with this writer's changes.
    pub fn snapshot_exists(&self, name: &[u8]) -> bool {
        match self.snapshots.get(name) {
            Some(change) => change.is_some(),
            None => self.engine.lock_state().snapshots.contains_key(name),
        }
    }
}

/// Past revisions a commit lets go one by one; more go with one range delete.
const PRUNE_POINT_DELETES_MAX: usize = 16;

/// Applies a commit's snapshot changes and history to its catalog: records `base` as a
/// past revision if the new floor keeps it, deletes the entries below the floor.
pub(super) fn record<S: PageStore>(
    catalog: &mut Tree<S>,
    snapshots: &std::collections::BTreeMap<Vec<u8>, Option<Past>>,
    base: &Meta,
    old_floor: u64,
    floor: u64,
) -> Result<()> {
    for (name, change) in snapshots {
        let key = catalog::snapshot_key(name);
        match change {
            Some(past) => catalog.put(&key, &catalog::encode_snapshot(past))?,
            None => catalog.delete(&key)?,
        }
    }
    // The catalog holds entries for the past revisions from `old_floor` to the one
    // before `base` (this commit writes `base`'s): those below the new floor go.
    if floor.min(base.revision) > old_floor {
        // Usually one entry goes per commit (or none, keeping only the latest): point
        // deletes of exactly those; a range delete (which weighs on the journal) only
        // when the floor jumped far (the retention was shortened).
        let gone: Vec<u64> = catalog
            .pasts_from(old_floor, PRUNE_POINT_DELETES_MAX + 1)?
            .into_iter()
            .map(|past| past.revision)
            .filter(|&revision| revision < floor)
            .collect();
        if gone.len() > PRUNE_POINT_DELETES_MAX {
            let (from, to) = (catalog::history_key(old_floor), catalog::history_key(floor));
            catalog.delete_range(from.as_slice()..to.as_slice())?;
        } else {
            for revision in gone {
                catalog.delete(&catalog::history_key(revision))?;
            }
        }
    }
    if base.revision >= floor {
        let past = Past {
            revision: base.revision,
            time: base.time,
            catalog: super::version_of(base),
        };
        catalog.put(
            &catalog::history_key(base.revision),
            &catalog::encode_history(&past),
        )?;
    }
    Ok(())
}
