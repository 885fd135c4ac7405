//! Model-based tests of the `Database` API against maps: two write transactions open
//! at once, interleaved at random, over several named trees, with forks, renames,
//! deletes, prefix views, aborts, read transactions and reopening; small spill budgets
//! in some cases so pending writes move to the scratch store mid-transaction.
//!
//! Every read inside a transaction must equal the transaction's own view (its snapshot
//! with its writes). A commit that succeeds must be serializable at its commit point:
//! replaying its operations on the latest committed state must reproduce every read it
//! made, and the result becomes the committed state. A commit that reports a conflict
//! must have had a reason: another commit since it began touched a tree it touched.
//! After every step the latest commit reads as the model and `check()` passes.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use thunderhead_disk::MemStore;
use thunderhead_tx::{Database, Durability, Error, Options, WriteTransaction};

type Tree = BTreeMap<Vec<u8>, Vec<u8>>;
type Trees = BTreeMap<Vec<u8>, Tree>;
type Store = Arc<MemStore>;
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

const NAMES: [&[u8]; 3] = [b"a", b"b", b"c"];
const VIEW: &[u8] = b"p/";

#[derive(Clone, Debug)]
enum Step {
    Insert {
        tree: usize,
        key: u8,
        len: usize,
    },
    Remove {
        tree: usize,
        key: u8,
    },
    RemoveRange {
        tree: usize,
        start: u8,
        end: u8,
    },
    Get {
        tree: usize,
        key: u8,
    },
    Scan {
        tree: usize,
        start: u8,
        end: u8,
        reverse: bool,
    },
    ViewInsert {
        tree: usize,
        key: u8,
    },
    ViewScan {
        tree: usize,
    },
    Delete {
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
}

#[derive(Clone, Debug)]
enum Op {
    Begin(usize),
    Do(usize, Step),
    Commit(usize, bool),
    Abort(usize),
    Read,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    let tree = 0..NAMES.len();
    prop_oneof![
        8 => (tree.clone(), 0u8..40, prop_oneof![4 => 0usize..40, 1 => 3000usize..6000])
            .prop_map(|(tree, key, len)| Step::Insert { tree, key, len }),
        3 => (tree.clone(), 0u8..40).prop_map(|(tree, key)| Step::Remove { tree, key }),
        1 => (tree.clone(), 0u8..40, 0u8..12).prop_map(|(tree, start, span)| Step::RemoveRange {
            tree, start, end: start + span,
        }),
        4 => (tree.clone(), 0u8..40).prop_map(|(tree, key)| Step::Get { tree, key }),
        2 => (tree.clone(), 0u8..40, 0u8..20, any::<bool>()).prop_map(|(tree, start, span, reverse)| {
            Step::Scan { tree, start, end: start + span, reverse }
        }),
        2 => (tree.clone(), 0u8..40).prop_map(|(tree, key)| Step::ViewInsert { tree, key }),
        1 => tree.clone().prop_map(|tree| Step::ViewScan { tree }),
        1 => tree.clone().prop_map(|tree| Step::Delete { tree }),
        1 => (tree.clone(), tree.clone()).prop_map(|(from, to)| Step::Rename { from, to }),
        1 => (tree.clone(), tree).prop_map(|(from, to)| Step::Fork { from, to }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..2).prop_map(Op::Begin),
        20 => (0usize..2, step()).prop_map(|(slot, step)| Op::Do(slot, step)),
        3 => (0usize..2, any::<bool>()).prop_map(|(slot, immediate)| Op::Commit(slot, immediate)),
        1 => (0usize..2).prop_map(Op::Abort),
        1 => Just(Op::Read),
        1 => Just(Op::Reopen),
    ]
}

fn key(index: u8) -> Vec<u8> {
    format!("k{index:02}").into_bytes()
}

fn value(len: usize, stamp: u64) -> Vec<u8> {
    let mut value = stamp.to_le_bytes().to_vec();
    value.resize(len.max(8), (stamp % 251) as u8);
    value
}

/// What one step observed, or changed: replayed on another state, it must observe
/// the same.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Nothing,
    Value(Option<Vec<u8>>),
    Entries(Entries),
    Existed(bool),
    Refused,
}

/// Applies `step` to `trees` (a transaction's view, or the committed state on replay)
/// and says what it observed.
fn model_step(trees: &mut Trees, step: &Step, stamp: u64) -> Seen {
    let name = |index: usize| NAMES[index].to_vec();
    match *step {
        Step::Insert { tree, key: k, len } => {
            trees
                .entry(name(tree))
                .or_default()
                .insert(key(k), value(len, stamp));
            Seen::Nothing
        }
        Step::Remove { tree, key: k } => {
            trees.entry(name(tree)).or_default().remove(&key(k));
            Seen::Nothing
        }
        Step::RemoveRange { tree, start, end } => {
            let (start, end) = (key(start), key(end));
            trees
                .entry(name(tree))
                .or_default()
                .retain(|k, _| !(*k >= start && *k < end));
            Seen::Nothing
        }
        Step::Get { tree, key: k } => {
            Seen::Value(trees.entry(name(tree)).or_default().get(&key(k)).cloned())
        }
        Step::Scan {
            tree,
            start,
            end,
            reverse,
        } => {
            let tree = trees.entry(name(tree)).or_default();
            let mut entries: Vec<_> = tree
                .range(key(start)..key(end))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if reverse {
                entries.reverse();
            }
            Seen::Entries(entries)
        }
        Step::ViewInsert { tree, key: k } => {
            let full = [VIEW, &key(k)].concat();
            trees
                .entry(name(tree))
                .or_default()
                .insert(full, value(8, stamp));
            Seen::Nothing
        }
        Step::ViewScan { tree } => {
            let tree = trees.entry(name(tree)).or_default();
            Seen::Entries(
                tree.iter()
                    .filter(|(k, _)| k.starts_with(VIEW))
                    .map(|(k, v)| (k[VIEW.len()..].to_vec(), v.clone()))
                    .collect(),
            )
        }
        Step::Delete { tree } => Seen::Existed(trees.remove(&name(tree)).is_some()),
        Step::Rename { from, to } => {
            if !trees.contains_key(&name(from)) || (from != to && trees.contains_key(&name(to))) {
                return Seen::Refused;
            }
            let moved = trees.remove(&name(from)).unwrap_or_default();
            trees.insert(name(to), moved);
            Seen::Nothing
        }
        Step::Fork { from, to } => {
            if !trees.contains_key(&name(from)) || trees.contains_key(&name(to)) {
                return Seen::Refused;
            }
            let copy = trees[&name(from)].clone();
            trees.insert(name(to), copy);
            Seen::Nothing
        }
    }
}

fn fail(what: &str, error: Error) -> TestCaseError {
    TestCaseError::fail(format!("{what}: {error}"))
}

fn entries(
    range: impl Iterator<Item = thunderhead_tx::Result<(Vec<u8>, thunderhead_tx::Value)>>,
) -> Result<Entries, TestCaseError> {
    range
        .map(|entry| entry.map(|(k, v)| (k, v.to_vec())))
        .collect::<Result<_, _>>()
        .map_err(|e| fail("range", e))
}

/// Runs `step` on the transaction and says what it observed.
fn engine_step(
    txn: &WriteTransaction<Store>,
    step: &Step,
    stamp: u64,
) -> Result<Seen, TestCaseError> {
    let name = |index: usize| NAMES[index];
    let open = |index: usize| txn.open_tree(name(index)).map_err(|e| fail("open_tree", e));
    Ok(match *step {
        Step::Insert { tree, key: k, len } => {
            open(tree)?
                .insert(&key(k), &value(len, stamp))
                .map_err(|e| fail("insert", e))?;
            Seen::Nothing
        }
        Step::Remove { tree, key: k } => {
            open(tree)?.remove(&key(k)).map_err(|e| fail("remove", e))?;
            Seen::Nothing
        }
        Step::RemoveRange { tree, start, end } => {
            open(tree)?
                .remove_range(key(start).as_slice()..key(end).as_slice())
                .map_err(|e| fail("remove_range", e))?;
            Seen::Nothing
        }
        Step::Get { tree, key: k } => Seen::Value(
            open(tree)?
                .get(&key(k))
                .map_err(|e| fail("get", e))?
                .map(|value| value.to_vec()),
        ),
        Step::Scan {
            tree,
            start,
            end,
            reverse,
        } => {
            let tree = open(tree)?;
            let range = tree
                .range(key(start).as_slice()..key(end).as_slice())
                .map_err(|e| fail("range", e))?;
            Seen::Entries(if reverse {
                entries(range.rev())?
            } else {
                entries(range)?
            })
        }
        Step::ViewInsert { tree, key: k } => {
            open(tree)?
                .prefix(VIEW)
                .insert(&key(k), &value(8, stamp))
                .map_err(|e| fail("view insert", e))?;
            Seen::Nothing
        }
        Step::ViewScan { tree } => {
            let view = open(tree)?.prefix(VIEW);
            Seen::Entries(entries(view.iter().map_err(|e| fail("view iter", e))?)?)
        }
        Step::Delete { tree } => Seen::Existed(
            txn.delete_tree(name(tree))
                .map_err(|e| fail("delete_tree", e))?,
        ),
        Step::Rename { from, to } => match txn.rename_tree(name(from), name(to)) {
            Ok(()) => Seen::Nothing,
            Err(Error::TreeExists { .. } | Error::TreeNotFound { .. }) => Seen::Refused,
            Err(error) => return Err(fail("rename", error)),
        },
        Step::Fork { from, to } => match txn.fork_tree(name(from), name(to)) {
            Ok(()) => Seen::Nothing,
            Err(Error::TreeExists { .. } | Error::TreeNotFound { .. }) => Seen::Refused,
            Err(error) => return Err(fail("fork", error)),
        },
    })
}

/// Names a step touches.
fn touched(step: &Step) -> Vec<usize> {
    match *step {
        Step::Insert { tree, .. }
        | Step::Remove { tree, .. }
        | Step::RemoveRange { tree, .. }
        | Step::Get { tree, .. }
        | Step::Scan { tree, .. }
        | Step::ViewInsert { tree, .. }
        | Step::ViewScan { tree }
        | Step::Delete { tree } => vec![tree],
        Step::Rename { from, to } | Step::Fork { from, to } => vec![from, to],
    }
}

struct Open {
    txn: WriteTransaction<Store>,
    /// The committed state it began from.
    snapshot: Trees,
    view: Trees,
    /// Steps with their stamps and what each observed.
    log: Vec<(Step, u64, Seen)>,
    /// Commits that happened while this transaction was open: the trees they touched.
    since: Vec<Vec<usize>>,
}

fn read_all(db: &Database<Store>) -> Result<Trees, TestCaseError> {
    let read = db.begin_read();
    let mut trees = Trees::new();
    for name in read.list_trees().map_err(|e| fail("list", e))? {
        let tree = read.open_tree(&name).map_err(|e| fail("open", e))?;
        trees.insert(name, entries(tree.iter())?.into_iter().collect());
    }
    Ok(trees)
}

/// The committed model omits empty trees that were only opened; the store keeps them.
fn same(found: &Trees, model: &Trees) -> bool {
    let nonempty = |trees: &Trees| -> Trees {
        trees
            .iter()
            .filter(|(_, tree)| !tree.is_empty())
            .map(|(name, tree)| (name.clone(), tree.clone()))
            .collect()
    };
    nonempty(found) == nonempty(model)
}

fn run(ops: &[Op], spill_bytes: usize) -> Result<(), TestCaseError> {
    let options = || Options {
        page_size: 4096,
        journal_bytes: 4096,
        spill_bytes,
        ..Options::default()
    };
    let store: Store = Arc::new(MemStore::new(4096).unwrap());
    let mut db = Database::create_in(store.clone(), options()).map_err(|e| fail("create", e))?;
    let mut committed = Trees::new();
    let mut slots: [Option<Open>; 2] = [None, None];
    let mut stamp = 0u64;
    for op in ops {
        stamp += 1;
        match op {
            Op::Begin(slot) => {
                if slots[*slot].is_none() {
                    let txn = db.begin_write().map_err(|e| fail("begin", e))?;
                    slots[*slot] = Some(Open {
                        txn,
                        snapshot: committed.clone(),
                        view: committed.clone(),
                        log: Vec::new(),
                        since: Vec::new(),
                    });
                }
            }
            Op::Do(slot, step) => {
                let Some(open) = &mut slots[*slot] else {
                    continue;
                };
                let seen = engine_step(&open.txn, step, stamp)?;
                let expected = model_step(&mut open.view, step, stamp);
                // Reads of a tree the model has never seen give empty results either way.
                prop_assert_eq!(&seen, &expected, "step {:?} in its transaction", step);
                open.log.push((step.clone(), stamp, seen));
            }
            Op::Commit(slot, immediate) => {
                let Some(open) = slots[*slot].take() else {
                    continue;
                };
                let durability = if *immediate {
                    Durability::Immediate
                } else {
                    Durability::Eventual
                };
                let before = db.revision();
                match open.txn.commit_with(durability) {
                    Ok(revision) => {
                        prop_assert!(revision == before || revision == before + 1);
                        // A transaction that changed nothing commits no revision and is
                        // serialized where it read, at its snapshot; one that changed
                        // something, at its commit point.
                        let wrote = revision == before + 1;
                        let mut replay = if wrote {
                            committed.clone()
                        } else {
                            open.snapshot.clone()
                        };
                        for (step, stamp, seen) in &open.log {
                            let again = model_step(&mut replay, step, *stamp);
                            prop_assert_eq!(
                                &again,
                                seen,
                                "replaying {:?} where it is serialized observes something else",
                                step
                            );
                        }
                        if wrote {
                            committed = replay;
                        } else {
                            prop_assert!(
                                same(&replay, &open.snapshot),
                                "a commit without a revision changed something"
                            );
                        }
                        let touched_here: Vec<usize> = open
                            .log
                            .iter()
                            .flat_map(|(step, _, _)| touched(step))
                            .collect();
                        for other in slots.iter_mut().flatten() {
                            other.since.push(touched_here.clone());
                        }
                    }
                    Err(Error::Conflict { reason }) => {
                        let mine: Vec<usize> = open
                            .log
                            .iter()
                            .flat_map(|(step, _, _)| touched(step))
                            .collect();
                        let justified = open
                            .since
                            .iter()
                            .any(|theirs| theirs.iter().any(|tree| mine.contains(tree)));
                        prop_assert!(justified, "a conflict with no cause: {}", reason);
                        prop_assert_eq!(db.revision(), before);
                    }
                    Err(error) => return Err(fail("commit", error)),
                }
            }
            Op::Abort(slot) => {
                if let Some(open) = slots[*slot].take() {
                    open.txn.abort();
                }
            }
            Op::Read => {
                let found = read_all(&db)?;
                prop_assert!(same(&found, &committed), "{:?} != {:?}", found, committed);
            }
            Op::Reopen => {
                slots = [None, None];
                drop(db);
                db = Database::open_in(store.clone(), options()).map_err(|e| fail("open", e))?;
            }
        }
        db.check().map_err(|e| fail("check", e))?;
    }
    slots = [None, None];
    drop(slots);
    let found = read_all(&db)?;
    prop_assert!(same(&found, &committed), "{:?} != {:?}", found, committed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("THUNDERHEAD_MODEL_CASES")
            .ok()
            .and_then(|cases| cases.parse().ok())
            .unwrap_or(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Interleaved transactions agree with the model and are serializable.
    #[test]
    fn transactions_agree_with_model(
        ops in prop::collection::vec(op(), 1..120),
        spill in prop_oneof![Just(64 << 20), Just(2048usize)],
    ) {
        run(&ops, spill)?;
    }
}
