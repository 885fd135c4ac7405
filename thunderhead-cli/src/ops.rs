//! Op streams (`apply`) and dumps (`load`): one op per line, fields separated by one
//! TAB, keys and values escaped. Ops accumulate in one write transaction; `commit`
//! makes it durable and says so, and a malformed line discards what is pending.

use std::io::{BufRead, Write};

use thunderhead_tx::{Database, WriteTransaction};

use crate::escape::{escape, unescape};
use crate::{Failure, TREE};

/// One parsed line.
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    DeleteRange(Vec<u8>, Vec<u8>),
    Commit,
    Abort,
    Snapshot(Vec<u8>),
}

fn parse(line: &str, number: usize) -> Result<Op, Failure> {
    let bad = |reason: String| Failure::Input(format!("line {number}: {reason}"));
    let fields: Vec<&str> = line.split('\t').collect();
    let field = |index: usize, what: &str| -> Result<Vec<u8>, Failure> {
        let text = fields
            .get(index)
            .ok_or_else(|| bad(format!("{} needs {what}", fields[0])))?;
        unescape(text).map_err(|error| bad(format!("{what}: {error}")))
    };
    let arity = |count: usize| -> Result<(), Failure> {
        if fields.len() == count {
            Ok(())
        } else {
            Err(bad(format!(
                "{} takes {} field(s), found {}",
                fields[0],
                count - 1,
                fields.len() - 1
            )))
        }
    };
    let op = match fields[0] {
        "put" => {
            arity(3)?;
            Op::Put(field(1, "a key")?, field(2, "a value")?)
        }
        "del" => {
            arity(2)?;
            Op::Delete(field(1, "a key")?)
        }
        "delrange" => {
            arity(3)?;
            Op::DeleteRange(field(1, "a start key")?, field(2, "an end key")?)
        }
        "commit" => {
            arity(1)?;
            Op::Commit
        }
        "abort" => {
            arity(1)?;
            Op::Abort
        }
        "snapshot" => {
            arity(2)?;
            Op::Snapshot(field(1, "a name")?)
        }
        other => return Err(bad(format!("unknown op {:?}", escape(other.as_bytes())))),
    };
    Ok(op)
}

fn write_op(txn: &WriteTransaction, op: &Op) -> Result<(), Failure> {
    let tree = txn.open_tree(TREE)?;
    match op {
        Op::Put(key, value) => tree.insert(key, value)?,
        Op::Delete(key) => {
            tree.remove(key)?;
        }
        Op::DeleteRange(from, to) => tree.remove_range(from.as_slice()..to.as_slice())?,
        _ => unreachable!("only writes reach the transaction"),
    }
    Ok(())
}

/// Runs an op stream against `db`, printing `committed REV` and `snapshot NAME REV` as
/// each takes effect (flushed, so a reader of the output sees what is durable).
pub fn apply(db: &Database, input: Box<dyn BufRead>, out: &mut impl Write) -> Result<(), Failure> {
    let mut pending: Option<WriteTransaction> = None;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|error| Failure::Input(format!("line {number}: {error}")))?;
        // A malformed line discards the pending transaction (dropping it aborts).
        let op = parse(&line, number)?;
        match op {
            Op::Commit => {
                if let Some(txn) = pending.take() {
                    let revision = txn.commit()?;
                    writeln!(out, "committed {revision}")?;
                    out.flush()?;
                }
            }
            Op::Abort => drop(pending.take()),
            Op::Snapshot(name) => {
                let revision = db.snapshot(&name)?;
                writeln!(out, "snapshot {} {revision}", escape(&name))?;
                out.flush()?;
            }
            write => {
                if pending.is_none() {
                    pending = Some(db.begin_write()?);
                }
                write_op(pending.as_ref().expect("just begun"), &write)?;
            }
        }
    }
    if let Some(txn) = pending.take() {
        let revision = txn.commit()?;
        writeln!(out, "committed {revision}")?;
        out.flush()?;
    }
    Ok(())
}

/// Loads a dump (`KEY<TAB>VALUE` lines) in one transaction; returns its revision.
pub fn load(db: &Database, input: Box<dyn BufRead>) -> Result<u64, Failure> {
    let txn = db.begin_write()?;
    {
        let tree = txn.open_tree(TREE)?;
        let progress = crate::progress::counter("entries loaded");
        for (index, line) in input.lines().enumerate() {
            let number = index + 1;
            let bad = |reason: String| Failure::Input(format!("line {number}: {reason}"));
            let line = line.map_err(|error| bad(error.to_string()))?;
            let Some((key, value)) = line.split_once('\t') else {
                return Err(bad("a dump line is KEY<TAB>VALUE".into()));
            };
            let key = unescape(key).map_err(|error| bad(format!("key: {error}")))?;
            let value = unescape(value).map_err(|error| bad(format!("value: {error}")))?;
            tree.insert(&key, &value)?;
            progress.inc(1);
        }
        progress.finish_and_clear();
    }
    Ok(txn.commit()?)
}
