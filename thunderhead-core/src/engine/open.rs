//! Creating a store and opening one, with recovery.
//!
//! Recovery reads both meta slots. The newer valid one is taken if every extent it uses
//! that the older one did not (the pages written since) reads back whole; otherwise the
//! older one, which was durable before the newer slot was ever written and whose pages
//! no later commit touched. Recovery writes nothing but the rejected slot (overwritten
//! with the chosen version, so a later crash cannot bring back a version that was
//! reported lost) and one sync.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use thunderhead_disk::{
    Base, Error as DiskError, FIRST_DATA_PAGE, FileStore, FreeSpace, HEADER_PAGE, Header, Kept,
    META_PAGES, Meta, PageBytes, PageStore, Stored, resolve,
};

use super::catalog::{self, Catalog};
use super::commit::{Published, publish};
use super::pins::Pins;
use super::{Durability, Engine, Shared, State, history};
use crate::config::TreeConfig;
use crate::error::{Error, Result};
use crate::pager::Pager;
use crate::tree::{Snapshot, Tree, Version, verify_recent};

impl Engine<FileStore> {
    /// Creates a store in a new file at `path` with pages of `page_size` bytes.
    pub fn create_file(
        path: impl AsRef<Path>,
        page_size: usize,
        config: &TreeConfig,
    ) -> Result<Self> {
        Self::create(FileStore::create(path, page_size)?, config)
    }

    /// Opens the store in the file at `path`, recovering from a crash if there was one.
    pub fn open_file(path: impl AsRef<Path>, config: &TreeConfig) -> Result<Self> {
        Self::open(FileStore::open(path)?, config)
    }
}

impl<S: PageStore> Engine<S> {
    /// Formats `store`, which must be empty, as a store holding an empty tree (revision
    /// 0), durably.
    pub fn create(store: S, config: &TreeConfig) -> Result<Self> {
        if store.page_count() != 0 {
            return Err(Error::InvalidConfig(
                "a store can only be created on an empty page store".into(),
            ));
        }
        let page_size = store.page_size();
        resolve(store.write(HEADER_PAGE, PageBytes::new(Header { page_size }.encode())))?;
        // The second slot starts invalid (zeros): revision 0 goes to the first.
        resolve(store.write(META_PAGES[1], PageBytes::new(vec![0; page_size])))?;
        let mut space = FreeSpace::new(FIRST_DATA_PAGE);
        space.track_fresh();
        let pager = Arc::new(Pager::with_space(store, config, space)?);
        let default = Tree::new(pager.clone()).commit_as(0)?;
        let mut catalog = Tree::new(pager.clone());
        catalog.put(&catalog::tree_key(b""), &catalog::encode_version(&default))?;
        let version = catalog.commit_as(0)?;
        let mut next = pager.space().clone();
        next.take_fresh();
        let published = Published {
            revision: 0,
            floor: 0,
            time: history::commit_time(config.clock, 0),
            tree: super::root_of(&version),
            slot: 0,
            durability: Durability::Immediate,
            kept: Kept::new(0, 0),
        };
        let (meta, page) = publish(&pager, &mut next, published)?;
        // Revision 0 is durable: nothing written so far may be reused before it is freed
        // by a later durable commit.
        next.clear_recent();
        *pager.space() = next;
        Self::assemble(pager, config, meta, page, 0, Vec::new())
    }

    /// Opens a store, recovering the last committed version a crash left whole.
    /// Anything that is not a store, or a store damaged beyond both meta slots, is a
    /// typed error.
    pub fn open(store: S, config: &TreeConfig) -> Result<Self> {
        if store.page_count() == 0 {
            return Err(not_a_store("the store is empty"));
        }
        let header = Header::decode(&resolve(store.read(HEADER_PAGE, 1))?)?;
        if header.page_size != store.page_size() {
            return Err(not_a_store(
                "the header's page size differs from the store's",
            ));
        }
        if store.page_count() < FIRST_DATA_PAGE {
            return Err(not_a_store("the store ends before its meta slots"));
        }
        // A slot that cannot be read is an error, not a slot to pass over: falling back
        // to the other would open an older version, and the next commit would overwrite
        // the newer one, durable as it may be (the simulator found this). Opening again
        // may succeed.
        let [first, second] = META_PAGES.map(|page| resolve(store.read(page, 1)));
        let read = [first?, second?];
        // A slot of zeros was never written (the second slot of a new store); any other
        // invalid slot is a commit cut short or damage, and is reported.
        let slots = std::array::from_fn(|index| {
            let bytes = read[index].clone();
            Slot {
                meta: Meta::decode(META_PAGES[index], &bytes),
                blank: bytes.iter().all(|&byte| byte == 0),
                bytes: Some(bytes),
            }
        });
        let pager = Arc::new(Pager::with_space(
            store,
            config,
            FreeSpace::new(FIRST_DATA_PAGE),
        )?);
        let (slot, meta, space, rejected) = choose(&pager, &slots)?;
        let other = 1 - slot;
        let stale = slots[other].meta.as_ref().ok();
        if stale.is_some_and(|stale| stale.revision > meta.revision)
            && let Some(chosen) = &slots[slot].bytes
        {
            resolve(pager.store().write(META_PAGES[other], chosen.clone()))?;
        }
        // What the newest slot holds may so far live only in the operating system's
        // cache (the last process may have died after an eventual commit).
        resolve(pager.store().sync())?;
        let mut space = space;
        space.clear_recent();
        space.track_fresh();
        *pager.space() = space;
        let page = slots[slot]
            .bytes
            .clone()
            .ok_or_else(|| not_a_store("the chosen meta slot was not read"))?;
        Self::assemble(pager, config, meta, page, slot, rejected)
    }

    /// The engine over the version `meta` describes: its default tree, retention floor
    /// and snapshots come from its catalog.
    fn assemble(
        pager: Arc<Pager<S>>,
        config: &TreeConfig,
        meta: Meta,
        latest_page: PageBytes,
        slot: usize,
        rejected: Vec<String>,
    ) -> Result<Self> {
        let catalog = Snapshot::new(pager.clone(), super::version_of(&meta));
        let default = catalog
            .tree(b"")?
            .ok_or_else(|| Error::corrupted(meta.tree.page, "the catalog has no default tree"))?;
        let floor = meta.floor;
        let snapshots: BTreeMap<Vec<u8>, super::catalog::Past> =
            catalog.snapshots()?.into_iter().collect();
        let pins = Pins::new(meta.revision);
        pins.kept(floor);
        Ok(Self {
            shared: Arc::new(Shared {
                pager,
                rejected,
                state: Mutex::new(State {
                    meta,
                    default,
                    durable: meta.revision,
                    durable_slot: slot,
                    latest_page,
                    slot_suspect: false,
                    durable_keeps: super::DurableKeeps {
                        floor,
                        snapshots: snapshots.values().map(|past| past.revision).collect(),
                    },
                    floor,
                    snapshots,
                }),
                pins,
                writer: Mutex::new(()),
                retention: config.retention,
                clock: config.clock,
            }),
        })
    }
}

fn not_a_store(reason: &str) -> Error {
    Error::Storage(DiskError::NotAStore {
        reason: reason.to_string(),
    })
}

/// A meta slot as read.
struct Slot {
    meta: thunderhead_disk::Result<Meta>,
    /// Never written.
    blank: bool,
    bytes: Option<PageBytes>,
}

/// Picks the version to open: (slot, meta, free space, versions rejected and why). The
/// newest valid slot whose recently written extents verify wins; a slot that fails is
/// the in-flight commit a crash cut short, and the other slot, durable before it was
/// written, is next.
fn choose<S: PageStore>(
    pager: &Arc<Pager<S>>,
    slots: &[Slot; 2],
) -> Result<(usize, Meta, FreeSpace, Vec<String>)> {
    let mut valid: Vec<(usize, Meta, &PageBytes)> = slots
        .iter()
        .enumerate()
        .filter_map(|(index, slot)| match (&slot.meta, &slot.bytes) {
            (Ok(meta), Some(bytes)) => Some((index, *meta, bytes)),
            _ => None,
        })
        .collect();
    valid.sort_by_key(|(_, meta, _)| std::cmp::Reverse(meta.revision));
    let mut rejected: Vec<String> = slots
        .iter()
        .enumerate()
        .filter_map(|(index, slot)| match &slot.meta {
            Err(error) if !slot.blank => Some(format!("meta slot {index}: {error}")),
            _ => None,
        })
        .collect();
    for (slot, meta, bytes) in valid {
        match load_verified(pager, &meta, bytes) {
            Ok(space) => return Ok((slot, meta, space, rejected)),
            Err(error) if lost_in_crash(&error) => {
                rejected.push(format!("revision {}: {error}", meta.revision));
            }
            Err(error) => return Err(error),
        }
    }
    if rejected.is_empty() {
        rejected.push("both meta slots are blank".into());
    }
    Err(Error::Storage(DiskError::NoValidVersion {
        reason: rejected.join("; "),
    }))
}

/// Damage of the kind a crash leaves in pages written but not synced.
fn lost_in_crash(error: &Error) -> bool {
    error.is_corruption()
        || matches!(
            error,
            Error::Storage(DiskError::OutOfBounds { .. } | DiskError::NotAStore { .. })
        )
}

/// Loads the free space of the version `meta` describes (from its slot's page
/// `meta_page` when kept inline there) and checks it against the slot.
pub(super) fn load_free_space<S: PageStore>(
    pager: &Pager<S>,
    meta: &Meta,
    meta_page: &[u8],
) -> Result<FreeSpace> {
    let extent = meta.free_space;
    let stored = match meta.inline_free_space(meta_page) {
        Some(inline) => FreeSpace::decode(extent.page, inline, extent.checksum)?,
        None => {
            let bytes = resolve(pager.store().read(extent.page, extent.page_count))?;
            FreeSpace::decode(extent.page, &bytes, extent.checksum)?
        }
    };
    let space = match stored {
        // A state stored whole in an extent of its own was written by this version's
        // commit, and is the base of the commits after it.
        Stored::Whole(space) => {
            let mut space = *space;
            if let Some(extent) = meta.free_space_extent() {
                space.set_base(Some(Base {
                    extent,
                    checksum: meta.free_space.checksum,
                    born: meta.revision,
                }));
            }
            space
        }
        Stored::Delta(delta) => {
            let base = delta.base();
            let page = base.extent.start;
            let page_count = u32::try_from(base.extent.page_count)
                .map_err(|_| Error::corrupted(page, "free-space base over 4 Gi pages"))?;
            let bytes = resolve(pager.store().read(page, page_count))?;
            let whole = FreeSpace::decode(page, &bytes, base.checksum)?.into_whole(page)?;
            delta.apply(extent.page, whole)?
        }
    };
    if space.end() != meta.end {
        return Err(Error::corrupted(
            extent.page,
            "free space and meta slot disagree on the store's length",
        ));
    }
    Ok(space)
}

/// Loads a version's free space and verifies every extent written since the last
/// durable commit before it; returns the free space.
fn load_verified<S: PageStore>(
    pager: &Arc<Pager<S>>,
    meta: &Meta,
    meta_page: &[u8],
) -> Result<FreeSpace> {
    let space = load_free_space(pager, meta, meta_page)?;
    let extent = meta.free_space;
    // A free run at the end need not exist in the store; everything before it must.
    let used_end = space.clone().trim();
    let store_pages = pager.store().page_count();
    if used_end > store_pages {
        return Err(Error::corrupted(
            extent.page,
            format!(
                "revision {} uses {used_end} pages but the store holds {store_pages}",
                meta.revision
            ),
        ));
    }
    let recent: HashSet<u64> = space.recent().map(|extent| extent.start.0).collect();
    let latest = super::version_of(meta);
    pager.load_node(latest.root_ref())?;
    let catalog = verify_version(pager, latest, &recent)?;
    catalog.shared()?;
    // The past revisions the version keeps readable were written since the last durable
    // commit too, some of them, and a crash may have lost those pages: all must verify,
    // or the version is not whole (an immediate commit's sync made them all durable).
    // A past catalog not written since is durable with everything it names.
    let pasts = catalog.kept_catalogs()?;
    for past in pasts {
        if recent.contains(&past.root.0) {
            verify_version(pager, past, &recent)?;
        }
    }
    Ok(space)
}

/// Verifies what of the version whose catalog is `catalog` was written recently: the
/// catalog, then (its recent pages being whole, its entries can be read) each tree in
/// turn (a tree not written since is durable whole). Returns the catalog.
fn verify_version<S: PageStore>(
    pager: &Arc<Pager<S>>,
    catalog: Version,
    recent: &HashSet<u64>,
) -> Result<Snapshot<S>> {
    verify_recent(pager, catalog.root_ref(), recent)?;
    let catalog = Snapshot::new(pager.clone(), catalog);
    for (_, version) in catalog.trees()? {
        let root = version.root_ref();
        pager.load_node(root)?;
        verify_recent(pager, root, recent)?;
    }
    Ok(catalog)
}
