//! The store's checker: the tree's invariants, plus the leak check. Every page below the
//! store's end must be exactly one of: the header or a meta slot, used by the latest
//! version (its tree or its free-space state), free, or waiting to be freed. A page in
//! none is leaked; a page in two is used twice.

use thunderhead_disk::{
    Extent, FIRST_DATA_PAGE, FreeSpace, META_PAGES, PageId, PageStore, resolve,
};

use super::Engine;
use super::catalog::Catalog;
use crate::error::{Error, Result};
use crate::tree::{CheckReport, Snapshot, Version, reference_counts, unseen_extents};

/// What [`Engine::check`] counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineReport {
    /// The latest version's default tree.
    pub tree: CheckReport,
    /// Every tree of the latest version by name (the default tree is the empty name).
    pub trees: Vec<(Vec<u8>, CheckReport)>,
    /// Pages referred to by more than one parent (trees forked from one another).
    pub shared_pages: u64,
    /// The revision checked.
    pub revision: u64,
    /// Pages the store uses (its end).
    pub used_pages: u64,
    /// Pages reachable from the latest version (tree and free-space state).
    pub live_pages: u64,
    /// Pages free for reuse: free now, or released and freed as allocations come
    /// (`FreeSpace::release`).
    pub free_pages: u64,
    /// Pages freed but kept for readers of older versions or for recovery.
    pub pending_pages: u64,
    /// Past revisions kept readable (the retained history below the latest, and
    /// snapshots), all verified.
    pub past_versions: u64,
}

impl<S: PageStore> Engine<S> {
    /// Verifies the latest version (every invariant and checksum of its tree), its
    /// stored free-space state, and that no page is leaked or used twice. Waits for the
    /// writer, if one is open.
    pub fn check(&self) -> Result<EngineReport> {
        let _writer = self.lock_writer();
        let (meta, slot, floor, snapshots, suspect) = {
            let state = self.lock_state();
            (
                state.meta,
                state.latest_slot(),
                state.floor,
                state.snapshots.len(),
                state.slot_suspect.then(|| state.latest_page.clone()),
            )
        };
        let pager = &self.shared.pager;
        let catalog = Snapshot::new(pager.clone(), super::version_of(&meta));
        let catalog_report = catalog.check()?;
        let mut trees = Vec::new();
        for (name, version) in catalog.trees()? {
            let report = Snapshot::new(pager.clone(), version).check()?;
            trees.push((name, report, version));
        }
        let tree = match trees.first() {
            Some((name, report, _)) if name.is_empty() => report.clone(),
            _ => {
                return Err(Error::Invariant {
                    location: "catalog".into(),
                    reason: "no default tree".into(),
                });
            }
        };
        let roots: Vec<_> = trees
            .iter()
            .map(|(_, _, version)| version.root_ref())
            .collect();
        let (counts, tree_extents) = reference_counts(pager, &roots)?;
        let stored_extra: std::collections::HashMap<u64, u64> =
            catalog.shared()?.into_iter().collect();
        for (&page, &count) in &counts {
            let expected = count - 1;
            let stored = stored_extra.get(&page).copied().unwrap_or(0);
            if stored != expected {
                return Err(Error::Invariant {
                    location: PageId(page).to_string(),
                    reason: format!(
                        "{count} parents refer to it but the catalog counts {} references",
                        stored + 1
                    ),
                });
            }
        }
        if let Some(page) = stored_extra.keys().find(|page| !counts.contains_key(page)) {
            return Err(Error::Invariant {
                location: PageId(*page).to_string(),
                reason: "the catalog counts references to a page nothing refers to".into(),
            });
        }
        // A slot a failed commit may have overwritten, and that could not be written back
        // yet, is known not to hold the latest commit; the next sync writes it back before
        // it syncs (the simulator found `check()` reporting it as damage). Until then the
        // page as written stands in for it.
        let meta_page = match suspect {
            Some(page) => page,
            None => resolve(pager.store().read(META_PAGES[slot], 1))?,
        };
        let stored = super::open::load_free_space(pager, &meta, &meta_page)?;
        if thunderhead_disk::Meta::decode(META_PAGES[slot], &meta_page)? != meta {
            return Err(Error::Invariant {
                location: format!("meta slot {slot}"),
                reason: "the slot does not hold the latest commit".into(),
            });
        }
        let current = pager.space().clone();
        let mut live: Vec<Extent> = catalog_report
            .extents
            .iter()
            .map(|&(start, page_count)| Extent::new(start, page_count))
            .collect();
        live.extend(tree_extents);
        let base = stored.base();
        if current.base() != base {
            return Err(Error::Invariant {
                location: format!("meta slot {slot}"),
                reason: "the free space in memory and the stored one have different bases".into(),
            });
        }
        live.extend(base.map(|base| base.extent));
        tiles(&live, &stored, "the stored free space")?;
        tiles(&live, &current, "the free space in memory")?;
        let pasts = catalog.kept_catalogs()?;
        past_versions_kept(pager, &pasts, &current)?;
        // Released runs are free for the next allocations, though still stored as pending.
        let released = current.released_page_count();
        Ok(EngineReport {
            revision: meta.revision,
            used_pages: current.end(),
            live_pages: live.iter().map(|extent| extent.page_count).sum(),
            free_pages: current.free_page_count() + released,
            pending_pages: current
                .pending_extents()
                .map(|(_, _, extent)| extent.page_count)
                .sum::<u64>()
                - released,
            past_versions: meta.revision.saturating_sub(floor) + snapshots as u64,
            tree,
            shared_pages: stored_extra.len() as u64,
            trees: trees
                .into_iter()
                .map(|(name, report, _)| (name, report))
                .collect(),
        })
    }
}

/// Checks that every page a past version kept readable uses is still kept: pending (or
/// live again, shared with the latest), never free, and that every such version reads
/// whole (each shared subtree is checked once).
fn past_versions_kept<S: PageStore>(
    pager: &std::sync::Arc<crate::pager::Pager<S>>,
    pasts: &[Version],
    space: &FreeSpace,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    let free: Vec<Extent> = space.free_extents().collect();
    for past in pasts {
        let mut extents = unseen_extents(pager, &[past.root_ref()], &mut seen)?;
        let catalog = Snapshot::new(pager.clone(), *past);
        let roots: Vec<_> = catalog
            .trees()?
            .into_iter()
            .map(|(_, version)| version.root_ref())
            .collect();
        extents.extend(unseen_extents(pager, &roots, &mut seen)?);
        for extent in extents {
            let after = free.partition_point(|run| run.end() <= extent.start.0);
            if free
                .get(after)
                .is_some_and(|run| run.start.0 < extent.end())
                || extent.end() > space.end()
            {
                return Err(Error::Invariant {
                    location: format!("page {}", extent.start),
                    reason: format!(
                        "{extent:?}, read by the kept revision whose catalog is at {}, is free",
                        past.root
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Checks that the live extents and `space`'s free and pending runs cover the pages
/// from the first data page to the end exactly once.
fn tiles(live: &[Extent], space: &FreeSpace, what: &str) -> Result<()> {
    let mut all: Vec<(Extent, &str)> = live.iter().map(|&extent| (extent, "live")).collect();
    all.extend(space.free_extents().map(|extent| (extent, "free")));
    all.extend(
        space
            .pending_extents()
            .map(|(_, _, extent)| (extent, "pending")),
    );
    all.sort_by_key(|(extent, _)| *extent);
    let mut next = FIRST_DATA_PAGE;
    for (extent, kind) in all {
        let broken = |reason: String| Error::Invariant {
            location: format!("page {}", extent.start),
            reason: format!("{what}: {reason}"),
        };
        if extent.start.0 < next {
            return Err(broken(format!(
                "{kind} {extent:?} overlaps what precedes it"
            )));
        }
        if extent.start.0 > next {
            return Err(broken(format!(
                "pages {next}..{} are leaked: neither live, free nor pending",
                extent.start.0
            )));
        }
        next = extent.end();
    }
    if next != space.end() {
        return Err(Error::Invariant {
            location: format!("page {}", PageId(next)),
            reason: format!("{what}: the pages reach {next}, the end is {}", space.end()),
        });
    }
    Ok(())
}
