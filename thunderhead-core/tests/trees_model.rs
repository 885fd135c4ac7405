//! Model-based tests of named trees in one store: random transactions that write to
//! several trees, create, delete, rename and fork them (forks share pages, counted in
//! the catalog), committed immediately or eventually or aborted, with readers pinning
//! old versions, reopens and compaction. The model is a map of maps. After every step
//! `check()` must pass: every tree's invariants, the reference counts of shared pages
//! (recounted from scratch), and the leak check (every page live, free or pending,
//! exactly once). Deleting forks and overwriting them must free exactly what no other
//! tree uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use thunderhead_core::{Durability, Engine, Error, Reader, TreeConfig};
use thunderhead_disk::{MemStore, PageStore};

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;
type Model = BTreeMap<Vec<u8>, Tree>;
type Store = Arc<MemStore>;

const NAMES: [&[u8]; 4] = [b"", b"a", b"b", b"c"];

#[derive(Clone, Debug)]
enum Step {
    Put {
        tree: usize,
        key: u16,
        len: usize,
        fill: u8,
    },
    Delete {
        tree: usize,
        key: u16,
    },
    DeleteRange {
        tree: usize,
        start: u16,
        end: u16,
    },
    Create {
        tree: usize,
    },
    DeleteTree {
        tree: usize,
    },
    Rename {
        from: usize,
        to: usize,
    },
    Fork {
        from: usize,
        to: usize,
    },
    ForkCommitted {
        from: usize,
        to: usize,
    },
    WriteOut,
}

#[derive(Clone, Debug)]
enum Op {
    Transaction { steps: Vec<Step>, end: End },
    OpenReader,
    CloseReader(prop::sample::Index),
    Reopen,
    Compact,
}

#[derive(Clone, Copy, Debug)]
enum End {
    Immediate,
    Eventual,
    Abort,
}

fn key(index: u16) -> Vec<u8> {
    format!("key{index:04}").into_bytes()
}

fn step() -> impl Strategy<Value = Step> {
    let tree = 0usize..NAMES.len();
    let named = 1usize..NAMES.len();
    prop_oneof![
        12 => (tree.clone(), 0u16..600, prop_oneof![6 => 0usize..200, 1 => 1500usize..5000], any::<u8>())
            .prop_map(|(tree, key, len, fill)| Step::Put { tree, key, len, fill }),
        4 => (tree.clone(), 0u16..600).prop_map(|(tree, key)| Step::Delete { tree, key }),
        1 => (tree.clone(), 0u16..600, 0u16..100).prop_map(|(tree, start, span)| Step::DeleteRange {
            tree,
            start,
            end: start + span,
        }),
        1 => named.clone().prop_map(|tree| Step::Create { tree }),
        1 => named.clone().prop_map(|tree| Step::DeleteTree { tree }),
        1 => (named.clone(), named.clone()).prop_map(|(from, to)| Step::Rename { from, to }),
        2 => (tree.clone(), named.clone()).prop_map(|(from, to)| Step::Fork { from, to }),
        1 => (tree, named).prop_map(|(from, to)| Step::ForkCommitted { from, to }),
        1 => Just(Step::WriteOut),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (
            prop::collection::vec(step(), 1..60),
            prop_oneof![3 => Just(End::Immediate), 2 => Just(End::Eventual), 1 => Just(End::Abort)],
        )
            .prop_map(|(steps, end)| Op::Transaction { steps, end }),
        2 => Just(Op::OpenReader),
        2 => any::<prop::sample::Index>().prop_map(Op::CloseReader),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
    ]
}

fn fail(what: &str, error: Error) -> TestCaseError {
    TestCaseError::fail(format!("{what}: {error}"))
}

fn contents(reader: &Reader<Store>) -> Result<Model, TestCaseError> {
    let mut found = Model::new();
    for name in reader.tree_names().map_err(|e| fail("tree names", e))? {
        let tree = reader
            .tree(&name)
            .map_err(|e| fail("tree", e))?
            .ok_or_else(|| TestCaseError::fail("a listed tree is missing"))?;
        let mut entries = Tree::new();
        for entry in tree.iter() {
            let (key, value) = entry.map_err(|e| fail("iter", e))?;
            entries.insert(key, value.to_vec());
        }
        found.insert(name, entries);
    }
    Ok(found)
}

fn config(free_space_inline: bool) -> TreeConfig {
    TreeConfig {
        journal_bytes_max: 4096,
        cache_bytes_max: 128 * 1024,
        free_space_inline,
        ..TreeConfig::default()
    }
}

/// Applies one step to the writer and the model, which must agree on what is refused.
fn apply(
    writer: &mut thunderhead_core::Writer<'_, Store>,
    base: &Model,
    model: &mut Model,
    step: &Step,
) -> Result<(), TestCaseError> {
    let expect = |ok: bool, result: Result<(), Error>, what: &str| match (ok, result) {
        (true, Ok(())) => Ok(()),
        (false, Err(Error::TreeExists { .. } | Error::TreeNotFound { .. })) => Ok(()),
        (ok, result) => Err(TestCaseError::fail(format!(
            "{what}: the model says {ok}, the engine {result:?}"
        ))),
    };
    match *step {
        Step::Put {
            tree,
            key: k,
            len,
            fill,
        } => {
            let value = vec![fill; len];
            let name = NAMES[tree];
            writer
                .tree_mut(name)
                .and_then(|tree| tree.put(&key(k), &value))
                .map_err(|e| fail("put", e))?;
            model
                .entry(name.to_vec())
                .or_default()
                .insert(key(k), value);
        }
        Step::Delete { tree, key: k } => {
            let name = NAMES[tree];
            if let Some(tree) = writer.tree(name).map_err(|e| fail("tree", e))? {
                tree.delete(&key(k)).map_err(|e| fail("delete", e))?;
            }
            if let Some(tree) = model.get_mut(name) {
                tree.remove(&key(k));
            }
        }
        Step::DeleteRange { tree, start, end } => {
            let name = NAMES[tree];
            let (start, end) = (key(start), key(end));
            if let Some(tree) = writer.tree(name).map_err(|e| fail("tree", e))? {
                tree.delete_range(start.as_slice()..end.as_slice())
                    .map_err(|e| fail("delete_range", e))?;
            }
            if let Some(tree) = model.get_mut(name) {
                tree.retain(|k, _| !(k >= &start && k < &end));
            }
        }
        Step::Create { tree } => {
            writer
                .tree_mut(NAMES[tree])
                .map_err(|e| fail("create", e))?;
            model.entry(NAMES[tree].to_vec()).or_default();
        }
        Step::DeleteTree { tree } => {
            let existed = writer
                .delete_tree(NAMES[tree])
                .map_err(|e| fail("delete tree", e))?;
            prop_assert_eq!(existed, model.remove(NAMES[tree]).is_some());
        }
        Step::Rename { from, to } => {
            let (from, to) = (NAMES[from], NAMES[to]);
            let ok = model.contains_key(from) && (from == to || !model.contains_key(to));
            expect(ok, writer.rename_tree(from, to), "rename")?;
            if ok {
                let tree = model.remove(from).unwrap_or_default();
                model.insert(to.to_vec(), tree);
            }
        }
        Step::Fork { from, to } => {
            let (from, to) = (NAMES[from], NAMES[to]);
            let ok = model.contains_key(from) && !model.contains_key(to);
            expect(ok, writer.fork_tree(from, to), "fork")?;
            if ok {
                let tree = model[from].clone();
                model.insert(to.to_vec(), tree);
            }
        }
        Step::ForkCommitted { from, to } => {
            let (from, to) = (NAMES[from], NAMES[to]);
            let ok = base.contains_key(from);
            expect(ok, writer.fork_committed(from, to), "fork committed")?;
            if ok {
                model.insert(to.to_vec(), base[from].clone());
            }
        }
        Step::WriteOut => writer.write_out().map_err(|e| fail("write out", e))?,
    }
    Ok(())
}

fn run(ops: &[Op], inline: bool) -> Result<(), TestCaseError> {
    let store: Store = Arc::new(MemStore::new(4096).unwrap());
    let mut engine = Engine::create(store.clone(), &config(inline)).unwrap();
    let mut model: Model = [(Vec::new(), Tree::new())].into();
    let mut readers: Vec<(Reader<Store>, Model)> = Vec::new();
    for op in ops {
        match op {
            Op::Transaction { steps, end } => {
                let mut writer = engine.begin_write().map_err(|e| fail("begin", e))?;
                let mut next = model.clone();
                for step in steps {
                    apply(&mut writer, &model, &mut next, step)?;
                }
                let names = writer.tree_names().map_err(|e| fail("names", e))?;
                prop_assert_eq!(names, next.keys().cloned().collect::<Vec<_>>());
                match end {
                    End::Abort => writer.abort(),
                    End::Immediate | End::Eventual => {
                        let durability = if matches!(end, End::Immediate) {
                            Durability::Immediate
                        } else {
                            Durability::Eventual
                        };
                        writer.commit(durability).map_err(|e| fail("commit", e))?;
                        model = next;
                    }
                }
            }
            Op::OpenReader => readers.push((engine.begin_read(), model.clone())),
            Op::CloseReader(index) => {
                if !readers.is_empty() {
                    let (reader, expected) = readers.remove(index.index(readers.len()));
                    prop_assert_eq!(&contents(&reader)?, &expected, "reader at close");
                }
            }
            Op::Reopen => {
                for (reader, expected) in readers.drain(..) {
                    prop_assert_eq!(&contents(&reader)?, &expected, "reader before reopen");
                }
                drop(engine);
                engine =
                    Engine::open(store.clone(), &config(inline)).map_err(|e| fail("open", e))?;
            }
            Op::Compact => {
                engine.compact().map_err(|e| fail("compact", e))?;
            }
        }
        engine.check().map_err(|e| fail("check", e))?;
        prop_assert_eq!(&contents(&engine.begin_read())?, &model, "latest version");
    }
    for (reader, expected) in &readers {
        prop_assert_eq!(&contents(reader)?, expected, "reader at end");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("THUNDERHEAD_MODEL_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Named trees, forks, renames and deletes agree with the model, and the store
    /// checks clean (reference counts, no leak, no double use) after every step.
    #[test]
    fn trees_agree_with_model(ops in prop::collection::vec(op(), 1..30), inline: bool) {
        run(&ops, inline)?;
    }
}

/// Forking a large tree writes nothing but the catalog, and the fork and its source
/// share every page until one of them changes; deleting the source then frees only
/// what the fork no longer uses.
#[test]
fn fork_shares_pages_and_delete_frees_only_the_unshared() {
    let store: Store = Arc::new(MemStore::new(4096).unwrap());
    let engine = Engine::create(store.clone(), &config(true)).unwrap();
    let mut writer = engine.begin_write().unwrap();
    let tree = writer.tree_mut(b"big").unwrap();
    for index in 0..20_000u32 {
        tree.put(format!("{index:08}").as_bytes(), &[7; 40])
            .unwrap();
    }
    writer.commit(Durability::Immediate).unwrap();
    let before = engine.check().unwrap();
    let written_before = store.stats().written_bytes;

    let mut writer = engine.begin_write().unwrap();
    writer.fork_tree(b"big", b"copy").unwrap();
    writer.commit(Durability::Immediate).unwrap();
    let forked = engine.check().unwrap();
    let fork_written = store.stats().written_bytes - written_before;
    // The catalog leaf, the meta slot: nothing of the tree.
    assert!(
        fork_written <= 3 * 4096,
        "a fork wrote {fork_written} bytes"
    );
    assert!(
        forked.live_pages <= before.live_pages + 2,
        "a fork used new pages"
    );

    let mut writer = engine.begin_write().unwrap();
    let copy = writer.tree(b"copy").unwrap().unwrap();
    copy.put(b"00000005", b"changed").unwrap();
    writer.commit(Durability::Immediate).unwrap();
    let report = engine.check().unwrap();
    assert!(report.shared_pages > 0);

    let mut writer = engine.begin_write().unwrap();
    assert!(writer.delete_tree(b"big").unwrap());
    writer.commit(Durability::Immediate).unwrap();
    let report = engine.check().unwrap();
    assert_eq!(
        report.shared_pages, 0,
        "nothing is shared once the source is gone"
    );
    let reader = engine.begin_read();
    let copy = reader.tree(b"copy").unwrap().unwrap();
    assert_eq!(
        copy.get(b"00000005").unwrap().as_deref(),
        Some(&b"changed"[..])
    );
    assert_eq!(
        copy.get(b"00019999").unwrap().as_deref(),
        Some(&[7u8; 40][..])
    );
    assert!(reader.tree(b"big").unwrap().is_none());
}

/// A commit far larger than memory should hold writes its nodes out as it goes; the
/// nodes it supersedes are reused at once, so the store stays near the size of the data
/// instead of growing with every write-out.
#[test]
fn writing_out_a_large_commit_reuses_superseded_pages() {
    let store: Store = Arc::new(MemStore::new(4096).unwrap());
    let engine = Engine::create(store.clone(), &config(true)).unwrap();
    let mut writer = engine.begin_write().unwrap();
    let mut model = Tree::new();
    for round in 0..40u32 {
        let tree = writer.tree_mut(b"big").unwrap();
        for index in 0..2_000u32 {
            let key = format!("{:08}", (index * 7919 + round) % 20_000).into_bytes();
            let value = vec![round as u8; 60];
            tree.put(&key, &value).unwrap();
            model.insert(key, value);
        }
        writer.write_out().unwrap();
    }
    writer.commit(Durability::Immediate).unwrap();
    let report = engine.check().unwrap();
    let reader = engine.begin_read();
    let tree = reader.tree(b"big").unwrap().unwrap();
    let found: Tree = tree
        .iter()
        .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(found, model);
    // Without reuse the store would hold every write-out's copy of the tree.
    assert!(
        report.used_pages < 3 * report.live_pages,
        "{} pages used for {} live",
        report.used_pages,
        report.live_pages
    );
}
