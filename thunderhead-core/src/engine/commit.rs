//! Commit: the tree's new pages, then the free space of the new version, then its meta
//! slot, then (for an immediate commit) one sync.
//!
//! Which pages the new version frees is learnt by comparing it with the old one over
//! the nodes this commit wrote ([`crate::tree::commit_diff`]). Those pages are deferred:
//! readers of older versions may still read them, and until the new version is durable
//! recovery may fall back to the old one. Pages the writer allocated that the new
//! version does not use (a large value overwritten before the commit, say) were never
//! visible to anyone and are free at once.

use thunderhead_disk::{
    Base, Extent, ExtentRoot, FreeSpace, Kept, META_PAGES, Meta, PageBytes, PageId, PageStore,
    TreeRoot, resolve,
};

use std::collections::{BTreeMap, HashSet};

use super::catalog::{self, Catalog, Past};
use super::{Durability, Engine, history};
use crate::error::{Error, Result};
use crate::node::StoredRef;
use crate::pager::Pager;
use crate::tree::{Tree, Version, commit_diff, shared_diff};

pub(super) fn commit<S: PageStore>(
    engine: &Engine<S>,
    catalog: &mut Tree<S>,
    trees: Vec<(Vec<u8>, Option<&mut Tree<S>>)>,
    snapshots: &BTreeMap<Vec<u8>, Option<Past>>,
    base: &Meta,
    durability: Durability,
) -> Result<u64> {
    let pager = engine.shared.pager.clone();
    let revision = base.revision + 1;
    let time = history::commit_time(engine.shared.clock, base.time);
    // Each touched tree's root before and after; the catalog learns the changed ones.
    let mut changes = Vec::new();
    let mut entries: Vec<(Vec<u8>, Option<Version>)> = Vec::new();
    let mut default = None;
    for (name, tree) in trees {
        let old = catalog.tree(&name)?;
        let new = match tree {
            Some(tree) => Some(tree.commit_as(revision)?),
            None => None,
        };
        if name.is_empty() {
            default = new;
        }
        if old == new {
            continue;
        }
        changes.push((
            old.map(|version| version.root_ref()),
            new.map(|version| version.root_ref()),
        ));
        entries.push((name, new));
    }
    let default = default.ok_or_else(|| Error::TreeNotFound { name: Vec::new() })?;
    if entries.is_empty() && snapshots.is_empty() {
        // Nothing changed; whatever was allocated (nothing, usually) is returned.
        let mut space = pager.space();
        for extent in space.take_fresh() {
            space.free(extent);
        }
        drop(space);
        if durability == Durability::Immediate {
            engine.sync_held()?;
        }
        return Ok(base.revision);
    }
    let fresh: HashSet<u64> = pager.space().fresh().map(|extent| extent.start.0).collect();
    let shared = shared_diff(&pager, &changes, &fresh, |page| catalog.extra(page))?;
    for (name, version) in entries {
        let key = catalog::tree_key(&name);
        match version {
            Some(version) => catalog.put(&key, &catalog::encode_version(&version))?,
            None => catalog.delete(&key)?,
        }
    }
    for &(page, extra) in &shared.extra {
        let key = catalog::shared_key(page);
        if extra == 0 {
            catalog.delete(&key)?;
        } else {
            catalog.put(&key, &extra.to_le_bytes())?;
        }
    }
    let old_floor = engine.lock_state().floor;
    let retention = engine.shared.retention;
    let floor = history::retention_floor(retention, catalog, old_floor, base, revision, time)?;
    history::record(catalog, snapshots, base, old_floor, floor)?;
    let version = catalog.commit_as(revision)?;
    let new_root = StoredRef {
        page: version.root,
        checksum: version.root_checksum,
        birth: revision,
    };
    let old_root = super::version_of(base).root_ref();
    let diff = commit_diff(&pager, old_root, new_root, revision)?;
    let root = super::root_of(&version);
    let (kept, slot) = {
        let state = engine.lock_state();
        (engine.kept(&state, Some(floor)), 1 - state.durable_slot)
    };
    let mut space = pager.space();
    // Changed in place, and put back if the writes fail: copying a fragmented store's
    // free space was the largest cost of a small commit.
    space.checkpoint();
    for extent in space.take_fresh() {
        let start = extent.start.0;
        if diff.referenced.contains(&start) || shared.referenced.contains(&start) {
            space.note_written(extent);
        } else {
            space.free(extent);
        }
    }
    for (extent, born) in diff.freed.into_iter().chain(shared.freed) {
        space.defer(revision, born, extent);
    }
    let published = publish(
        &pager,
        &mut space,
        Published {
            revision,
            floor,
            time,
            tree: root,
            slot,
            durability,
            kept,
        },
    );
    let (meta, page) = match published {
        Ok(published) => published,
        Err(error) => {
            space.roll_back();
            drop(space);
            // Best effort: if this fails too the slot stays suspect until a sync.
            let _ = engine.restore_latest_slot();
            return Err(error);
        }
    };
    if durability == Durability::Immediate {
        space.clear_recent();
    }
    space.keep_changes();
    drop(space);
    let mut state = engine.lock_state();
    state.meta = meta;
    state.latest_page = page;
    state.slot_suspect = false;
    state.default = default;
    state.floor = floor;
    for (name, change) in snapshots {
        match change {
            Some(past) => state.snapshots.insert(name.clone(), *past),
            None => state.snapshots.remove(name),
        };
    }
    // With `meta`, under the state lock: new readers pin the revision they read.
    engine.shared.pins.publish(revision);
    if durability == Durability::Immediate {
        state.note_durable(slot);
    }
    Ok(revision)
}

/// What a new version is.
pub(super) struct Published {
    pub revision: u64,
    /// The oldest revision it keeps readable.
    pub floor: u64,
    /// Commit time, microseconds since the Unix epoch.
    pub time: u64,
    pub tree: TreeRoot,
    /// The meta slot to write: never the one holding the durable version.
    pub slot: usize,
    pub durability: Durability,
    /// The versions whose pages must stay.
    pub kept: Kept,
}

/// Writes the free space `next` of a new version and its meta slot, and syncs if asked.
/// `next` is left as the new version's allocation state.
///
/// The free space goes, in order of preference: whole into the meta slot's page when it
/// fits there; as its changes since the last whole state (its base) into the meta slot
/// when those fit; else whole to an extent of its own, which becomes the new base.
/// A base the new version no longer uses is garbage once the version replaces the old.
pub(super) fn publish<S: PageStore>(
    pager: &Pager<S>,
    next: &mut FreeSpace,
    version: Published,
) -> Result<(Meta, PageBytes)> {
    let store = pager.store();
    let page_size = store.page_size();
    let Published {
        revision,
        floor,
        time,
        tree,
        slot,
        durability,
        kept,
    } = version;
    next.release(&kept);
    let inline = pager.free_space_inline();
    let fits = |len| inline && Meta::fits_inline(len, page_size);
    let delta = next.base().is_some() && fits(next.delta_len()) && !fits(next.encoded_len());
    if !delta {
        retire_base(next, revision);
    }
    let (free_space, inline) = if delta {
        let (bytes, checksum) = next.encode_delta();
        (inline_root(&bytes, checksum), Some(bytes))
    } else if fits(next.encoded_len()) {
        let (bytes, checksum) = next.encode_inline();
        (inline_root(&bytes, checksum), Some(bytes))
    } else {
        let page_count = next.encoded_page_count(page_size);
        let start = next.allocate(page_count);
        next.take_fresh();
        let (bytes, checksum) = next.encode(page_size, page_count);
        let extent = Extent::new(start, page_count);
        // The old base was retired above; this state is the new one.
        next.set_base(Some(Base {
            extent,
            checksum,
            born: revision,
        }));
        // Written since the last durable commit, like the tree's pages (noted after
        // encoding: recovery checks this extent through the meta slot, not the list).
        next.note_written(extent);
        pager.forget(start);
        resolve(store.write(start, PageBytes::new(bytes)))?;
        let page_count = u32::try_from(page_count).map_err(|_| {
            crate::error::Error::InvalidConfig("free-space state over 4 Gi pages".into())
        })?;
        let root = ExtentRoot {
            page: start,
            page_count,
            checksum,
        };
        (root, None)
    };
    let meta = Meta {
        revision,
        end: next.end(),
        tree,
        free_space,
        time,
        floor,
    };
    let page = PageBytes::new(meta.encode(page_size, inline.as_deref()));
    resolve(store.write(META_PAGES[slot], page.clone()))?;
    if durability == Durability::Immediate {
        resolve(store.sync())?;
    }
    Ok((meta, page))
}

/// The state is stored whole from now on: the old base, if any, is deferred as garbage
/// of the commit of `revision`.
fn retire_base(space: &mut FreeSpace, revision: u64) {
    if let Some(old) = space.base() {
        space.defer(revision, old.born, old.extent);
    }
    space.set_base(None);
}

fn inline_root(bytes: &[u8], checksum: u32) -> ExtentRoot {
    ExtentRoot {
        page: PageId::NONE,
        page_count: bytes.len() as u32,
        checksum,
    }
}

impl<S: PageStore> Engine<S> {
    /// Gives the free pages at the end of the store back to the operating system: commits
    /// (durably) a version whose end excludes them, then truncates. Returns the pages
    /// the store shrank by. Pages still kept for readers of older versions stay.
    pub fn compact(&self) -> Result<u64> {
        let _writer = self.lock_writer();
        let pager = self.shared.pager.clone();
        let (base, kept, slot, floor) = {
            let state = self.lock_state();
            let kept = self.kept(&state, None);
            (state.meta, kept, 1 - state.durable_slot, state.floor)
        };
        let mut space = pager.space();
        space.checkpoint();
        space.release(&kept);
        space.free_released(usize::MAX);
        space.trim();
        let published = Published {
            revision: base.revision + 1,
            floor,
            // It reads as its base, which has no history entry of its own (the catalog is
            // not rewritten): looked up, the base finds this revision's, with its time.
            time: base.time,
            tree: base.tree,
            slot,
            durability: Durability::Immediate,
            kept,
        };
        let (meta, page) = match publish(&pager, &mut space, published) {
            Ok(published) => published,
            Err(error) => {
                space.roll_back();
                drop(space);
                let _ = self.restore_latest_slot();
                return Err(error);
            }
        };
        space.clear_recent();
        space.keep_changes();
        drop(space);
        {
            let mut state = self.lock_state();
            state.meta = meta;
            state.latest_page = page;
            state.slot_suspect = false;
            self.shared.pins.publish(meta.revision);
            state.note_durable(slot);
        }
        let before = pager.store().page_count();
        if meta.end < before {
            resolve(pager.store().truncate(meta.end))?;
        }
        Ok(before.saturating_sub(pager.store().page_count()))
    }
}
