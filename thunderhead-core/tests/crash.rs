//! Power-loss tests. A random workload runs on a `FaultStore` until a planned crash point
//! (every store operation after it fails, as if the machine stopped); the disk image a
//! power loss would leave (unsynced writes lost, kept or torn by sector, by seed) is
//! reopened and must hold exactly one of the versions the crash could leave: the last
//! durable commit, a later acknowledged eventual commit, or the commit in flight. The
//! store must then check clean (no leaked page) and take new commits. Some runs crash
//! again during recovery and recover from that image.
//!
//! `THUNDERHEAD_CRASH_CASES` sets the number of crash points (default 1,000);
//! `THUNDERHEAD_CRASH_SEED` replays one.

use std::collections::BTreeMap;
use std::sync::Arc;

use thunderhead_core::{Durability, Engine, TreeConfig};
use thunderhead_disk::{FaultPlan, FaultStore, MemStore, PageStore, SplitMix64 as Rng};

const PAGE_SIZE: usize = 4096;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Odd seeds keep the free space in an extent of its own, even ones in the meta slot.
fn config(seed: u64) -> TreeConfig {
    TreeConfig {
        journal_bytes_max: 6 * 1024,
        cache_bytes_max: 64 * 1024,
        free_space_inline: seed.is_multiple_of(2),
        ..TreeConfig::default()
    }
}

fn contents<S: PageStore>(engine: &Engine<S>) -> Model {
    engine
        .begin_read()
        .iter()
        .map(|entry| {
            let (key, value) = entry.expect("reading a recovered version");
            (key, value.to_vec())
        })
        .collect()
}

/// Versions a crash may leave: the last durable one, then every later one.
struct Expect {
    candidates: Vec<Model>,
}

impl Expect {
    fn durable(&mut self, model: &Model) {
        self.candidates = vec![model.clone()];
    }

    fn maybe(&mut self, model: &Model) {
        self.candidates.push(model.clone());
    }

    fn position(&self, found: &Model) -> Option<usize> {
        self.candidates.iter().rposition(|model| model == found)
    }
}

/// Applies one random transaction to `writer` and `model`.
fn random_changes(
    rng: &mut Rng,
    writer: &mut thunderhead_core::Writer<'_, Arc<FaultStore<MemStore>>>,
    model: &mut Model,
) -> Result<(), thunderhead_core::Error> {
    let changes = 1 + rng.below(60);
    for _ in 0..changes {
        let key = format!("k{:04}", rng.below(600)).into_bytes();
        match rng.below(20) {
            0 => {
                let end = format!("k{:04}", rng.below(600)).into_bytes();
                if key < end {
                    writer.delete_range(key.as_slice()..end.as_slice())?;
                    model.retain(|k, _| !(k >= &key && k < &end));
                }
            }
            1..=4 => {
                writer.delete(&key)?;
                model.remove(&key);
            }
            _ => {
                // Now and then a value large enough to go off-tree.
                let len = if rng.below(10) == 0 {
                    1500 + rng.below(9000)
                } else {
                    rng.below(120)
                };
                let value = vec![rng.below(256) as u8; len as usize];
                writer.put(&key, &value)?;
                model.insert(key, value);
            }
        }
    }
    Ok(())
}

/// Runs the workload until the store fails (the crash), recording what may survive.
fn workload(rng: &mut Rng, engine: &Engine<Arc<FaultStore<MemStore>>>, expect: &mut Expect) {
    let mut model = Model::new();
    let mut readers = Vec::new();
    for _ in 0..40 {
        let mut writer = match engine.begin_write() {
            Ok(writer) => writer,
            Err(_) => return,
        };
        let mut next = model.clone();
        if random_changes(rng, &mut writer, &mut next).is_err() {
            return;
        }
        if rng.below(8) == 0 {
            writer.abort();
            continue;
        }
        let durability = if rng.below(3) == 0 {
            Durability::Eventual
        } else {
            Durability::Immediate
        };
        // In flight: it may or may not survive.
        expect.maybe(&next);
        match writer.commit(durability) {
            Ok(_) => {
                model = next;
                if durability == Durability::Immediate {
                    expect.durable(&model);
                }
            }
            Err(_) => return,
        }
        if rng.below(4) == 0 {
            readers.push(engine.begin_read());
        }
        if rng.below(3) == 0 && !readers.is_empty() {
            readers.remove(rng.below(readers.len() as u64) as usize);
        }
        if rng.below(10) == 0 {
            if engine.sync().is_err() {
                return;
            }
            expect.durable(&model);
        }
    }
}

/// Store operations the workload of `seed` performs when nothing fails.
fn workload_operations(seed: u64) -> u64 {
    let store = Arc::new(FaultStore::new(
        MemStore::new(PAGE_SIZE).unwrap(),
        FaultPlan::default(),
    ));
    let engine = Engine::create(store.clone(), &config(seed)).unwrap();
    let created = store.operations();
    let mut expect = Expect {
        candidates: Vec::new(),
    };
    workload(&mut Rng::new(seed), &engine, &mut expect);
    store.operations() - created
}

/// The workload of `seed`, crashed after its `point`th store operation. Returns whether
/// it reached that point.
fn crash_case(seed: u64, point: u64) -> bool {
    let mut rng = Rng::new(seed);
    let store = Arc::new(FaultStore::new(
        MemStore::new(PAGE_SIZE).unwrap(),
        FaultPlan::default(),
    ));
    let engine = Engine::create(store.clone(), &config(seed)).unwrap();
    store.set_plan(FaultPlan {
        fail_after: Some(store.operations() + point),
        ..FaultPlan::default()
    });
    let mut expect = Expect {
        candidates: vec![Model::new()],
    };
    workload(&mut rng, &engine, &mut expect);
    drop(engine);
    let crashed = store.injected() > 0;
    let mut rng = Rng::new(seed ^ 0x5EED_C2A5);
    let mut image = store.crash_image(rng.next_u64());

    if rng.below(3) == 0 {
        // Crash again, during recovery (or just after it).
        let store = Arc::new(FaultStore::new(
            MemStore::from_image(PAGE_SIZE, &image).unwrap(),
            FaultPlan {
                fail_after: Some(rng.below(10)),
                ..FaultPlan::default()
            },
        ));
        drop(Engine::open(store.clone(), &config(seed)));
        image = store.crash_image(rng.next_u64());
    }

    let engine = Engine::open(
        MemStore::from_image(PAGE_SIZE, &image).unwrap(),
        &config(seed),
    )
    .unwrap_or_else(|error| panic!("seed {seed}: recovery failed: {error}"));
    engine
        .check()
        .unwrap_or_else(|error| panic!("seed {seed}: recovered store: {error}"));
    let found = contents(&engine);
    if expect.position(&found).is_none() {
        panic!(
            "seed {seed}: recovered {} keys, matching none of the {} versions the crash \
             could leave",
            found.len(),
            expect.candidates.len()
        );
    }
    // The store takes new commits and keeps them.
    let mut writer = engine.begin_write().unwrap();
    writer.put(b"after-crash", b"yes").unwrap();
    writer.commit(Durability::Immediate).unwrap();
    engine
        .check()
        .unwrap_or_else(|error| panic!("seed {seed}: after a new commit: {error}"));
    crashed
}

/// A crash point spread uniformly over the workload's operations.
fn case_point(seed: u64) -> u64 {
    1 + Rng::new(!seed).below(workload_operations(seed).max(1))
}

#[test]
fn power_loss_at_many_points_leaves_a_committed_version() {
    if let Some(seed) = std::env::var("THUNDERHEAD_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
    {
        crash_case(seed, case_point(seed));
        return;
    }
    let cases: u64 = std::env::var("THUNDERHEAD_CRASH_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(1100);
    let crashed = (0..cases)
        .filter(|&seed| crash_case(seed, case_point(seed)))
        .count() as u64;
    // Every case crashes its own workload at its own point.
    assert!(
        crashed >= cases.min(1000),
        "only {crashed} of {cases} cases reached their crash point"
    );
}
