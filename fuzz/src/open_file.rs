//! The `open_file` target: a valid small database file, damaged as the input says (bit
//! flips, overwritten ranges, pages copied over others, truncation, extension, a page's
//! own checksum resealed over the damage), then opened and read in full.
//!
//! The database is built once, deterministically: three trees of a few hundred keys
//! (one a fork of another, so that pages are shared), values from empty to several pages
//! (off-tree), a named snapshot, deletes and a range delete after it, a retained history.
//! Every state it ever committed is kept as the truth. Opening the damaged file must
//! succeed or return an error; if it opens, every tree, every key, every retained
//! revision and every snapshot is read, and each read either returns an error or agrees
//! with one committed state, the same one for all reads of a version (a damaged latest
//! meta slot makes recovery fall back to the version before, and a resealed one may
//! name any page whose checksum it records). `check` must return, and a commit must
//! succeed or fail, without a panic. Pages the latest version does not use may be
//! damaged without any read noticing: that is fine.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arbitrary::Unstructured;
use thunderhead_disk::{CrashImage, MemStore, PageId, PageStore, resolve, seal_checksum};
use thunderhead_tx::{Database, Durability, Error, Options, ReadTransaction, Retention};

const PAGE_SIZE: usize = 4096;
const MUTATIONS_MAX: usize = 8;
/// Pages a damaged file may have at most (an extension beyond the end adds a few).
const EXTRA_PAGES_MAX: u64 = 16;

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;
type Trees = BTreeMap<Vec<u8>, Tree>;

/// The target: damage the file as `data` says, open it, read everything.
pub fn run(data: &[u8]) {
    let built = built();
    let mut pages = built.pages.clone();
    let mut input = Unstructured::new(data);
    let count = input.int_in_range(1..=MUTATIONS_MAX).unwrap_or(1);
    for _ in 0..count {
        if input.is_empty() {
            break;
        }
        mutate(&mut pages, &mut input);
    }
    let undamaged = pages == built.pages;
    let image = CrashImage {
        pages: pages
            .into_iter()
            .enumerate()
            .map(|(page, bytes)| (page as u64, bytes))
            .collect(),
    };
    let store = MemStore::from_image(PAGE_SIZE, &image).expect("whole pages");
    let db = match Database::open_in(Arc::new(store), options()) {
        Ok(db) => db,
        // Any error is typed: that `open_in` returned it, and did not panic, is the test.
        Err(error) => {
            assert!(!undamaged, "the undamaged file does not open: {error}");
            return;
        }
    };
    if undamaged {
        // The reads below accept any committed state; this one must be the last.
        let read = db.begin_read();
        let names = read
            .list_trees()
            .expect("the undamaged file lists its trees");
        let trees: Trees = names
            .into_iter()
            .map(|name| {
                let tree = read_tree(&read, &name).expect("the undamaged file reads");
                (name, tree)
            })
            .collect();
        assert!(
            Some(&trees) == built.states.last(),
            "the undamaged file reads another state"
        );
    }
    read_everything(&db, built);
    let _ = db.check();
    let _ = commit_one(&db);
}

fn options() -> Options {
    Options {
        page_size: PAGE_SIZE,
        journal_bytes: 6 * 1024,
        cache_bytes: 32 * 1024,
        retain_revisions: Retention::revisions(4),
        ..Options::default()
    }
}

// ---------------------------------------------------------------------------------------
// The database

/// The valid file and every state committed to it.
struct Built {
    pages: Vec<Vec<u8>>,
    states: Vec<Trees>,
    /// Every tree any state had, with every key any state had in it, in order.
    keys: BTreeMap<Vec<u8>, Vec<Vec<u8>>>,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(build)
}

fn key(index: u64) -> Vec<u8> {
    format!("key{index:04}").into_bytes()
}

/// A value of `len` bytes that differs by `fill` from others of its length.
fn value(len: usize, fill: u64) -> Vec<u8> {
    (0..len)
        .map(|index| (fill as u8).wrapping_add((index as u8).wrapping_mul(13)))
        .collect()
}

/// Builds the database, committing as it goes, and records each committed state.
fn build() -> Built {
    let store = Arc::new(MemStore::new(PAGE_SIZE).expect("a memory store"));
    let db = Database::create_in(store.clone(), options()).expect("create");
    let mut states = vec![Trees::new()];
    let mut trees = Trees::new();
    commit(&db, &mut trees, &mut states, |batch| {
        for index in 0..300 {
            batch.push(Write::put(
                b"alpha",
                key(index),
                value(8 + (index % 40) as usize, index),
            ));
        }
    });
    commit(&db, &mut trees, &mut states, |batch| {
        for index in 0..60 {
            let len = match index % 6 {
                0 => 2000,
                1 => 9000,
                _ => (index % 90) as usize,
            };
            batch.push(Write::put(b"beta", key(index * 7), value(len, index)));
        }
    });
    let txn = db.begin_write().expect("begin");
    txn.fork_tree(b"alpha", b"gamma").expect("fork");
    txn.commit().expect("commit the fork");
    trees.insert(b"gamma".to_vec(), trees[&b"alpha"[..]].clone());
    states.push(trees.clone());
    db.snapshot(b"before").expect("snapshot");
    states.push(trees.clone());
    commit(&db, &mut trees, &mut states, |batch| {
        for index in (0..300).step_by(3) {
            batch.push(Write::remove(b"alpha", key(index)));
        }
        for index in 0..40 {
            batch.push(Write::put(
                b"gamma",
                key(index * 11 + 1),
                value(1500, index),
            ));
        }
    });
    let txn = db.begin_write().expect("begin");
    txn.open_tree(b"beta")
        .expect("open")
        .remove_range(key(100).as_slice()..key(300).as_slice())
        .expect("remove a range");
    txn.commit().expect("commit the range delete");
    let beta = trees.get_mut(&b"beta"[..]).expect("beta");
    beta.retain(|key_bytes, _| *key_bytes < key(100) || *key_bytes >= key(300));
    states.push(trees.clone());
    commit(&db, &mut trees, &mut states, |batch| {
        for index in 0..30 {
            batch.push(Write::put(b"alpha", key(1000 + index), value(20, index)));
        }
    });
    db.check().expect("the database checks clean");
    drop(db);
    let pages = (0..store.page_count())
        .map(|page| {
            resolve(store.read(PageId(page), 1))
                .expect("a memory store reads")
                .to_vec()
        })
        .collect();
    let mut keys: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
    for state in &states {
        for (name, tree) in state {
            keys.entry(name.clone())
                .or_default()
                .extend(tree.keys().cloned());
        }
    }
    for keys in keys.values_mut() {
        keys.sort();
        keys.dedup();
    }
    Built {
        pages,
        states,
        keys,
    }
}

/// Commits `writes` (durably) to `db` and to `trees`, and records the state.
fn commit(
    db: &Database<Arc<MemStore>>,
    trees: &mut Trees,
    states: &mut Vec<Trees>,
    writes: impl FnOnce(&mut Vec<Write>),
) {
    let mut batch = Vec::new();
    writes(&mut batch);
    let txn = db.begin_write().expect("begin");
    for write in &batch {
        let tree = txn.open_tree(write.tree).expect("open");
        let model = trees.entry(write.tree.to_vec()).or_default();
        match &write.value {
            Some(value) => {
                tree.insert(&write.key, value).expect("insert");
                model.insert(write.key.clone(), value.clone());
            }
            None => {
                tree.remove(&write.key).expect("remove");
                model.remove(&write.key);
            }
        }
    }
    txn.commit_with(Durability::Immediate).expect("commit");
    states.push(trees.clone());
}

struct Write {
    tree: &'static [u8],
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

impl Write {
    fn put(tree: &'static [u8], key: Vec<u8>, value: Vec<u8>) -> Self {
        Self {
            tree,
            key,
            value: Some(value),
        }
    }

    fn remove(tree: &'static [u8], key: Vec<u8>) -> Self {
        Self {
            tree,
            key,
            value: None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Damage

/// A page to damage: mostly the header, the meta slots and the first pages, where
/// the catalog and the roots live, but any page of the file.
fn page_index(pages: &[Vec<u8>], input: &mut Unstructured) -> usize {
    let count = pages.len().max(1);
    match input.int_in_range(0..=3u8).unwrap_or(0) {
        0 => input.int_in_range(0..=2usize).unwrap_or(0) % count,
        1 => input.int_in_range(0..=15usize).unwrap_or(0) % count,
        _ => input.int_in_range(0..=u16::MAX as usize).unwrap_or(0) % count,
    }
}

/// An offset in a page: mostly in the first bytes, where the headers and meta fields
/// are.
fn offset(input: &mut Unstructured) -> usize {
    match input.int_in_range(0..=2u8).unwrap_or(0) {
        0 => input.int_in_range(0..=127usize).unwrap_or(0),
        _ => input.int_in_range(0..=PAGE_SIZE - 1).unwrap_or(0),
    }
}

fn mutate(pages: &mut Vec<Vec<u8>>, input: &mut Unstructured) {
    if pages.is_empty() {
        pages.push(vec![0; PAGE_SIZE]);
    }
    match input.int_in_range(0..=7u8).unwrap_or(0) {
        // A bit flipped.
        0 | 1 => {
            let page = page_index(pages, input);
            let at = offset(input);
            let bit = input.int_in_range(0..=7u8).unwrap_or(0);
            pages[page][at] ^= 1 << bit;
        }
        // A range overwritten with the input's bytes.
        2 => {
            let page = page_index(pages, input);
            let at = offset(input);
            let len = input
                .int_in_range(1..=64usize)
                .unwrap_or(1)
                .min(PAGE_SIZE - at);
            let bytes = input.bytes(len).unwrap_or(&[]);
            pages[page][at..at + bytes.len()].copy_from_slice(bytes);
        }
        // A range filled with one byte (zeroed, most often).
        3 => {
            let page = page_index(pages, input);
            let at = offset(input);
            let len = input
                .int_in_range(1..=PAGE_SIZE)
                .unwrap_or(1)
                .min(PAGE_SIZE - at);
            let byte = if input.ratio(3, 4u8).unwrap_or(true) {
                0
            } else {
                input.arbitrary().unwrap_or(0xFF)
            };
            pages[page][at..at + len].fill(byte);
        }
        // A page written over another: stale or misdirected, whole and checksummed.
        4 => {
            let from = page_index(pages, input);
            let to = page_index(pages, input);
            pages[to] = pages[from].clone();
        }
        // The page's own checksum resealed over its damage (a meta slot then passes its
        // checksum; other pages still fail the checksum their parent recorded).
        5 => {
            let page = page_index(pages, input);
            seal_checksum(&mut pages[page]);
        }
        // Truncated to fewer pages.
        6 => {
            let keep = input.int_in_range(0..=pages.len()).unwrap_or(0);
            pages.truncate(keep);
        }
        // Extended with pages of zeros or copies of the last.
        _ => {
            let more = input.int_in_range(1..=EXTRA_PAGES_MAX).unwrap_or(1);
            let copy = input.arbitrary().unwrap_or(false);
            for _ in 0..more {
                let page = match (copy, pages.last()) {
                    (true, Some(last)) => last.clone(),
                    _ => vec![0; PAGE_SIZE],
                };
                pages.push(page);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading

/// The committed states a version may be, narrowed down by every read of it.
struct Candidates<'a> {
    what: String,
    states: Vec<&'a Trees>,
}

impl<'a> Candidates<'a> {
    fn new(what: String, states: &'a [Trees]) -> Self {
        Self {
            what,
            states: states.iter().collect(),
        }
    }

    /// Keeps the states `agrees` accepts; panics if none is left.
    fn narrow(&mut self, read: &str, agrees: impl Fn(&Trees) -> bool) {
        self.states.retain(|state| agrees(state));
        assert!(
            !self.states.is_empty(),
            "{}: {read} agrees with no committed state",
            self.what
        );
    }
}

fn read_tree<S: PageStore>(read: &ReadTransaction<S>, name: &[u8]) -> Result<Tree, Error> {
    read.open_tree(name)?
        .iter()
        .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
        .collect()
}

/// Reads one version, every tree in full; every read that succeeds must agree with one
/// committed state. Gets of every key any state had (`every`, else of one key in 16),
/// and a reverse scan when `every`.
fn read_version<S: PageStore>(read: &ReadTransaction<S>, built: &Built, what: String, every: bool) {
    let mut candidates = Candidates::new(what, &built.states);
    let Ok(names) = read.list_trees() else {
        return;
    };
    candidates.narrow("the list of trees", |state| {
        state.keys().cloned().collect::<Vec<_>>() == names
    });
    for (name, keys) in &built.keys {
        match read_tree(read, name) {
            Ok(tree) => candidates.narrow(&format!("tree {}", name.escape_ascii()), |state| {
                state.get(name) == Some(&tree)
            }),
            Err(Error::TreeNotFound { .. }) => {
                candidates.narrow("a tree missing", |state| !state.contains_key(name));
                continue;
            }
            Err(_) => {}
        }
        let Ok(tree) = read.open_tree(name) else {
            continue;
        };
        let step = if every { 1 } else { 16 };
        for key in keys.iter().step_by(step) {
            if let Ok(found) = tree.get(key) {
                let found = found.map(|value| value.to_vec());
                candidates.narrow(&format!("key {}", key.escape_ascii()), |state| {
                    state.get(name).and_then(|tree| tree.get(key)) == found.as_ref()
                });
            }
        }
        if !every {
            continue;
        }
        if let Ok(reversed) = tree
            .iter()
            .rev()
            .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
            .collect::<Result<Vec<_>, Error>>()
        {
            candidates.narrow("a reverse scan", |state| {
                state.get(name).is_some_and(|tree| {
                    tree.iter()
                        .rev()
                        .map(|(key, value)| (key.clone(), value.clone()))
                        .eq(reversed.iter().cloned())
                })
            });
        }
    }
}

/// Reads the latest version, every retained revision and every snapshot.
fn read_everything<S: PageStore + 'static>(db: &Database<S>, built: &Built) {
    read_version(&db.begin_read(), built, "the latest version".into(), true);
    if let Ok(history) = db.history() {
        for commit in history {
            if let Ok(read) = db.begin_read_at(commit.revision) {
                read_version(&read, built, format!("revision {}", commit.revision), false);
            }
        }
    }
    for snapshot in db.snapshots() {
        if let Ok(read) = db.begin_read_at_snapshot(&snapshot.name) {
            let what = format!("snapshot {}", snapshot.name.escape_ascii());
            read_version(&read, built, what, false);
        }
    }
}

/// A write after the damage: it must succeed or return an error.
fn commit_one<S: PageStore + 'static>(db: &Database<S>) -> Result<u64, Error> {
    let txn = db.begin_write()?;
    txn.open_tree(b"alpha")?.insert(b"after", b"damage")?;
    txn.open_tree(b"beta")?.remove(&key(7))?;
    txn.commit()
}
