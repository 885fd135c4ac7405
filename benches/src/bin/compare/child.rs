//! One engine in a child process: the binary re-executes itself with the hidden
//! `--child ENGINE` argument, so each engine's peak RSS (`VmHWM`) is its own. The child
//! prints one tab-separated line per result on stdout, which the parent parses:
//!
//! * `row WORKLOAD SECONDS OPS WRITE_BYTES USER_BYTES FILE_BYTES WCHAR` (`-` where a field
//!   does not apply);
//! * `error WORKLOAD MESSAGE` (`-` for an error of the engine as a whole, e.g. opening);
//! * `rss BYTES`, the child's peak resident set at its end.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use thunderhead_benches::proc_status_bytes;

use crate::engines;
use crate::workloads::{self, Params, Workload};

/// One workload's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub workload: Workload,
    pub seconds: Option<f64>,
    pub ops: Option<u64>,
    /// Bytes the child had written to storage (`write_bytes`) during the workload.
    pub write_bytes: Option<u64>,
    /// Key and value bytes the workload wrote.
    pub user_bytes: Option<u64>,
    /// Bytes of the store's files at the end of the workload.
    pub file_bytes: Option<u64>,
    /// Bytes passed to write system calls (`wchar`) during the workload.
    pub wchar: Option<u64>,
}

impl Row {
    pub fn new(workload: Workload) -> Self {
        Self {
            workload,
            seconds: None,
            ops: None,
            write_bytes: None,
            user_bytes: None,
            file_bytes: None,
            wchar: None,
        }
    }

    /// Bytes written per user byte.
    pub fn write_amplification(&self) -> Option<f64> {
        match (self.write_bytes, self.user_bytes) {
            (Some(written), Some(user)) if user > 0 => Some(written as f64 / user as f64),
            _ => None,
        }
    }
}

/// One line of a child's output.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    Row(Row),
    Error {
        /// `None`: the engine as a whole failed (every row of it is an error).
        workload: Option<Workload>,
        message: String,
    },
    Rss(u64),
}

fn field<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn parse_field<T: std::str::FromStr>(text: &str) -> Result<Option<T>, String> {
    if text == "-" {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("bad field {text:?}"))
}

impl Line {
    pub fn format(&self) -> String {
        match self {
            Line::Row(row) => format!(
                "row\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                row.workload.name(),
                field(row.seconds.map(|s| format!("{s:.6}"))),
                field(row.ops),
                field(row.write_bytes),
                field(row.user_bytes),
                field(row.file_bytes),
                field(row.wchar),
            ),
            Line::Error { workload, message } => {
                let message: String = message
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                format!("error\t{}\t{message}", field(workload.map(Workload::name)))
            }
            Line::Rss(bytes) => format!("rss\t{bytes}"),
        }
    }

    pub fn parse(line: &str) -> Result<Self, String> {
        let fields: Vec<&str> = line.split('\t').collect();
        let workload =
            |name: &str| Workload::parse(name).ok_or_else(|| format!("unknown workload {name:?}"));
        match fields.as_slice() {
            [
                "row",
                name,
                seconds,
                ops,
                write_bytes,
                user_bytes,
                file_bytes,
                wchar,
            ] => Ok(Line::Row(Row {
                workload: workload(name)?,
                seconds: parse_field(seconds)?,
                ops: parse_field(ops)?,
                write_bytes: parse_field(write_bytes)?,
                user_bytes: parse_field(user_bytes)?,
                file_bytes: parse_field(file_bytes)?,
                wchar: parse_field(wchar)?,
            })),
            ["error", name, message] => Ok(Line::Error {
                workload: if *name == "-" {
                    None
                } else {
                    Some(workload(name)?)
                },
                message: message.to_string(),
            }),
            ["rss", bytes] => Ok(Line::Rss(
                bytes.parse().map_err(|_| format!("bad rss {bytes:?}"))?,
            )),
            _ => Err(format!("unrecognised line {line:?}")),
        }
    }
}

/// What the parent asks of one child.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub engine: String,
    pub params: Params,
    pub workloads: Vec<Workload>,
    /// The new, empty directory of the engine's store.
    pub dir: PathBuf,
}

impl Job {
    /// The arguments of the child process.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--child".to_string(),
            self.engine.clone(),
            "--rows".to_string(),
            self.params.rows.to_string(),
            "--workloads".to_string(),
            workload_list(&self.workloads),
            "--dir".to_string(),
            self.dir.display().to_string(),
        ];
        if self.params.quick {
            args.push("--quick".to_string());
        }
        args
    }
}

pub fn workload_list(workloads: &[Workload]) -> String {
    workloads
        .iter()
        .map(|w| w.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// The child's side: runs every workload of `job` and prints the result lines. Exits
/// non-zero when any of them failed.
pub fn child_main(job: &Job) -> ExitCode {
    let stdout = std::io::stdout();
    let mut failed = false;
    let mut emit = |line: Line| {
        match &line {
            Line::Row(row) => eprintln!(
                "  {} {}: {}",
                job.engine,
                row.workload.name(),
                progress(row)
            ),
            Line::Error { workload, message } => {
                failed = true;
                eprintln!(
                    "  {} {}: ERROR: {message}",
                    job.engine,
                    workload.map_or("engine", Workload::name)
                );
            }
            Line::Rss(_) => {}
        }
        let mut out = stdout.lock();
        let _ = writeln!(out, "{}", line.format());
        let _ = out.flush();
    };
    match engines::open(&job.engine, &job.dir) {
        Ok(mut engine) => {
            workloads::run(
                engine.as_mut(),
                &job.dir,
                &job.params,
                &job.workloads,
                &mut emit,
            );
            drop(engine);
        }
        Err(error) => emit(Line::Error {
            workload: None,
            message: format!("open: {error}"),
        }),
    }
    if let Some(peak) = proc_status_bytes("VmHWM") {
        emit(Line::Rss(peak));
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A row for the progress lines on stderr.
fn progress(row: &Row) -> String {
    let mut parts = Vec::new();
    if let Some(seconds) = row.seconds {
        parts.push(format!("{seconds:.3} s"));
    }
    if let Some(wa) = row.write_amplification() {
        parts.push(format!("write_bytes/user {wa:.2}"));
    }
    if let (Some(wchar), Some(user)) = (row.wchar, row.user_bytes)
        && user > 0
    {
        parts.push(format!("wchar/user {:.2}", wchar as f64 / user as f64));
    }
    if let Some(bytes) = row.file_bytes {
        parts.push(format!("files {:.1} MiB", bytes as f64 / (1024.0 * 1024.0)));
    }
    parts.join(", ")
}

/// What one child reported.
#[derive(Debug, Default)]
pub struct Outcome {
    pub lines: Vec<Line>,
    /// Why the child failed as a whole (it could not start, died, or printed garbage).
    pub failure: Option<String>,
}

/// The parent's side: runs `job` in a child process (its stderr passed through) and
/// collects its lines.
pub fn spawn(exe: &Path, job: &Job) -> Outcome {
    let output = Command::new(exe)
        .args(job.args())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output();
    let output = match output {
        Ok(output) => output,
        Err(error) => {
            return Outcome {
                lines: Vec::new(),
                failure: Some(format!("could not start the child: {error}")),
            };
        }
    };
    let mut outcome = Outcome::default();
    for text in String::from_utf8_lossy(&output.stdout).lines() {
        match Line::parse(text) {
            Ok(line) => outcome.lines.push(line),
            Err(error) => outcome.failure = Some(format!("child output: {error}")),
        }
    }
    let reported_error = outcome
        .lines
        .iter()
        .any(|line| matches!(line, Line::Error { .. }));
    if !output.status.success() && !reported_error && outcome.failure.is_none() {
        outcome.failure = Some(format!("child exited with {}", output.status));
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let lines = [
            Line::Row(Row {
                seconds: Some(1.25),
                ops: Some(1_000),
                write_bytes: Some(4_096),
                user_bytes: Some(174_000),
                file_bytes: Some(1 << 20),
                wchar: None,
                ..Row::new(Workload::BatchWrites)
            }),
            Line::Row(Row {
                file_bytes: Some(12_345),
                ..Row::new(Workload::FileSizeAfterLoad)
            }),
            Line::Error {
                workload: Some(Workload::RangeReads),
                message: "disk full".to_string(),
            },
            Line::Error {
                workload: None,
                message: "open: no such file".to_string(),
            },
            Line::Rss(123_456_789),
        ];
        for line in lines {
            assert_eq!(Line::parse(&line.format()), Ok(line));
        }
    }

    #[test]
    fn parses_the_documented_format() {
        let line = Line::parse("row\tbulk_load\t2.500000\t100\t3480\t17400\t-\t-").unwrap();
        let Line::Row(row) = line else {
            panic!("not a row: {line:?}")
        };
        assert_eq!(row.workload, Workload::BulkLoad);
        assert_eq!(row.seconds, Some(2.5));
        assert_eq!(row.file_bytes, None);
        assert!((row.write_amplification().unwrap() - 0.2).abs() < 1e-9);
        // Tabs and newlines of an error message cannot break the line format.
        let error = Line::Error {
            workload: Some(Workload::Removals),
            message: "a\tb\nc".into(),
        };
        assert_eq!(error.format(), "error\tremovals\ta b c");
        assert!(Line::parse("row\tbulk_load\t1").is_err());
        assert!(Line::parse("row\tno_such\t1\t1\t1\t1\t1\t1").is_err());
        assert!(Line::parse("rss\tlots").is_err());
    }

    #[test]
    fn job_arguments() {
        let job = Job {
            engine: "redb".into(),
            params: Params::new(1_000, true),
            workloads: vec![Workload::BulkLoad, Workload::FullScan],
            dir: PathBuf::from("/x/y"),
        };
        assert_eq!(
            job.args().join(" "),
            "--child redb --rows 1000 --workloads bulk_load,full_scan --dir /x/y --quick"
        );
    }
}
