//! Thunderhead beside redb, LMDB (heed), fjall, sled and (with the `rocksdb` feature)
//! RocksDB: the same workloads on the same data, each engine in a child process of its
//! own, as one Markdown table with a ratio line per workload.
//!
//! ```text
//! cargo run --release -p thunderhead-benches --bin compare -- [--rows N] [--quick]
//!     [--runs R] [--engines a,b,..] [--workloads w1,w2,..] [--dir PATH]
//! ```
//!
//! * `--rows N`: rows loaded (default 1,000,000; 100,000 with `--quick`);
//! * `--quick`: a smoke run of under two minutes on two cores: 100,000 rows, one run,
//!   100 non-durable batches instead of 1,000 and overwrite churn over 10,000 keys
//!   instead of 100,000;
//! * `--runs R`: children per engine (default 3; 1 with `--quick`), each on a fresh
//!   directory; every cell is the median run's;
//! * `--engines`: default every engine built in; `--workloads`: default all, in the
//!   fixed order of `workloads.rs` (names as in the table);
//! * `--dir PATH`: where the stores go (default: the cargo target directory), a fresh
//!   directory per child, removed afterwards.
//!
//! Data: 24-byte random keys and 150-byte random values (redb's benchmark shape) from
//! one fixed seed, the same for every engine. Stdout has a header line, the table and
//! the ratio lines; progress and errors go to stderr. An engine error marks its cell
//! `error` and makes the exit status non-zero; it never stops the other engines.

mod child;
mod engines;
mod report;
mod workloads;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use child::{Job, Line, Outcome};
use report::{Cell, Report};
use workloads::{Params, Workload};

const USAGE: &str = "usage: compare [--rows N] [--quick] [--runs R] [--engines a,b,..] \
                     [--workloads w1,w2,..] [--dir PATH]";

#[derive(Debug, Default, PartialEq)]
struct Args {
    rows: Option<usize>,
    quick: bool,
    runs: Option<usize>,
    engines: Option<Vec<String>>,
    workloads: Option<Vec<Workload>>,
    dir: Option<PathBuf>,
    /// Hidden: run one engine as a child process.
    child: Option<String>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rows" => {
                let rows = value()?;
                parsed.rows = Some(rows.parse().map_err(|_| format!("bad --rows {rows}"))?);
            }
            "--quick" => parsed.quick = true,
            "--runs" => {
                let runs = value()?;
                parsed.runs = Some(runs.parse().map_err(|_| format!("bad --runs {runs}"))?);
            }
            "--engines" => {
                parsed.engines = Some(value()?.split(',').map(|s| s.trim().to_string()).collect());
            }
            "--workloads" => {
                let list = value()?;
                let mut workloads = list
                    .split(',')
                    .map(|name| {
                        Workload::parse(name.trim()).ok_or_else(|| {
                            let names: Vec<_> = Workload::ALL.iter().map(|w| w.name()).collect();
                            format!("unknown workload {name:?}; known: {}", names.join(","))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                workloads.sort();
                workloads.dedup();
                parsed.workloads = Some(workloads);
            }
            "--dir" => parsed.dir = Some(PathBuf::from(value()?)),
            "--child" => parsed.child = Some(value()?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            _ => return Err(format!("unknown argument {arg}\n{USAGE}")),
        }
    }
    if parsed.rows == Some(0) || parsed.runs == Some(0) {
        return Err("--rows and --runs must be at least 1".to_string());
    }
    Ok(parsed)
}

/// The file system type of `path` (`stat -f`), if it can be told.
fn fs_type(path: &Path) -> Option<String> {
    let output = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The default parent of the stores: the cargo target directory the binary runs from
/// (`target/release/compare` → `target`), else the current directory.
fn default_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("."))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let quick = args.quick;
    let rows = args.rows.unwrap_or(if quick { 100_000 } else { 1_000_000 });
    let params = Params::new(rows, quick);
    let workloads = args
        .workloads
        .clone()
        .unwrap_or_else(|| Workload::ALL.to_vec());

    if let Some(engine) = &args.child {
        let Some(dir) = args.dir.clone() else {
            eprintln!("--child needs --dir");
            return ExitCode::from(2);
        };
        return child::child_main(&Job {
            engine: engine.clone(),
            params,
            workloads,
            dir,
        });
    }
    match parent(&args, params, &workloads) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("compare: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs every engine's children, prints the report; `Ok(false)` when anything failed.
fn parent(args: &Args, params: Params, workloads: &[Workload]) -> Result<bool, String> {
    let runs = args.runs.unwrap_or(if params.quick { 1 } else { 3 });
    let engines: Vec<String> = match &args.engines {
        Some(list) => list.clone(),
        None => engines::NAMES.iter().map(|s| s.to_string()).collect(),
    };
    if let Some(unknown) = engines
        .iter()
        .find(|e| !engines::NAMES.contains(&e.as_str()))
    {
        return Err(format!(
            "unknown or not built-in engine {unknown:?}; built in: {}",
            engines::NAMES.join(",")
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let parent_dir = args.dir.clone().unwrap_or_else(default_dir);
    let base = parent_dir.join(format!("compare-{}", std::process::id()));
    std::fs::create_dir_all(&base).map_err(|e| format!("create {}: {e}", base.display()))?;
    let fs = fs_type(&base).unwrap_or_else(|| "unknown".to_string());
    if matches!(fs.as_str(), "tmpfs" | "ramfs") {
        eprintln!(
            "warning: {} is on {fs}: syncs cost nothing there; pass --dir on a disk",
            base.display()
        );
    }

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {cores} cores (available_parallelism); rows: {}; runs: {runs}{}; \
         engines: {}; stores under {} ({fs})",
        workloads::thousands(params.rows as f64),
        if params.quick { " (quick)" } else { "" },
        engines.join(", "),
        base.display()
    );

    let started = Instant::now();
    let mut outcomes: Vec<Vec<Outcome>> = engines.iter().map(|_| Vec::new()).collect();
    for run in 1..=runs {
        for (engine, runs_of_engine) in engines.iter().zip(&mut outcomes) {
            let dir = base.join(format!("{engine}-{run}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
            eprintln!("run {run}/{runs}: {engine} in {}", dir.display());
            let child_started = Instant::now();
            let outcome = child::spawn(
                &exe,
                &Job {
                    engine: engine.clone(),
                    params,
                    workloads: workloads.to_vec(),
                    dir: dir.clone(),
                },
            );
            if let Some(failure) = &outcome.failure {
                eprintln!("run {run}/{runs}: {engine}: ERROR: {failure}");
            }
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                eprintln!("warning: could not remove {}: {error}", dir.display());
            }
            eprintln!(
                "run {run}/{runs}: {engine} done in {:.1} s",
                child_started.elapsed().as_secs_f64()
            );
            runs_of_engine.push(outcome);
        }
    }
    let _ = std::fs::remove_dir(&base);

    let report = Report {
        params,
        workloads: workloads.to_vec(),
        columns: engines
            .iter()
            .zip(&outcomes)
            .map(|(engine, runs)| report::column(engine, workloads, runs))
            .collect(),
    };
    println!();
    print!("{}", report.table());
    println!();
    for line in report.ratio_lines() {
        println!("{line}");
    }
    println!();
    print!("{}", report.wchar_table());
    println!();
    println!(
        "Cells: the median of {runs} run(s) (by time; by size for file sizes): wall time · \
         operations per second · for writes `wa`, bytes the child sent to storage \
         (write_bytes of /proc/self/io, counted per dirtied page-cache page, so small \
         writes count whole pages, and background flushes or compactions count in the row \
         they overlap, and pages rewritten while still dirty count once) over key+value \
         bytes written (key bytes for removals); the wchar table above counts bytes passed \
         to write calls instead. redb's Durability::None commits write nothing until the \
         next durable commit, which then writes their pages. File sizes are the lengths \
         of the store's files. Peak RSS includes the child's 24 bytes per loaded key that \
         the reads use."
    );

    // Errors once more, together, after the table.
    let mut ok = true;
    for (engine, runs) in engines.iter().zip(&outcomes) {
        for outcome in runs {
            if let Some(failure) = &outcome.failure {
                ok = false;
                eprintln!("error: {engine}: {failure}");
            }
            for line in &outcome.lines {
                if let Line::Error { workload, message } = line {
                    ok = false;
                    eprintln!(
                        "error: {engine} {}: {message}",
                        workload.map_or("(engine)", Workload::name)
                    );
                }
            }
        }
    }
    for column in &report.columns {
        if column.peak_rss.is_none() || column.cells.contains(&Cell::Error) {
            ok = false;
        }
    }
    eprintln!(
        "compare: finished in {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if ok { "" } else { " with errors" }
    );
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Result<Args, String> {
        parse_args(text.split_whitespace().map(String::from))
    }

    #[test]
    fn arguments() {
        let parsed =
            args("--quick --runs 2 --engines redb,lmdb --workloads full_scan,bulk_load").unwrap();
        assert!(parsed.quick);
        assert_eq!(parsed.runs, Some(2));
        assert_eq!(
            parsed.engines,
            Some(vec!["redb".to_string(), "lmdb".to_string()])
        );
        // Workloads run in their fixed order whatever the order given.
        assert_eq!(
            parsed.workloads,
            Some(vec![Workload::BulkLoad, Workload::FullScan])
        );
        assert!(args("--workloads bulk_load,nonsense").is_err());
        assert!(args("--rows").is_err());
        assert!(args("--rows 0").is_err());
        assert!(args("--frobnicate").is_err());
        let child = args("--child sled --rows 10 --dir /d").unwrap();
        assert_eq!(child.child.as_deref(), Some("sled"));
        assert_eq!(child.rows, Some(10));
    }
}
