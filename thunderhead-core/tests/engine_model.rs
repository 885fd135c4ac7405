//! Model-based tests of the durable store against a `BTreeMap`: random transactions
//! (committed immediately or eventually, or aborted), readers opened and closed at any
//! point, reopening, and compaction. Every reader must keep reading exactly its version
//! however many commits reuse freed pages around it, and `check()` (tree invariants plus
//! the leak check: every page live, free or pending, exactly once) passes after every
//! step.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use thunderhead_core::{Durability, Engine, Reader, TreeConfig};
use thunderhead_disk::MemStore;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;
type Store = Arc<MemStore>;

#[derive(Clone, Debug)]
enum Change {
    Put { key: u16, len: usize, fill: u8 },
    Delete { key: u16 },
    DeleteRange { start: u16, end: u16 },
}

#[derive(Clone, Debug)]
enum Op {
    Transaction { changes: Vec<Change>, end: End },
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

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        8 => (0u16..400, prop_oneof![4 => 0usize..200, 1 => 1500usize..7000], any::<u8>())
            .prop_map(|(key, len, fill)| Change::Put { key, len, fill }),
        3 => (0u16..400).prop_map(|key| Change::Delete { key }),
        1 => (0u16..400, 0u16..60).prop_map(|(start, span)| Change::DeleteRange {
            start,
            end: start + span,
        }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (
            prop::collection::vec(change(), 1..80),
            prop_oneof![3 => Just(End::Immediate), 2 => Just(End::Eventual), 1 => Just(End::Abort)],
        )
            .prop_map(|(changes, end)| Op::Transaction { changes, end }),
        2 => Just(Op::OpenReader),
        2 => any::<prop::sample::Index>().prop_map(Op::CloseReader),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
    ]
}

fn contents(reader: &Reader<Store>) -> Result<Model, TestCaseError> {
    let mut found = Model::new();
    for entry in reader.iter() {
        let (key, value) = entry.map_err(|error| TestCaseError::fail(error.to_string()))?;
        found.insert(key, value.to_vec());
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

fn run(ops: &[Op], inline: bool) -> Result<(), TestCaseError> {
    let store: Store = Arc::new(MemStore::new(4096).unwrap());
    let mut engine = Engine::create(store.clone(), &config(inline)).unwrap();
    let mut model = Model::new();
    let mut readers: Vec<(Reader<Store>, Model)> = Vec::new();
    let fail = |what: &str, error: thunderhead_core::Error| {
        TestCaseError::fail(format!("{what}: {error}"))
    };
    for op in ops {
        match op {
            Op::Transaction { changes, end } => {
                let mut writer = engine.begin_write().map_err(|e| fail("begin", e))?;
                let mut next = model.clone();
                for change in changes {
                    match *change {
                        Change::Put { key: k, len, fill } => {
                            let value = vec![fill; len];
                            writer.put(&key(k), &value).map_err(|e| fail("put", e))?;
                            next.insert(key(k), value);
                        }
                        Change::Delete { key: k } => {
                            writer.delete(&key(k)).map_err(|e| fail("delete", e))?;
                            next.remove(&key(k));
                        }
                        Change::DeleteRange { start, end } => {
                            let (start, end) = (key(start), key(end));
                            writer
                                .delete_range(start.as_slice()..end.as_slice())
                                .map_err(|e| fail("delete_range", e))?;
                            next.retain(|k, _| !(k >= &start && k < &end));
                        }
                    }
                }
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

    /// Random transactions, readers, reopens and compactions agree with the model, and
    /// the store checks clean (no leak, no double use) after every step.
    #[test]
    fn engine_agrees_with_model(ops in prop::collection::vec(op(), 1..40), inline: bool) {
        run(&ops, inline)?;
    }
}
