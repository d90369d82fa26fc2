//! Dom0's benchmark report: parsing its `bench:` lines and laying them out as a table.
//!
//! Dom0's `bench` command prints one line per benchmark and a closing line:
//!
//! ```text
//! bench: syscall_floor median=412 min=380 iterations=20000
//! bench: null_hypercall median=530 min=498 iterations=20000
//! bench: done
//! ```
//!
//! Cycles are TSC cycles per operation. The `syscall_floor` row (a bare `syscall`/`sysretq`
//! round trip in the same boot) is the yardstick the other rows are compared with.

use std::fmt::Write as _;

/// The benchmark every other one is compared with, when it was measured.
pub const BASELINE: &str = "syscall_floor";

/// One benchmark's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchResult {
    /// The benchmark's name, such as `null_hypercall`.
    pub name: String,
    /// Median TSC cycles per operation.
    pub median: u64,
    /// Smallest TSC cycles per operation seen.
    pub min: u64,
    /// How many operations were timed.
    pub iterations: u64,
    /// The row measuring the native (ring-0) operation this one replaces,
    /// from a `native=NAME` field, for the "vs native" column.
    pub native: Option<String>,
}

/// A line of Dom0's benchmark report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BenchLine {
    /// A result line.
    Result(BenchResult),
    /// `bench: done`: the report is complete.
    Done,
    /// A line that starts with `bench:` but is neither of the above (reported as it is).
    Other(String),
}

/// Parses one line of serial output; `None` when it is not part of the benchmark report.
///
/// Leading text before `bench:` (such as a `(d0)` prefix) and trailing `\r` are tolerated, but
/// `bench:` must be a word of its own: a guest's `grant-bench: done` is not the report's end.
pub fn parse_bench_line(line: &str) -> Option<BenchLine> {
    let line = line.trim_end_matches(['\r', '\n']);
    let start = line
        .match_indices("bench:")
        .map(|(index, _)| index)
        .find(|&index| {
            line[..index]
                .chars()
                .next_back()
                .is_none_or(|before| before.is_whitespace() || before == ')')
        })?;
    let rest = line[start + "bench:".len()..].trim();
    if rest == "done" {
        return Some(BenchLine::Done);
    }
    Some(parse_result(rest).map_or_else(|| BenchLine::Other(rest.to_string()), BenchLine::Result))
}

/// Parses `<name> median=<n> min=<n> iterations=<n>` (the fields in any order).
fn parse_result(text: &str) -> Option<BenchResult> {
    let mut words = text.split_whitespace();
    let name = words.next()?;
    if name.contains('=') {
        return None;
    }
    let (mut median, mut min, mut iterations, mut native) = (None, None, None, None);
    for word in words {
        let (key, value) = word.split_once('=')?;
        if key == "native" {
            native = Some(value.to_string());
            continue;
        }
        let value: u64 = value.parse().ok()?;
        match key {
            "median" => median = Some(value),
            "min" => min = Some(value),
            "iterations" => iterations = Some(value),
            _ => {}
        }
    }
    Some(BenchResult {
        name: name.to_string(),
        median: median?,
        min: min?,
        iterations: iterations?,
        native,
    })
}

/// Merges rows that share a name (one sample each, say, from several
/// guests): the median of their medians, the least minimum, the summed
/// iterations. Rows keep the order of their first appearance.
pub fn merge_samples(results: Vec<BenchResult>) -> Vec<BenchResult> {
    let mut merged: Vec<(BenchResult, Vec<u64>)> = Vec::new();
    for result in results {
        match merged.iter_mut().find(|(row, _)| row.name == result.name) {
            Some((row, medians)) => {
                medians.push(result.median);
                row.min = row.min.min(result.min);
                row.iterations += result.iterations;
            }
            None => {
                let median = result.median;
                merged.push((result, vec![median]));
            }
        }
    }
    merged
        .into_iter()
        .map(|(mut row, mut medians)| {
            medians.sort_unstable();
            row.median = medians[medians.len() / 2];
            row
        })
        .collect()
}

/// Each result's median divided by the [`BASELINE`] median, when the baseline was measured.
pub fn ratio_to_baseline(results: &[BenchResult], result: &BenchResult) -> Option<f64> {
    let baseline = results.iter().find(|row| row.name == BASELINE)?;
    (baseline.median > 0).then(|| result.median as f64 / baseline.median as f64)
}

/// This result's median divided by the median of the native operation it
/// names, when that row exists.
pub fn ratio_to_native(results: &[BenchResult], result: &BenchResult) -> Option<f64> {
    let name = result.native.as_deref()?;
    let native = results.iter().find(|row| row.name == name)?;
    (native.median > 0).then(|| result.median as f64 / native.median as f64)
}

const COLUMNS: usize = 6;

/// The cells of the table: a header row, then one row per result.
fn table_rows(results: &[BenchResult]) -> Vec<[String; COLUMNS]> {
    let mut rows = vec![[
        "benchmark".to_string(),
        "median (cycles)".to_string(),
        "min (cycles)".to_string(),
        "iterations".to_string(),
        format!("median / {BASELINE}"),
        "median / native".to_string(),
    ]];
    for result in results {
        rows.push([
            result.name.clone(),
            result.median.to_string(),
            result.min.to_string(),
            result.iterations.to_string(),
            ratio_to_baseline(results, result)
                .map_or_else(|| "-".to_string(), |r| format!("{r:.2}")),
            ratio_to_native(results, result).map_or_else(
                || "-".to_string(),
                |r| format!("{r:.2} ({})", result.native.as_deref().unwrap_or("")),
            ),
        ]);
    }
    rows
}

/// The results as an aligned plain-text table for the terminal.
pub fn text_table(results: &[BenchResult]) -> String {
    let rows = table_rows(results);
    let widths: Vec<usize> = (0..COLUMNS)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in &rows {
        let mut line = format!("{:<width$}", row[0], width = widths[0]);
        for column in 1..COLUMNS {
            let _ = write!(line, "  {:>width$}", row[column], width = widths[column]);
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// The results as a Markdown table (numbers right-aligned).
pub fn markdown_table(results: &[BenchResult]) -> String {
    let rows = table_rows(results);
    let mut text = format!("| {} |\n", rows[0].join(" | "));
    text.push_str("| :--- | ---: | ---: | ---: | ---: | ---: |\n");
    for row in &rows[1..] {
        let _ = writeln!(text, "| {} |", row.join(" | "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, median: u64) -> BenchResult {
        BenchResult {
            name: name.to_string(),
            median,
            min: median - 10,
            iterations: 20000,
            native: None,
        }
    }

    #[test]
    fn parses_result_done_and_other_lines() {
        assert_eq!(
            parse_bench_line("bench: null_hypercall median=530 min=498 iterations=20000\r"),
            Some(BenchLine::Result(BenchResult {
                name: "null_hypercall".to_string(),
                median: 530,
                min: 498,
                iterations: 20000,
                native: None
            }))
        );
        assert_eq!(parse_bench_line("(d0) bench: done"), Some(BenchLine::Done));
        assert_eq!(
            parse_bench_line("bench: starting 5 benchmarks"),
            Some(BenchLine::Other("starting 5 benchmarks".to_string()))
        );
        assert_eq!(
            parse_bench_line("bench: x median=abc min=1 iterations=2"),
            Some(BenchLine::Other(
                "x median=abc min=1 iterations=2".to_string()
            ))
        );
        assert_eq!(parse_bench_line("(XEN) hello"), None);
    }

    #[test]
    fn a_guest_workload_named_bench_does_not_end_the_report() {
        // `grant-bench: done` once ended the report early, and every
        // benchmark after the grant guest went unread.
        assert_eq!(parse_bench_line("(d1) grant-bench: done"), None);
        assert_eq!(parse_bench_line("store-bench: done\r"), None);
        assert_eq!(parse_bench_line("(d1)bench: done"), Some(BenchLine::Done));
    }

    #[test]
    fn fields_may_come_in_any_order_but_all_are_needed() {
        let line = parse_bench_line("bench: a iterations=3 min=1 median=2");
        assert_eq!(
            line,
            Some(BenchLine::Result(BenchResult {
                name: "a".to_string(),
                median: 2,
                min: 1,
                iterations: 3,
                native: None
            }))
        );
        assert!(matches!(
            parse_bench_line("bench: a median=2 min=1"),
            Some(BenchLine::Other(_))
        ));
    }

    #[test]
    fn samples_with_one_name_merge() {
        let rows = vec![
            result("a", 30),
            result("b", 15),
            result("a", 10),
            result("a", 20),
        ];
        let merged = merge_samples(rows);
        assert_eq!(merged.len(), 2);
        assert_eq!(
            (merged[0].name.as_str(), merged[0].median, merged[0].min),
            ("a", 20, 0)
        );
        assert_eq!(merged[0].iterations, 60000);
    }

    #[test]
    fn native_rows_give_a_second_ratio() {
        let line = parse_bench_line(
            "bench: update_va_mapping median=900 min=800 iterations=5 native=native_pte",
        );
        let Some(BenchLine::Result(row)) = line else {
            panic!("{line:?}")
        };
        assert_eq!(row.native.as_deref(), Some("native_pte"));
        let results = vec![result("native_pte", 300), row];
        assert_eq!(ratio_to_native(&results, &results[1]), Some(3.0));
        assert!(text_table(&results).contains("3.00 (native_pte)"));
    }

    #[test]
    fn ratios_are_relative_to_the_syscall_floor() {
        let results = vec![result("syscall_floor", 400), result("null_hypercall", 600)];
        assert_eq!(ratio_to_baseline(&results, &results[1]), Some(1.5));
        assert_eq!(ratio_to_baseline(&results[1..], &results[1]), None);
        let text = text_table(&results);
        assert!(text.contains("null_hypercall"), "{text}");
        assert!(text.lines().nth(2).unwrap().contains(" 1.50 "), "{text}");
        let markdown = markdown_table(&results);
        assert!(
            markdown.contains("| null_hypercall | 600 | 590 | 20000 | 1.50 | - |"),
            "{markdown}"
        );
        assert_eq!(markdown.lines().count(), 4);
    }

    #[test]
    fn without_the_baseline_ratios_are_dashes() {
        let markdown = markdown_table(&[result("event_send", 1000)]);
        assert!(
            markdown.contains("| event_send | 1000 | 990 | 20000 | - |"),
            "{markdown}"
        );
    }
}
