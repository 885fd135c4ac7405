//! Damaged storage: a committed tree is read through a store that corrupts what it
//! returns for one extent (a flipped bit, overwritten bytes, another page's bytes).
//! Every read must return the true data or an error: never a panic, never wrong data,
//! never a hang. Three modes:
//!
//! * `Raw`: only the bytes change, so the page's own checksum catches it.
//! * `Resealed`: the page's checksum is recomputed, so only the checksum its parent (or
//!   the version) recorded can catch it.
//! * `DeepResealed`: every recorded checksum up to the root is patched too (and the
//!   version gets the new root checksum), so nothing but structure validation stands in
//!   the way. Here wrong data is unavoidable (a flipped value byte is a valid tree), so
//!   the requirements are: no panic, no hang, and if `check()` accepts the tree, reads
//!   must be consistent with each other (sorted, forward = reverse, get = iteration).

use std::collections::{BTreeMap, HashMap};
use std::future::{Ready, ready};
use std::ops::{Bound, Range};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use thunderhead_core::{Pager, Snapshot, Tree, TreeConfig, Version};
use thunderhead_disk::{
    MemStore, PageBytes, PageId, PageStore, Result as DiskResult, StoreStats, resolve,
    seal_checksum,
};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

const PAGE_SIZE: usize = 4096;

// ---------------------------------------------------------------------------------------
// A store that damages reads

/// Wraps a shared `MemStore`; reads of an overridden extent return the override.
struct DamagingStore {
    inner: Arc<MemStore>,
    overrides: HashMap<u64, PageBytes>,
}

impl DamagingStore {
    fn new(inner: Arc<MemStore>, overrides: HashMap<u64, PageBytes>) -> Self {
        Self { inner, overrides }
    }
}

#[allow(refining_impl_trait)]
impl PageStore for DamagingStore {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }

    fn page_count(&self) -> u64 {
        self.inner.page_count()
    }

    fn read(&self, start: PageId, page_count: u32) -> Ready<DiskResult<PageBytes>> {
        match self.overrides.get(&start.0) {
            Some(bytes) if bytes.len() == page_count as usize * PAGE_SIZE => {
                ready(Ok(bytes.clone()))
            }
            Some(_) => ready(Err(thunderhead_disk::Error::corrupted(
                start,
                "test store: extent length differs",
            ))),
            None => ready(resolve(self.inner.read(start, page_count))),
        }
    }

    fn write(&self, start: PageId, bytes: PageBytes) -> Ready<DiskResult<()>> {
        ready(resolve(self.inner.write(start, bytes)))
    }

    fn sync(&self) -> Ready<DiskResult<()>> {
        ready(Ok(()))
    }

    fn truncate(&self, page_count: u64) -> Ready<DiskResult<()>> {
        ready(resolve(self.inner.truncate(page_count)))
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
}

// ---------------------------------------------------------------------------------------
// A map of the stored tree, parsed independently of the engine

const LEAF: u8 = 1;
const BRANCH: u8 = 2;
const SEGMENT: u8 = 3;
const OVERFLOW: u8 = 4;

/// Where a recorded checksum of an extent lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Referrer {
    Version,
    /// A u32 at `offset` in the extent starting at `page`.
    At {
        page: u64,
        offset: usize,
    },
}

struct Extent {
    pages: u32,
    kind: u8,
    referrers: Vec<Referrer>,
    /// Labelled byte ranges: header, offsets table, keys, values, slots, unused tail...
    regions: Vec<(&'static str, Range<usize>)>,
}

fn u16_at(bytes: &[u8], at: usize) -> usize {
    u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize
}

fn u32_at(bytes: &[u8], at: usize) -> usize {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn read_extent(store: &MemStore, page: u64, pages: u32) -> PageBytes {
    resolve(store.read(PageId(page), pages)).unwrap()
}

struct TreeMap {
    extents: BTreeMap<u64, Extent>,
}

impl TreeMap {
    fn build(store: &MemStore, version: Version) -> Self {
        let mut map = TreeMap {
            extents: BTreeMap::new(),
        };
        map.visit(store, version.root.0, 1, Referrer::Version);
        map
    }

    fn visit(&mut self, store: &MemStore, page: u64, pages: u32, referrer: Referrer) {
        if let Some(extent) = self.extents.get_mut(&page) {
            // An overflow extent may be shared by a journal message and a leaf entry.
            extent.referrers.push(referrer);
            return;
        }
        let bytes = read_extent(store, page, pages);
        let kind = bytes[0];
        let mut regions = vec![("header", 0..32)];
        let mut children = Vec::new();
        let overflow_ref = |at: usize, children: &mut Vec<(u64, u32, usize)>| {
            let value_len = u64_at(&bytes, at + 8) as usize;
            let pages = (value_len + 24).div_ceil(PAGE_SIZE) as u32;
            children.push((u64_at(&bytes, at), pages, at + 16));
        };
        match kind {
            LEAF => {
                let count = u16_at(&bytes, 8);
                let local = u16_at(&bytes, 12);
                let used = u32_at(&bytes, 16);
                let offsets = 32 + local;
                regions.push(("leaf prefix", 32..offsets));
                regions.push(("leaf offsets", offsets..offsets + 2 * count));
                for index in 0..count {
                    let at = u16_at(&bytes, offsets + 2 * index);
                    let suffix_len = u16_at(&bytes, at);
                    let value_len = u16_at(&bytes, at + 3);
                    let value_at = at + 5 + suffix_len;
                    regions.push(("leaf entry header", at..at + 5));
                    regions.push(("leaf key", at + 5..value_at));
                    regions.push(("leaf value", value_at..value_at + value_len));
                    if bytes[at + 2] == 1 {
                        overflow_ref(value_at, &mut children);
                    }
                }
                regions.push(("unused tail", used..PAGE_SIZE));
            }
            BRANCH => {
                let count = u16_at(&bytes, 8);
                let local = u16_at(&bytes, 12);
                let segment_count = u16_at(&bytes, 14);
                let used = u32_at(&bytes, 16);
                let slots = 32 + local;
                regions.push(("branch prefix", 32..slots));
                for index in 0..count {
                    let slot = slots + 32 * index;
                    regions.push(("child slot page", slot..slot + 8));
                    regions.push(("child slot checksum", slot + 8..slot + 12));
                    regions.push(("child slot tallies", slot + 12..slot + 32));
                    children.push((u64_at(&bytes, slot), 1, slot + 8));
                }
                // Segment slots are 40 bytes (page, page count, checksum, used bytes,
                // reserved, highest sequence number, birth).
                for index in 0..segment_count {
                    let slot = slots + 32 * count + 40 * index;
                    regions.push(("segment slot", slot..slot + 40));
                    children.push((
                        u64_at(&bytes, slot),
                        u32_at(&bytes, slot + 8) as u32,
                        slot + 12,
                    ));
                }
                let pivots = slots + 32 * count + 40 * segment_count;
                regions.push(("pivot offsets", pivots..pivots + 2 * (count - 1)));
                regions.push(("pivots", pivots + 2 * (count - 1)..used));
                regions.push(("unused tail", used..PAGE_SIZE));
            }
            SEGMENT => {
                let point_count = u32_at(&bytes, 8);
                let range_count = u32_at(&bytes, 12);
                let used = u32_at(&bytes, 16);
                let prefix = u16_at(&bytes, 20);
                let offsets = 32 + prefix;
                let messages = offsets + 4 * (point_count + range_count);
                regions.push(("segment prefix", 32..offsets));
                regions.push(("segment offsets", offsets..messages));
                for index in 0..point_count {
                    let at = u32_at(&bytes, offsets + 4 * index);
                    let suffix_len = u16_at(&bytes, at + 9);
                    let value_at = at + 16 + suffix_len;
                    regions.push(("point header", at..at + 16));
                    regions.push(("point key", at + 16..value_at));
                    regions.push(("point value", value_at..value_at + u32_at(&bytes, at + 12)));
                    if bytes[at + 11] == 1 {
                        overflow_ref(value_at, &mut children);
                    }
                }
                if range_count > 0 {
                    let first = u32_at(&bytes, offsets + 4 * point_count);
                    regions.push(("range messages", first..used));
                }
                regions.push(("unused tail", used..bytes.len()));
            }
            OVERFLOW => {
                let value_len = u64_at(&bytes, 8) as usize;
                regions[0] = ("header", 0..24);
                regions.push(("overflow value", 24..24 + value_len));
                regions.push(("unused tail", 24 + value_len..bytes.len()));
            }
            other => panic!("page {page} has kind {other}"),
        }
        regions.retain(|(_, range)| !range.is_empty());
        self.extents.insert(
            page,
            Extent {
                pages,
                kind,
                referrers: vec![referrer],
                regions,
            },
        );
        for (child, child_pages, checksum_at) in children {
            self.visit(
                store,
                child,
                child_pages,
                Referrer::At {
                    page,
                    offset: checksum_at,
                },
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The tree under test

struct Fixture {
    store: Arc<MemStore>,
    version: Version,
    model: Model,
    map: TreeMap,
}

fn rng(state: &mut u64) -> u64 {
    // splitmix64
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A key of the fixture: short keys, and groups of keys sharing 200-byte prefixes, so
/// many pivots are long and branches narrow (a 3-level tree from a few thousand keys).
fn fixture_key(r: u64) -> Vec<u8> {
    if r % 5 < 2 {
        let (group, item) = ((r >> 8) % 90, (r >> 16) % 12);
        format!("{group:03}{}{item:03}", "-".repeat(200)).into_bytes()
    } else {
        let tail = ["", "/a", "/profile"][(r >> 24) as usize % 3];
        format!("s/{:04}{tail}", (r >> 8) % 1500).into_bytes()
    }
}

/// A few thousand keys in a 3-level tree with 4 KiB pages and a small journal, so the
/// committed version has leaves, branches, journal segments and overflow values.
fn fixture() -> Fixture {
    let store = Arc::new(MemStore::new(PAGE_SIZE).unwrap());
    let config = TreeConfig {
        journal_bytes_max: 4096,
        ..TreeConfig::default()
    };
    let pager =
        Arc::new(Pager::new(DamagingStore::new(store.clone(), HashMap::new()), &config).unwrap());
    let mut tree = Tree::new(pager.clone());
    let mut model = Model::new();
    let mut state = 7;
    for step in 0..5000u32 {
        let r = rng(&mut state);
        let key = fixture_key(r);
        match (r >> 32) % 20 {
            0 => {
                tree.delete(&key).unwrap();
                model.remove(&key);
            }
            1 if step % 11 == 0 => {
                let value = vec![(r >> 8) as u8; 1000 + (r >> 40) as usize % 6000];
                tree.put(&key, &value).unwrap();
                model.insert(key, value);
            }
            2 if step % 61 == 0 => {
                let end = [&key[..key.len() - 1], b"~"].concat();
                tree.delete_range(key.as_slice()..end.as_slice()).unwrap();
                let doomed: Vec<_> = model
                    .range::<[u8], _>((
                        Bound::Included(key.as_slice()),
                        Bound::Excluded(end.as_slice()),
                    ))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in doomed {
                    model.remove(&k);
                }
            }
            _ => {
                let value = format!("v{step}-{}", "x".repeat((r >> 48) as usize % 100));
                tree.put(&key, value.as_bytes()).unwrap();
                model.insert(key, value.into_bytes());
            }
        }
        if step % 500 == 499 {
            tree.commit().unwrap();
        }
    }
    // Some messages stay in the journals: commit with them pending.
    for i in 0..40u64 {
        let key = fixture_key(i * 0x9E37_79B9);
        tree.put(&key, b"late").unwrap();
        model.insert(key, b"late".to_vec());
    }
    let version = tree.commit().unwrap();
    let fixture = Fixture::new(store, version, model);
    let kinds = |kind| {
        fixture
            .map
            .extents
            .values()
            .filter(|e| e.kind == kind)
            .count()
    };
    eprintln!(
        "fixture: {} keys, {} leaves, {} branches, {} segments, {} overflow extents",
        fixture.model.len(),
        kinds(LEAF),
        kinds(BRANCH),
        kinds(SEGMENT),
        kinds(OVERFLOW)
    );
    assert!(kinds(BRANCH) >= 3, "expected a 3-level tree");
    assert!(kinds(SEGMENT) >= 1, "expected journal segments");
    assert!(kinds(OVERFLOW) >= 5, "expected overflow values");
    fixture
}

impl Fixture {
    /// Maps the committed `version` and checks the map against the engine's census.
    fn new(store: Arc<MemStore>, version: Version, model: Model) -> Self {
        let map = TreeMap::build(&store, version);
        let pager = Arc::new(
            Pager::new(
                DamagingStore::new(store.clone(), HashMap::new()),
                &TreeConfig::default(),
            )
            .unwrap(),
        );
        // The map agrees with the engine's own census of the version (counting each
        // extent once: the checker may count a shared overflow extent twice).
        if let Ok(report) = Snapshot::new(pager.clone(), version).check() {
            let mut extents: Vec<(u64, u64)> =
                report.extents.iter().map(|(p, n)| (p.0, *n)).collect();
            extents.dedup();
            let ours: Vec<(u64, u64)> = map
                .extents
                .iter()
                .map(|(p, e)| (*p, u64::from(e.pages)))
                .collect();
            assert_eq!(extents, ours);
        }
        assert_eq!(Snapshot::new(pager, version).iter().count(), model.len());
        Self {
            store,
            version,
            model,
            map,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Trials

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Mode {
    Raw,
    Resealed,
    DeepResealed,
}

#[derive(Clone, Debug)]
enum Edit {
    Flip {
        offset: usize,
        bit: u8,
    },
    Overwrite {
        offset: usize,
        bytes: Vec<u8>,
    },
    /// The bytes of another extent of the same length.
    Substitute {
        with: u64,
    },
}

#[derive(Clone, Debug)]
struct Trial {
    page: u64,
    region: &'static str,
    edit: Edit,
    mode: Mode,
}

/// What a trial saw.
#[derive(Default, Debug)]
struct Outcome {
    check_ok: bool,
    any_error: bool,
}

impl Fixture {
    /// Builds the damaged store's overrides and the version to open, or `None` when the
    /// edit changes nothing.
    fn damage(&self, trial: &Trial) -> Option<(HashMap<u64, PageBytes>, Version)> {
        let extent = &self.map.extents[&trial.page];
        let original = read_extent(&self.store, trial.page, extent.pages);
        let mut bytes = original.to_vec();
        match &trial.edit {
            Edit::Flip { offset, bit } => bytes[*offset] ^= 1 << bit,
            Edit::Overwrite { offset, bytes: new } => {
                let end = (offset + new.len()).min(bytes.len());
                bytes[*offset..end].copy_from_slice(&new[..end - offset]);
            }
            Edit::Substitute { with } => {
                bytes = read_extent(&self.store, *with, extent.pages).to_vec()
            }
        }
        if trial.mode != Mode::Raw {
            seal_checksum(&mut bytes);
        }
        if bytes[..] == original[..] {
            return None;
        }
        let mut overrides = HashMap::new();
        let mut version = self.version;
        let checksum = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        overrides.insert(trial.page, PageBytes::new(bytes));
        if trial.mode == Mode::DeepResealed {
            self.reseal(trial.page, checksum, &mut overrides, &mut version);
        }
        Some((overrides, version))
    }

    /// Records `checksum` for `page` wherever it is referred to, resealing the referrers
    /// up to the version.
    fn reseal(
        &self,
        page: u64,
        checksum: u32,
        overrides: &mut HashMap<u64, PageBytes>,
        version: &mut Version,
    ) {
        for referrer in &self.map.extents[&page].referrers {
            match *referrer {
                Referrer::Version => version.root_checksum = checksum,
                Referrer::At {
                    page: parent,
                    offset,
                } => {
                    let pages = self.map.extents[&parent].pages;
                    let mut bytes = match overrides.get(&parent) {
                        Some(bytes) => bytes.to_vec(),
                        None => read_extent(&self.store, parent, pages).to_vec(),
                    };
                    bytes[offset..offset + 4].copy_from_slice(&checksum.to_le_bytes());
                    let sealed = seal_checksum(&mut bytes);
                    overrides.insert(parent, PageBytes::new(bytes));
                    self.reseal(parent, sealed, overrides, version);
                }
            }
        }
    }

    /// Reads everything through a fresh pager over the damaged store and judges it.
    fn run(&self, trial: &Trial, probe_keys: &[Vec<u8>]) -> Result<Option<Outcome>, String> {
        let Some((overrides, version)) = self.damage(trial) else {
            return Ok(None);
        };
        let store = DamagingStore::new(self.store.clone(), overrides);
        let pager = Arc::new(Pager::new(store, &TreeConfig::default()).unwrap());
        let snapshot = Snapshot::new(pager.clone(), version);
        let exact = trial.mode != Mode::DeepResealed;
        let mut outcome = Outcome::default();
        let cap = self.model.len() * 4 + 1000;

        let check = snapshot.check();
        outcome.check_ok = check.is_ok();
        if exact && check.is_ok() {
            return Err("check() accepted a damaged tree".into());
        }

        // Full forward and reverse iteration, stopping at the first error.
        let mut forward = Vec::new();
        let mut forward_error = false;
        for item in snapshot.iter() {
            match item {
                Ok((key, value)) => forward.push((key, value.to_vec())),
                Err(_) => {
                    forward_error = true;
                    break;
                }
            }
            if forward.len() > cap {
                return Err(format!("forward iteration ran past {cap} entries"));
            }
        }
        let mut reverse = Vec::new();
        let mut reverse_error = false;
        for item in snapshot.iter().rev() {
            match item {
                Ok((key, value)) => reverse.push((key, value.to_vec())),
                Err(_) => {
                    reverse_error = true;
                    break;
                }
            }
            if reverse.len() > cap {
                return Err(format!("reverse iteration ran past {cap} entries"));
            }
        }
        outcome.any_error = forward_error || reverse_error;
        if exact {
            for (index, (got, want)) in forward.iter().zip(&self.model).enumerate() {
                if got.0 != *want.0 || got.1 != *want.1 {
                    return Err(format!("forward entry {index} is wrong: key {:?}", got.0));
                }
            }
            if forward.len() > self.model.len()
                || (!forward_error && forward.len() != self.model.len())
            {
                return Err(format!(
                    "forward iteration gave {} of {} entries without an error",
                    forward.len(),
                    self.model.len()
                ));
            }
            for (index, (got, want)) in reverse.iter().zip(self.model.iter().rev()).enumerate() {
                if got.0 != *want.0 || got.1 != *want.1 {
                    return Err(format!("reverse entry {index} is wrong: key {:?}", got.0));
                }
            }
            if reverse.len() > self.model.len()
                || (!reverse_error && reverse.len() != self.model.len())
            {
                return Err(format!(
                    "reverse iteration gave {} of {} entries without an error",
                    reverse.len(),
                    self.model.len()
                ));
            }
        } else if check.is_ok() {
            // A tree the checker accepts must at least read consistently.
            if forward_error || reverse_error {
                return Err("check() passed but iteration failed".into());
            }
            if forward.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
                return Err("check() passed but iteration is not sorted".into());
            }
            reverse.reverse();
            if forward != reverse {
                return Err("check() passed but forward and reverse iteration differ".into());
            }
        }
        let seen: BTreeMap<&[u8], &[u8]> = forward
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        for key in probe_keys {
            match snapshot.get(key) {
                Ok(got) => {
                    let got = got.as_deref().map(<[u8]>::to_vec);
                    if exact && got.as_deref() != self.model.get(key).map(Vec::as_slice) {
                        return Err(format!(
                            "get {:?} returned wrong data",
                            String::from_utf8_lossy(key)
                        ));
                    }
                    if !exact
                        && check.is_ok()
                        && got.as_deref() != seen.get(key.as_slice()).copied()
                    {
                        return Err(format!(
                            "check() passed but get {:?} disagrees with iteration",
                            String::from_utf8_lossy(key)
                        ));
                    }
                }
                Err(_) => outcome.any_error = true,
            }
        }

        // A writer over the damaged version: correct or an error, never a panic.
        let mut tree = Tree::open(pager.clone(), version);
        let mut writes_ok = true;
        for (index, key) in probe_keys.iter().enumerate().step_by(7) {
            let result = if index % 2 == 0 {
                tree.put(key, b"new value")
            } else {
                tree.delete(key)
            };
            writes_ok &= result.is_ok();
        }
        writes_ok &= tree
            .delete_range(probe_keys[3].as_slice()..probe_keys[9].as_slice())
            .is_ok();
        // The writer's own write wins over anything stored (in the deep mode a smashed
        // sequence number may legitimately outrank it).
        if exact && writes_ok {
            match tree.get(&probe_keys[0]) {
                Ok(Some(value)) if &value[..] == b"new value" => {}
                Err(_) => {}
                other => return Err(format!("writer lost its own write: {other:?}")),
            }
        }
        let _ = tree.commit();
        Ok(Some(outcome))
    }
}

/// Offsets inside `range` to damage: its first and last byte and a few at random.
fn offsets(range: &Range<usize>, count: usize, state: &mut u64) -> Vec<usize> {
    let mut offsets = vec![range.start, range.end - 1];
    for _ in 0..count {
        offsets.push(range.start + rng(state) as usize % range.len());
    }
    offsets.sort_unstable();
    offsets.dedup();
    offsets
}

/// Trials per region kind scale with `THUNDERHEAD_CORRUPTION_INTENSITY` (default 1);
/// `THUNDERHEAD_CORRUPTION_SEED` picks other offsets.
fn intensity() -> usize {
    std::env::var("THUNDERHEAD_CORRUPTION_INTENSITY")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1)
}

/// For every extent and every kind of region in it (one region of each kind, picked at
/// random): bit flips raw and resealed, and bit flips and smashed fields deep-resealed;
/// plus another extent's bytes in all three modes.
fn trials(fixture: &Fixture, seed: u64, intensity: usize) -> Vec<Trial> {
    let mut state = seed;
    let mut trials = Vec::new();
    let extents: Vec<(&u64, &Extent)> = fixture.map.extents.iter().collect();
    for (index, &(&page, extent)) in extents.iter().enumerate() {
        // Leaves are many and alike: probe every other one.
        if extent.kind == LEAF && index % 2 == 1 {
            continue;
        }
        let mut labels: Vec<&'static str> =
            extent.regions.iter().map(|(label, _)| *label).collect();
        labels.sort_unstable();
        labels.dedup();
        for region in labels {
            let instances: Vec<&Range<usize>> = extent
                .regions
                .iter()
                .filter(|(label, _)| *label == region)
                .map(|(_, range)| range)
                .collect();
            for _ in 0..intensity {
                let range = instances[rng(&mut state) as usize % instances.len()];
                for offset in offsets(range, 0, &mut state) {
                    if rng(&mut state) % 2 == 1 && region != "header" {
                        continue; // One of the two ends, at random.
                    }
                    let bit = (rng(&mut state) % 8) as u8;
                    for mode in [Mode::Raw, Mode::Resealed, Mode::DeepResealed] {
                        trials.push(Trial {
                            page,
                            region,
                            edit: Edit::Flip { offset, bit },
                            mode,
                        });
                    }
                }
                for offset in offsets(range, 1, &mut state).into_iter().skip(1).step_by(2) {
                    // Smash a field with an extreme value: lengths, counts and offsets
                    // pointing past the page, to zero, or just off by a little.
                    let width = [1usize, 2, 4, 8][rng(&mut state) as usize % 4];
                    let fill = match rng(&mut state) % 4 {
                        0 => vec![0x00; width],
                        1 => vec![0xFF; width],
                        2 => (0..width).map(|_| rng(&mut state) as u8).collect(),
                        _ => {
                            let mut small = vec![0; width];
                            small[0] = (rng(&mut state) % 40) as u8;
                            small
                        }
                    };
                    trials.push(Trial {
                        page,
                        region,
                        edit: Edit::Overwrite {
                            offset,
                            bytes: fill,
                        },
                        mode: Mode::DeepResealed,
                    });
                }
            }
        }
        // Another extent's bytes: a misdirected read of a valid page.
        let same_size: Vec<u64> = extents
            .iter()
            .filter(|(other, e)| **other != page && e.pages == extent.pages)
            .map(|(other, _)| **other)
            .collect();
        if !same_size.is_empty() {
            let with = same_size[rng(&mut state) as usize % same_size.len()];
            for mode in [Mode::Raw, Mode::Resealed, Mode::DeepResealed] {
                trials.push(Trial {
                    page,
                    region: "whole extent",
                    edit: Edit::Substitute { with },
                    mode,
                });
            }
        }
    }
    trials
}

fn probe_keys(model: &Model) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = model
        .keys()
        .step_by(model.len() / 60 + 1)
        .cloned()
        .collect();
    // Absent keys between and around the present ones.
    keys.push(Vec::new());
    keys.push(b"user/".to_vec());
    keys.push(b"user/0500/zzz".to_vec());
    keys.push(vec![0xFF; 8]);
    keys
}

/// Where the last panic of this process happened (file), recorded by a panic hook.
static PANIC_FILE: Mutex<String> = Mutex::new(String::new());

fn record_panic_locations() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let file = info.location().map_or("", |location| location.file());
            *PANIC_FILE.lock().unwrap_or_else(|e| e.into_inner()) = file.to_string();
            default(info);
        }));
    });
}

/// Runs every trial under `catch_unwind`, with a watchdog against hangs.
fn run_trials(fixture: Arc<Fixture>, trials: Vec<Trial>) {
    record_panic_locations();
    let total = trials.len();
    let current = Arc::new(Mutex::new(String::new()));
    let progress = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let worker = {
        let current = current.clone();
        let progress = progress.clone();
        std::thread::spawn(move || {
            let keys = probe_keys(&fixture.model);
            let mut failures = Vec::new();
            let mut tally: BTreeMap<(Mode, &'static str), (usize, usize, usize)> = BTreeMap::new();
            for trial in &trials {
                *current.lock().unwrap() = format!("{trial:?}");
                let result = catch_unwind(AssertUnwindSafe(|| fixture.run(trial, &keys)));
                match result {
                    Ok(Ok(Some(outcome))) => {
                        let entry = tally.entry((trial.mode, trial.region)).or_default();
                        entry.0 += 1;
                        entry.1 += usize::from(!outcome.check_ok);
                        entry.2 += usize::from(outcome.any_error);
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(violation)) => failures.push(format!("{trial:?}: {violation}")),
                    Err(panic) => {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        let file = PANIC_FILE.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        failures.push(format!("{trial:?}: PANIC at {file}: {message}"));
                    }
                }
                progress.fetch_add(1, Ordering::Relaxed);
            }
            done_tx.send((failures, tally)).unwrap();
        })
    };
    let started = Instant::now();
    let mut last = (0, Instant::now());
    let (failures, tally) = loop {
        match done_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(result) => break result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = progress.load(Ordering::Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > Duration::from_secs(30) {
                    panic!(
                        "a trial has not finished in 30 s (hang?): {}",
                        current.lock().unwrap()
                    );
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("worker died"),
        }
    };
    worker.join().unwrap();
    eprintln!("{total} trials in {:?}", started.elapsed());
    eprintln!("mode / region: trials, check() errors, read errors");
    for ((mode, region), (count, check_errors, read_errors)) in &tally {
        eprintln!("  {mode:?} / {region}: {count}, {check_errors}, {read_errors}");
    }
    assert!(
        failures.is_empty(),
        "{} of {total} trials went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Tests

/// Bit flips, overwrites and misdirected pages in every region of every kind of page,
/// read raw, with the page checksum recomputed, and with every checksum up to the root
/// recomputed.
#[test]
fn damaged_pages_give_true_data_or_errors() {
    let fixture = Arc::new(fixture());
    let seed = std::env::var("THUNDERHEAD_CORRUPTION_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(0x5EED);
    let trials = trials(&fixture, seed, intensity());
    assert!(trials.len() > 1000, "{} trials", trials.len());
    run_trials(fixture, trials);
}

/// The damaging store itself: overrides are returned, and a fresh pager sees them while
/// an undamaged one reads the truth.
#[test]
fn damaging_store_overrides_reads() {
    let fixture = fixture();
    let root = fixture.version.root.0;
    let trial = Trial {
        page: root,
        region: "header",
        edit: Edit::Flip { offset: 20, bit: 3 },
        mode: Mode::Raw,
    };
    let (overrides, version) = fixture.damage(&trial).unwrap();
    assert_eq!(version, fixture.version);
    let store = DamagingStore::new(fixture.store.clone(), overrides);
    let original = read_extent(&fixture.store, root, 1);
    let damaged = resolve(store.read(PageId(root), 1)).unwrap();
    assert_eq!(damaged[20], original[20] ^ 8);
    let pager = Arc::new(Pager::new(store, &TreeConfig::default()).unwrap());
    let error = Snapshot::new(pager, version)
        .get(b"user/0001/a")
        .unwrap_err();
    assert!(error.is_corruption(), "{error}");
    let clean = Arc::new(
        Pager::new(
            DamagingStore::new(fixture.store.clone(), HashMap::new()),
            &TreeConfig::default(),
        )
        .unwrap(),
    );
    let snapshot = Snapshot::new(clean, fixture.version);
    let all: Vec<_> = snapshot
        .iter()
        .map(|item| item.map(|(k, v)| (k, v.to_vec())).unwrap())
        .collect();
    let want: Vec<_> = fixture
        .model
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(all, want);
}

// ---------------------------------------------------------------------------------------
// Engine bugs found by the trials above (minimal reproductions)

/// A small tree over a fresh store: `keys` puts of `value_len`-byte values, committed.
fn small_fixture(
    journal_bytes_max: usize,
    puts: &[(Vec<u8>, Vec<u8>)],
    late: &[Vec<u8>],
) -> Fixture {
    let store = Arc::new(MemStore::new(PAGE_SIZE).unwrap());
    let config = TreeConfig {
        journal_bytes_max,
        ..TreeConfig::default()
    };
    let pager =
        Arc::new(Pager::new(DamagingStore::new(store.clone(), HashMap::new()), &config).unwrap());
    let mut tree = Tree::new(pager);
    let mut model = Model::new();
    for (key, value) in puts {
        tree.put(key, value).unwrap();
        model.insert(key.clone(), value.clone());
    }
    tree.commit().unwrap();
    // Journaled changes, committed as a segment of the root.
    for key in late {
        tree.put(key, b"late").unwrap();
        model.insert(key.clone(), b"late".to_vec());
    }
    let version = tree.commit().unwrap();
    Fixture::new(store, version, model)
}

/// A fresh pager over `fixture`'s store with `bytes` written at `offset` of `page` and
/// every checksum up to the version recomputed.
fn deep_damaged(
    fixture: &Fixture,
    page: u64,
    offset: usize,
    bytes: &[u8],
) -> (Arc<Pager<DamagingStore>>, Version) {
    let trial = Trial {
        page,
        region: "",
        edit: Edit::Overwrite {
            offset,
            bytes: bytes.to_vec(),
        },
        mode: Mode::DeepResealed,
    };
    let (overrides, version) = fixture.damage(&trial).unwrap();
    let store = DamagingStore::new(fixture.store.clone(), overrides);
    (
        Arc::new(Pager::new(store, &TreeConfig::default()).unwrap()),
        version,
    )
}

/// Regression (fixed): an overflow reference's `value_len` is trusted in arithmetic. A leaf
/// entry's `OverflowRef.value_len` set to `u64::MAX` (page checksums consistent) makes
/// `overflow_page_count` (`value_len + HEADER_BYTES`, page/overflow.rs) overflow:
/// "attempt to add with overflow" in builds with overflow checks (tests, debug). In
/// release it wraps, and the read fails cleanly. `LeafPage::parse` and
/// `SegmentPage::parse` could reject `value_len > VALUE_BYTES_MAX`, or the sum could
/// be checked.
#[test]
fn regression_overflow_ref_length_overflows() {
    let fixture = small_fixture(4096, &[(b"k".to_vec(), vec![1; 2000])], &[]);
    let root = fixture.version.root.0;
    let bytes = read_extent(&fixture.store, root, 1);
    assert_eq!(bytes[0], LEAF);
    // The single entry: offsets table after the local prefix, entry header, suffix, ref.
    let at = u16_at(&bytes, 32 + u16_at(&bytes, 12));
    assert_eq!(bytes[at + 2], 1, "an overflow entry");
    let value_at = at + 5 + u16_at(&bytes, at);
    let (pager, version) = deep_damaged(&fixture, root, value_at + 8, &u64::MAX.to_le_bytes());
    let snapshot = Snapshot::new(pager, version);
    let result = catch_unwind(AssertUnwindSafe(|| snapshot.get(b"k").map(|_| ())));
    assert!(result.is_ok(), "get panicked instead of returning an error");
}

/// Regression (fixed): a stored branch's `level` byte is trusted in arithmetic. A level-1
/// branch (under a level-2 root) whose header says level 255 (checksums consistent)
/// makes `BranchView::child` compute `child.level() + 1` in `u8` (tree/view.rs):
/// "attempt to add with overflow" in builds with overflow checks. In release it wraps
/// to 0 and the mismatch is reported as corruption. Comparing `child.level()` with
/// `self.level() - 1` (levels of branches are >= 1), or rejecting levels above
/// `TREE_DEPTH_MAX` when parsing, avoids it.
#[test]
fn regression_branch_level_overflows() {
    let puts: Vec<(Vec<u8>, Vec<u8>)> = (0..600u32)
        .map(|i| {
            (
                format!("{:03}{}{:03}", i / 6, "-".repeat(200), i % 6).into_bytes(),
                vec![2; 40],
            )
        })
        .collect();
    let fixture = small_fixture(4096, &puts, &[]);
    let root = fixture.version.root.0;
    let inner = *fixture
        .map
        .extents
        .iter()
        .find(|(page, extent)| extent.kind == BRANCH && **page != root)
        .expect("a 3-level tree")
        .0;
    let (pager, version) = deep_damaged(&fixture, inner, 2, &[255]);
    let snapshot = Snapshot::new(pager, version);
    let result = catch_unwind(AssertUnwindSafe(|| snapshot.check().map(|_| ())));
    assert!(
        result.is_ok(),
        "check panicked instead of returning an error"
    );
}

/// Regression (fixed): stored journal tallies are trusted by a `debug_assert!`. The root's
/// child slot 0 records `pending_bytes = 0` although the root's stored segment holds a
/// live message for child 0 (checksums consistent). A writer opened on that version
/// puts a key and commits; `persist_journal` merges the small segment with the new one
/// through `materialize`, whose `uncount` asserts "tally 32 below a live message of 36
/// bytes" (tree/journal.rs) and panics in debug and test builds (release saturates).
#[test]
fn regression_stored_tally_trips_debug_assert() {
    let puts: Vec<(Vec<u8>, Vec<u8>)> = (0..300u32)
        .map(|i| (format!("key{i:04}").into_bytes(), vec![3; 60]))
        .collect();
    let fixture = small_fixture(4096, &puts, &[b"key0000/late".to_vec()]);
    let root = fixture.version.root.0;
    let bytes = read_extent(&fixture.store, root, 1);
    assert_eq!(bytes[0], BRANCH);
    assert!(u16_at(&bytes, 14) >= 1, "the root keeps a journal segment");
    let slot0 = 32 + u16_at(&bytes, 12);
    let (pager, version) = deep_damaged(&fixture, root, slot0 + 12, &0u32.to_le_bytes());
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut tree = Tree::open(pager, version);
        tree.put(b"key0000/new", b"v")?;
        tree.commit().map(|_| ())
    }));
    assert!(
        result.is_ok(),
        "the writer panicked instead of returning an error"
    );
}
