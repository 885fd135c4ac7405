//! `thunderhead`: the command-line tool over a Thunderhead database file. Keys and
//! values are arbitrary bytes, written in text with the escapes of [`escape`]. The
//! database's data lives in one tree, `main`.
//!
//! Exit statuses: 0 success, 1 key not found (`get`), 2 usage or input error, 3
//! database error (corruption, conflict, lock, a file that is not a database).
// Safe Rust only: no measurement has yet shown a gain worth an unsafe block (page
// views validate once, then index with bounds checks), and the forbid keeps it so.
#![forbid(unsafe_code)]

mod compact;
mod demo;
mod escape;
mod ops;
mod progress;

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use thunderhead_tx::{ChangeKind, Database, Options, Retention, Version};

use escape::{escape, unescape};

/// The tree the tool keeps its keys in.
const TREE: &[u8] = b"main";
/// Past revisions the tool keeps readable (for `--at @REV`, `diff` and `log`).
const RETAINED_REVISIONS: u64 = 1000;

#[derive(Parser)]
#[command(
    name = "thunderhead",
    version,
    about = "A versioned key-value store in one file"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Applies an op stream (TAB-separated: put K V, del K, delrange FROM TO, commit,
    /// abort, snapshot NAME) from FILE or standard input; creates DB if missing.
    Apply { db: PathBuf, file: Option<PathBuf> },
    /// Prints the value of KEY; exit status 1 if absent.
    Get {
        db: PathBuf,
        key: String,
        /// A snapshot name or @REV.
        #[arg(long)]
        at: Option<String>,
    },
    /// Prints KEY<TAB>VALUE lines in key order.
    Scan {
        db: PathBuf,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long)]
        reverse: bool,
    },
    /// Named snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Prints what changed from FROM to TO (each a snapshot name or @REV): +, - and ~ lines.
    Diff {
        db: PathBuf,
        from: String,
        to: String,
    },
    /// Lists the retained revisions with their time and number of changes.
    Log { db: PathBuf },
    /// Verifies every checksum and invariant of every retained version; exit status 3 if
    /// anything is wrong.
    Check { db: PathBuf },
    /// Prints file, page, tree and version statistics.
    Stat { db: PathBuf },
    /// Writes every entry as an escaped KEY<TAB>VALUE line.
    Dump {
        db: PathBuf,
        #[arg(long)]
        at: Option<String>,
    },
    /// Loads KEY<TAB>VALUE lines (a dump) from FILE or standard input, in one commit.
    Load { db: PathBuf, file: Option<PathBuf> },
    /// Rewrites the file to hold only the latest contents and the named snapshots
    /// (revision numbers start again; history kept only by retention is not copied).
    Compact { db: PathBuf },
    /// Builds a versioned index of the files under DIR (default /usr), changes it, and
    /// shows the diff, range queries and statistics, with timings.
    Demo {
        dir: Option<PathBuf>,
        /// The database file (default: thunderhead-demo.th in the current directory).
        #[arg(long)]
        db: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Names the latest commit.
    Create { db: PathBuf, name: String },
    /// Lists the snapshots: name, revision, time.
    List { db: PathBuf },
    /// Drops a snapshot.
    Drop { db: PathBuf, name: String },
}

/// How a command fails, and so with which exit status.
pub enum Failure {
    NotFound,
    Input(String),
    Database(String),
}

impl From<thunderhead_tx::Error> for Failure {
    fn from(error: thunderhead_tx::Error) -> Self {
        use thunderhead_tx::Error;
        match error {
            Error::SnapshotNotFound { .. }
            | Error::SnapshotExists { .. }
            | Error::InvalidSnapshotName { .. }
            | Error::RevisionPruned { .. }
            | Error::RevisionNotFound { .. }
            | Error::KeyTooLarge { .. }
            | Error::ValueTooLarge { .. }
            | Error::InvalidOptions(_) => Failure::Input(error.to_string()),
            other => Failure::Database(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Database(error.to_string())
    }
}

type Outcome = Result<(), Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::NotFound) => ExitCode::from(1),
        Err(Failure::Input(message)) => {
            eprintln!("thunderhead: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Database(message)) => {
            eprintln!("thunderhead: {message}");
            ExitCode::from(3)
        }
    }
}

pub(crate) fn options() -> Options {
    Options {
        retain_revisions: Retention::revisions(RETAINED_REVISIONS),
        ..Options::default()
    }
}

pub(crate) fn open(path: &Path) -> Result<Database, Failure> {
    if !path.exists() {
        return Err(Failure::Input(format!("{}: no such file", path.display())));
    }
    Ok(warn_rejected(Database::open(path, options())?))
}

fn open_or_create(path: &Path) -> Result<Database, Failure> {
    Ok(warn_rejected(Database::open_or_create(path, options())?))
}

/// Recovery opens the version before a newest one whose pages do not verify (a commit a
/// crash cut short, or damage after it was written): never silently.
fn warn_rejected(db: Database) -> Database {
    for rejected in db.engine().rejected_versions() {
        eprintln!("thunderhead: warning: recovery passed over {rejected}");
    }
    db
}

fn bytes(text: &str, what: &str) -> Result<Vec<u8>, Failure> {
    unescape(text).map_err(|error| Failure::Input(format!("{what}: {error}")))
}

/// `AT`: `@REV` or a snapshot name.
fn version(at: Option<&str>) -> Result<Version, Failure> {
    match at {
        None => Ok(Version::Latest),
        Some(at) => match at.strip_prefix('@') {
            Some(revision) => revision
                .parse()
                .map(Version::Revision)
                .map_err(|_| Failure::Input(format!("{at}: @ must be followed by a revision"))),
            None => Ok(Version::Snapshot(bytes(at, "snapshot name")?)),
        },
    }
}

fn read_at(db: &Database, at: Option<&str>) -> Result<thunderhead_tx::ReadTransaction, Failure> {
    Ok(match version(at)? {
        Version::Latest => db.begin_read(),
        Version::Revision(revision) => db.begin_read_at(revision)?,
        Version::Snapshot(name) => db.begin_read_at_snapshot(&name)?,
    })
}

fn seconds(time: SystemTime) -> String {
    let micros = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_micros());
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

fn input(file: Option<&Path>) -> Result<Box<dyn BufRead>, Failure> {
    Ok(match file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .map_err(|error| Failure::Input(format!("{}: {error}", path.display())))?,
        )),
        None => Box::new(std::io::stdin().lock()),
    })
}

fn run(command: Command) -> Outcome {
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match command {
        Command::Apply { db, file } => {
            let db = open_or_create(&db)?;
            ops::apply(&db, input(file.as_deref())?, &mut out)?;
        }
        Command::Get { db, key, at } => {
            let db = open(&db)?;
            let key = bytes(&key, "key")?;
            let read = read_at(&db, at.as_deref())?;
            let value = match read.open_tree(TREE) {
                Ok(tree) => tree.get(&key)?,
                Err(thunderhead_tx::Error::TreeNotFound { .. }) => None,
                Err(error) => return Err(error.into()),
            };
            match value {
                Some(value) => writeln!(out, "{}", escape(&value))?,
                None => return Err(Failure::NotFound),
            }
        }
        Command::Scan {
            db,
            from,
            to,
            at,
            limit,
            reverse,
        } => {
            let db = open(&db)?;
            let from = from.map(|from| bytes(&from, "--from")).transpose()?;
            let to = to.map(|to| bytes(&to, "--to")).transpose()?;
            let read = read_at(&db, at.as_deref())?;
            let tree = match read.open_tree(TREE) {
                Ok(tree) => tree,
                Err(thunderhead_tx::Error::TreeNotFound { .. }) => return Ok(()),
                Err(error) => return Err(error.into()),
            };
            use std::ops::Bound;
            let start = from.as_deref().map_or(Bound::Unbounded, Bound::Included);
            let end = to.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let range = tree.range::<[u8], _>((start, end));
            let entries: Box<dyn Iterator<Item = _>> = if reverse {
                Box::new(range.rev())
            } else {
                Box::new(range)
            };
            for entry in entries.take(limit.unwrap_or(usize::MAX)) {
                let (key, value) = entry?;
                writeln!(out, "{}\t{}", escape(&key), escape(&value))?;
            }
        }
        Command::Snapshot(SnapshotCommand::Create { db, name }) => {
            let db = open(&db)?;
            let name_bytes = bytes(&name, "snapshot name")?;
            let revision = db.snapshot(&name_bytes)?;
            writeln!(out, "snapshot {} {revision}", escape(&name_bytes))?;
        }
        Command::Snapshot(SnapshotCommand::List { db }) => {
            let db = open(&db)?;
            for snapshot in db.snapshots() {
                writeln!(
                    out,
                    "{}\t{}\t{}",
                    escape(&snapshot.name),
                    snapshot.revision,
                    seconds(snapshot.time)
                )?;
            }
        }
        Command::Snapshot(SnapshotCommand::Drop { db, name }) => {
            let db = open(&db)?;
            db.drop_snapshot(&bytes(&name, "snapshot name")?)?;
        }
        Command::Diff { db, from, to } => {
            let db = open(&db)?;
            let diff = db.diff_tree(version(Some(&from))?, version(Some(&to))?, TREE)?;
            for change in diff {
                let change = change?;
                let key = escape(&change.key);
                match change.kind {
                    ChangeKind::Added(new) => writeln!(out, "+\t{key}\t{}", escape(&new))?,
                    ChangeKind::Removed(old) => writeln!(out, "-\t{key}\t{}", escape(&old))?,
                    ChangeKind::Updated { old, new } => {
                        writeln!(out, "~\t{key}\t{}\t{}", escape(&old), escape(&new))?
                    }
                }
            }
        }
        Command::Log { db } => {
            let db = open(&db)?;
            let history = db.history()?;
            for (index, commit) in history.iter().enumerate() {
                let changes = match index.checked_sub(1) {
                    Some(previous) => db
                        .diff_tree(history[previous].revision, commit.revision, TREE)?
                        .try_fold(0u64, |count, change| change.map(|_| count + 1))?
                        .to_string(),
                    None => "-".to_string(),
                };
                writeln!(
                    out,
                    "{}\t{}\t{changes}",
                    commit.revision,
                    seconds(commit.time)
                )?;
            }
        }
        Command::Check { db } => {
            let db = open(&db)?;
            let report = db
                .check()
                .map_err(|error| Failure::Database(error.to_string()))?;
            if let Some(rejected) = db.engine().rejected_versions().first() {
                return Err(Failure::Database(format!(
                    "the newest version was damaged or cut short and was passed over \
                     ({rejected}); revision {} is intact",
                    report.revision
                )));
            }
            writeln!(
                out,
                "ok: revision {}, {} pages ({} live, {} free, {} pending), {} trees, {} past versions verified",
                report.revision,
                report.used_pages,
                report.live_pages,
                report.free_pages,
                report.pending_pages,
                report
                    .trees
                    .iter()
                    .filter(|(name, _)| !name.is_empty())
                    .count(),
                report.past_versions
            )?;
        }
        Command::Stat { db } => {
            let path = db.clone();
            let db = open(&db)?;
            let report = db.check()?;
            let page_size = db.engine().pager().limits().page_size_bytes;
            let file_bytes = std::fs::metadata(&path)?.len();
            writeln!(out, "file\t{} bytes", file_bytes)?;
            writeln!(out, "page size\t{page_size}")?;
            writeln!(
                out,
                "pages\t{} used, {} live, {} free, {} pending",
                report.used_pages, report.live_pages, report.free_pages, report.pending_pages
            )?;
            writeln!(out, "revision\t{}", report.revision)?;
            writeln!(
                out,
                "retained\t{} revisions from {}, {} snapshots",
                db.revision() - db.oldest_retained() + 1,
                db.oldest_retained(),
                db.snapshots().len()
            )?;
            // Raw bytes of the data, inline or off-tree, for the fill and the ratio of
            // file size to data (one pass over the latest version).
            let (mut raw_bytes, mut inline_bytes, mut values_off_tree) = (0u64, 0u64, 0u64);
            let mut entries = 0u64;
            let inline_max = db.engine().pager().limits().entry_inline_bytes_max;
            if let Ok(tree) = db.begin_read().open_tree(TREE) {
                for entry in tree.iter() {
                    let (key, value) = entry?;
                    let bytes = (key.len() + value.len()) as u64;
                    raw_bytes += bytes;
                    entries += 1;
                    if key.len() + value.len() > inline_max {
                        values_off_tree += 1;
                    } else {
                        inline_bytes += bytes;
                    }
                }
            }
            writeln!(
                out,
                "data\t{entries} entries, {raw_bytes} bytes of keys and values ({} values inline, {values_off_tree} off-tree); file / data {:.2}",
                entries - values_off_tree,
                file_bytes as f64 / raw_bytes.max(1) as f64
            )?;
            for (name, tree) in &report.trees {
                if name.is_empty() {
                    continue;
                }
                if name.as_slice() == TREE {
                    let fill =
                        inline_bytes as f64 / (tree.leaf_count.max(1) * page_size as u64) as f64;
                    writeln!(
                        out,
                        "leaf fill\t{:.0}% (inline keys and values over leaf pages)",
                        fill * 100.0
                    )?;
                }
                let entries_per_leaf = tree.leaf_entry_count as f64 / tree.leaf_count.max(1) as f64;
                writeln!(
                    out,
                    "tree {}\theight {}, {} leaves ({entries_per_leaf:.1} entries each), {} branches, {} entries in leaves, {} bytes pending in journals ({} segments), {} values off-tree",
                    escape(name),
                    tree.height,
                    tree.leaf_count,
                    tree.branch_count,
                    tree.leaf_entry_count,
                    tree.journal_pending_bytes,
                    tree.segment_count,
                    tree.overflow_value_count
                )?;
            }
        }
        Command::Dump { db, at } => {
            let db = open(&db)?;
            let read = read_at(&db, at.as_deref())?;
            if let Ok(tree) = read.open_tree(TREE) {
                let progress = progress::counter("entries dumped");
                for entry in tree.iter() {
                    let (key, value) = entry?;
                    writeln!(out, "{}\t{}", escape(&key), escape(&value))?;
                    progress.inc(1);
                }
                progress.finish_and_clear();
            }
        }
        Command::Compact { db } => {
            let (before, after) = compact::compact(&db)?;
            writeln!(out, "compacted {before} bytes to {after}")?;
        }
        Command::Demo { dir, db } => {
            drop(out);
            return demo::run(dir, db);
        }
        Command::Load { db, file } => {
            let db = open_or_create(&db)?;
            let revision = ops::load(&db, input(file.as_deref())?)?;
            writeln!(out, "committed {revision}")?;
        }
    }
    out.flush()?;
    Ok(())
}
