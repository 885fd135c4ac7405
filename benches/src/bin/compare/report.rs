//! The medians over runs, the Markdown table (workloads × engines) and the ratio lines.

use crate::child::{Line, Outcome, Row};
use crate::engines::SUBJECT;
use crate::workloads::{Kind, Params, Workload};

/// One cell of the table.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// The median run's result.
    Row(Row),
    /// Failed in at least one run (the error went to stderr).
    Error,
    /// The engine lacks the feature (Thunderhead-only rows at the peers).
    NotApplicable,
}

/// One engine's column.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub engine: String,
    /// One cell per workload of the report, in its order.
    pub cells: Vec<Cell>,
    /// Median peak RSS in bytes; `None` when a run did not report it.
    pub peak_rss: Option<u64>,
}

/// The whole comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub params: Params,
    pub workloads: Vec<Workload>,
    pub columns: Vec<Column>,
}

/// The element of lower-middle rank by `key`.
fn median_by<T: Clone>(mut items: Vec<T>, key: impl Fn(&T) -> f64) -> Option<T> {
    if items.is_empty() {
        return None;
    }
    items.sort_by(|a, b| key(a).total_cmp(&key(b)));
    Some(items.swap_remove((items.len() - 1) / 2))
}

/// One engine's column from the outcomes of its runs: per workload, the row of the run of
/// median time (median file size for size rows).
pub fn column(engine: &str, workloads: &[Workload], runs: &[Outcome]) -> Column {
    let whole_failed = runs.iter().any(|run| {
        run.failure.is_some()
            || run
                .lines
                .iter()
                .any(|line| matches!(line, Line::Error { workload: None, .. }))
    });
    let cells = workloads
        .iter()
        .map(|&workload| {
            if workload.subject_only() && engine != SUBJECT {
                return Cell::NotApplicable;
            }
            let failed = runs.iter().any(|run| {
                run.lines.iter().any(
                    |line| matches!(line, Line::Error { workload: Some(w), .. } if *w == workload),
                )
            });
            let rows: Vec<Row> = runs
                .iter()
                .filter_map(|run| {
                    run.lines.iter().find_map(|line| match line {
                        Line::Row(row) if row.workload == workload => Some(row.clone()),
                        _ => None,
                    })
                })
                .collect();
            if whole_failed || failed || rows.len() != runs.len() {
                return Cell::Error;
            }
            let key = |row: &Row| match workload.kind() {
                Kind::Size => row.file_bytes.unwrap_or(0) as f64,
                _ => row.seconds.unwrap_or(0.0),
            };
            median_by(rows, key).map_or(Cell::Error, Cell::Row)
        })
        .collect();
    let rss: Vec<u64> = runs
        .iter()
        .filter_map(|run| {
            run.lines.iter().find_map(|line| match line {
                Line::Rss(bytes) => Some(*bytes),
                _ => None,
            })
        })
        .collect();
    let peak_rss = if rss.len() == runs.len() {
        median_by(rss, |&bytes| bytes as f64)
    } else {
        None
    };
    Column {
        engine: engine.to_string(),
        cells,
        peak_rss,
    }
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub fn duration(seconds: f64) -> String {
    if seconds < 0.001 {
        format!("{:.1} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

pub fn rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.2}M ops/s", per_second / 1e6)
    } else if per_second >= 1e4 {
        format!("{:.0}k ops/s", per_second / 1e3)
    } else if per_second >= 1e3 {
        format!("{:.1}k ops/s", per_second / 1e3)
    } else if per_second >= 10.0 {
        format!("{per_second:.0} ops/s")
    } else {
        format!("{per_second:.2} ops/s")
    }
}

/// A cell's text: time, rate and (for writes) write amplification; a size in MiB.
pub fn cell_text(cell: &Cell) -> String {
    let row = match cell {
        Cell::Row(row) => row,
        Cell::Error => return "error".to_string(),
        Cell::NotApplicable => return "n/a".to_string(),
    };
    if row.workload.kind() == Kind::Size {
        return row.file_bytes.map_or_else(|| "error".to_string(), mib);
    }
    let mut parts = Vec::new();
    if let Some(seconds) = row.seconds {
        parts.push(duration(seconds));
        if let Some(ops) = row.ops
            && seconds > 0.0
        {
            parts.push(rate(ops as f64 / seconds));
        }
    }
    if row.workload.kind() == Kind::Write
        && let Some(wa) = row.write_amplification()
    {
        parts.push(format!("wa {wa:.1}"));
    }
    if row.workload == Workload::OverwriteChurn
        && let Some(bytes) = row.file_bytes
    {
        parts.push(format!("file {}", mib(bytes)));
    }
    parts.join(" · ")
}

impl Report {
    /// The Markdown table: one row per workload, one column per engine, and the peak
    /// RSS row last.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let names: Vec<&str> = self.columns.iter().map(|c| c.engine.as_str()).collect();
        out.push_str(&format!("| workload | {} |\n", names.join(" | ")));
        out.push_str(&format!("|---|{}\n", "--:|".repeat(names.len())));
        for (index, &workload) in self.workloads.iter().enumerate() {
            let cells: Vec<String> = self
                .columns
                .iter()
                .map(|column| cell_text(&column.cells[index]))
                .collect();
            out.push_str(&format!(
                "| {} | {} |\n",
                self.params.label(workload),
                cells.join(" | ")
            ));
        }
        let rss: Vec<String> = self
            .columns
            .iter()
            .map(|column| column.peak_rss.map_or_else(|| "error".to_string(), mib))
            .collect();
        out.push_str(&format!(
            "| peak_rss (VmHWM of the child) | {} |\n",
            rss.join(" | ")
        ));
        out
    }

    /// A second view of write amplification for the write rows: bytes passed to write
    /// system calls (`wchar` of /proc/self/io) over user bytes. Unlike `write_bytes` it
    /// counts rewrites of pages still dirty in the page cache, and partial pages at their
    /// size; it misses writes through a memory map (none of these engines writes so).
    pub fn wchar_table(&self) -> String {
        let mut out = String::new();
        let names: Vec<&str> = self.columns.iter().map(|c| c.engine.as_str()).collect();
        out.push_str(&format!("| wchar / user byte | {} |\n", names.join(" | ")));
        out.push_str(&format!("|---|{}\n", "--:|".repeat(names.len())));
        for (index, &workload) in self.workloads.iter().enumerate() {
            if workload.kind() != Kind::Write {
                continue;
            }
            let cells: Vec<String> = self
                .columns
                .iter()
                .map(|column| match &column.cells[index] {
                    Cell::Row(row) => match (row.wchar, row.user_bytes) {
                        (Some(wchar), Some(user)) if user > 0 => {
                            format!("{:.1}", wchar as f64 / user as f64)
                        }
                        _ => "–".to_string(),
                    },
                    cell => cell_text(cell),
                })
                .collect();
            out.push_str(&format!(
                "| {} | {} |\n",
                workload.name(),
                cells.join(" | ")
            ));
        }
        out
    }

    /// For every workload that Thunderhead and at least one peer ran:
    /// `ratio thunderhead/BEST_PEER WORKLOAD: X.XX`, Thunderhead's time over the fastest
    /// peer's (file size over the smallest peer's for size rows).
    pub fn ratio_lines(&self) -> Vec<String> {
        let Some(subject) = self.columns.iter().position(|c| c.engine == SUBJECT) else {
            return Vec::new();
        };
        let metric = |cell: &Cell, kind: Kind| match cell {
            Cell::Row(row) => match kind {
                Kind::Size => row.file_bytes.map(|bytes| bytes as f64),
                _ => row.seconds,
            },
            _ => None,
        };
        let mut lines = Vec::new();
        for (index, &workload) in self.workloads.iter().enumerate() {
            let kind = workload.kind();
            let Some(ours) = metric(&self.columns[subject].cells[index], kind) else {
                continue;
            };
            let best = self
                .columns
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != subject)
                .filter_map(|(_, column)| {
                    metric(&column.cells[index], kind).map(|m| (m, column.engine.as_str()))
                })
                .min_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((theirs, peer)) = best
                && theirs > 0.0
            {
                lines.push(format!(
                    "ratio {SUBJECT}/{peer} {}: {:.2}",
                    workload.name(),
                    ours / theirs
                ));
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timed(workload: Workload, seconds: f64, ops: u64) -> Row {
        Row {
            seconds: Some(seconds),
            ops: Some(ops),
            ..Row::new(workload)
        }
    }

    fn outcome(rows: Vec<Row>, rss: u64) -> Outcome {
        let mut lines: Vec<Line> = rows.into_iter().map(Line::Row).collect();
        lines.push(Line::Rss(rss));
        Outcome {
            lines,
            failure: None,
        }
    }

    #[test]
    fn medians_table_and_ratios() {
        let workloads = vec![
            Workload::BulkLoad,
            Workload::FileSizeAfterLoad,
            Workload::RandomReads,
            Workload::Diff1000,
        ];
        let load = |seconds| Row {
            write_bytes: Some(3_000),
            user_bytes: Some(1_000),
            ..timed(Workload::BulkLoad, seconds, 1_000)
        };
        let size = |bytes| Row {
            file_bytes: Some(bytes),
            ..Row::new(Workload::FileSizeAfterLoad)
        };
        // Thunderhead: three runs, medians 2 s and 2 MiB.
        let ours = column(
            "thunderhead",
            &workloads,
            &[
                outcome(
                    vec![
                        load(3.0),
                        size(3 << 20),
                        timed(Workload::RandomReads, 0.5, 1_000),
                        timed(Workload::Diff1000, 0.0001, 1),
                    ],
                    30 << 20,
                ),
                outcome(
                    vec![
                        load(1.0),
                        size(1 << 20),
                        timed(Workload::RandomReads, 0.5, 1_000),
                        timed(Workload::Diff1000, 0.0001, 1),
                    ],
                    10 << 20,
                ),
                outcome(
                    vec![
                        load(2.0),
                        size(2 << 20),
                        timed(Workload::RandomReads, 0.5, 1_000),
                        timed(Workload::Diff1000, 0.0001, 1),
                    ],
                    20 << 20,
                ),
            ],
        );
        assert_eq!(ours.cells[0], Cell::Row(load(2.0)));
        assert_eq!(ours.cells[1], Cell::Row(size(2 << 20)));
        assert_eq!(ours.peak_rss, Some(20 << 20));
        let fast = column(
            "fjall",
            &workloads,
            &[outcome(
                vec![
                    load(1.0),
                    size(4 << 20),
                    timed(Workload::RandomReads, 0.25, 1_000),
                ],
                1 << 20,
            )],
        );
        // A peer whose random reads failed.
        let mut failing = outcome(vec![load(4.0), size(1 << 20)], 1 << 20);
        failing.lines.push(Line::Error {
            workload: Some(Workload::RandomReads),
            message: "boom".into(),
        });
        let slow = column("redb", &workloads, &[failing]);
        assert_eq!(slow.cells[2], Cell::Error);
        assert_eq!(slow.cells[3], Cell::NotApplicable);

        let report = Report {
            params: Params::new(1_000, true),
            workloads,
            columns: vec![ours, fast, slow],
        };
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "| workload | thunderhead | fjall | redb |");
        assert_eq!(lines[1], "|---|--:|--:|--:|");
        assert_eq!(
            lines[2],
            "| bulk_load (1,000 rows, 1 txn) | 2.00 s · 500 ops/s · wa 3.0 \
             | 1.00 s · 1.0k ops/s · wa 3.0 | 4.00 s · 250 ops/s · wa 3.0 |"
        );
        assert_eq!(
            lines[3],
            "| file_size_after_load (MiB) | 2.0 MiB | 4.0 MiB | 1.0 MiB |"
        );
        assert_eq!(
            lines[4],
            "| random_reads (1,000 gets, 1 thread) | 500.0 ms · 2.0k ops/s \
             | 250.0 ms · 4.0k ops/s | error |"
        );
        assert_eq!(
            lines[5],
            "| diff_1000 (1,000 updates) | 100.0 µs · 10k ops/s | n/a | n/a |"
        );
        assert_eq!(
            lines[6],
            "| peak_rss (VmHWM of the child) | 20.0 MiB | 1.0 MiB | 1.0 MiB |"
        );
        assert_eq!(
            report.wchar_table(),
            "| wchar / user byte | thunderhead | fjall | redb |\n|---|--:|--:|--:|\n\
             | bulk_load | – | – | – |\n"
        );
        assert_eq!(
            report.ratio_lines(),
            vec![
                "ratio thunderhead/fjall bulk_load: 2.00",
                "ratio thunderhead/redb file_size_after_load: 2.00",
                "ratio thunderhead/fjall random_reads: 2.00",
            ]
        );
    }

    #[test]
    fn a_dead_child_makes_every_cell_an_error() {
        let dead = Outcome {
            lines: vec![],
            failure: Some("child exited with signal 9".into()),
        };
        let column = column(
            "lmdb",
            &[Workload::BulkLoad, Workload::SnapshotCreate],
            &[dead],
        );
        assert_eq!(column.cells, vec![Cell::Error, Cell::NotApplicable]);
        assert_eq!(column.peak_rss, None);
        assert_eq!(duration(12.345), "12.35 s");
        assert_eq!(rate(2_500_000.0), "2.50M ops/s");
        assert_eq!(rate(3.0), "3.00 ops/s");
    }
}
