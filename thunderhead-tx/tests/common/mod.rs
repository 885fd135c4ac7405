//! Helpers the fault-injecting test files share (`crash.rs`, `versions_crash.rs`,
//! `simulator.rs`, `fuzz_replay.rs`): a seed or count from the environment, the message
//! of a caught panic (so that a failing case can say how to replay itself), and a whole
//! database read into maps to compare with a model.

// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::any::Any;
use std::collections::BTreeMap;

use thunderhead_disk::PageStore;
use thunderhead_tx::{Error, ReadTransaction};

pub type Tree = BTreeMap<Vec<u8>, Vec<u8>>;
pub type Trees = BTreeMap<Vec<u8>, Tree>;

/// Every tree of `read` and its contents.
pub fn read_all<S: PageStore>(read: &ReadTransaction<S>) -> Result<Trees, Error> {
    let mut trees = Trees::new();
    for name in read.list_trees()? {
        let tree = read.open_tree(&name)?;
        let entries = tree
            .iter()
            .map(|entry| entry.map(|(key, value)| (key, value.to_vec())))
            .collect::<Result<Tree, Error>>()?;
        trees.insert(name, entries);
    }
    Ok(trees)
}

/// `name` from the environment as a number, if set and valid.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
}

/// The message a caught panic carried.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_string()
    }
}
