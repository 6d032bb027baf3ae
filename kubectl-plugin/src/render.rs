//! Text helpers shared by the commands: colour (only on a terminal, never with `NO_COLOR`),
//! progress bars, durations and aligned tables.

use std::fmt::Write as _;
use std::time::Duration;

/// Whether output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    color: bool,
}

impl Style {
    /// Colour only when stdout is a terminal and `NO_COLOR` is unset or empty
    /// (<https://no-color.org>).
    pub fn detect(stdout_is_terminal: bool, no_color: Option<&str>) -> Style {
        let disabled = no_color.is_some_and(|v| !v.is_empty());
        Style {
            color: stdout_is_terminal && !disabled,
        }
    }

    /// No colour.
    pub fn plain() -> Style {
        Style { color: false }
    }

    /// True when colour codes are written.
    pub fn is_colored(self) -> bool {
        self.color
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Success.
    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Something that needs attention.
    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// A failure or a denial.
    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Headings.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
}

/// A progress bar of `width` cells for `done` out of `total`: `[######....]`. Values outside
/// `0..=total` are clamped; a `total` of zero draws an empty bar.
pub fn bar(done: i32, total: i32, width: usize) -> String {
    let filled = if total <= 0 {
        0
    } else {
        let done = usize::try_from(done.clamp(0, total)).unwrap_or(0);
        let total = usize::try_from(total).unwrap_or(1);
        (done * width) / total
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// A duration as people read it: `42s`, `3m05s`, `1h02m`, `2d03h`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// Rows as columns separated by three spaces, each as wide as its widest cell (the last column
/// is not padded), like kubectl's tables.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}   ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(Style::detect(true, None).is_colored());
        assert!(Style::detect(true, Some("")).is_colored());
        assert!(!Style::detect(true, Some("1")).is_colored());
        assert!(!Style::detect(false, None).is_colored());
        assert_eq!(Style::detect(false, None).red("denied"), "denied");
        assert_eq!(
            Style::detect(true, None).red("denied"),
            "\x1b[31mdenied\x1b[0m"
        );
    }

    #[test]
    fn bars_fill_in_proportion() {
        assert_eq!(bar(0, 3, 6), "[......]");
        assert_eq!(bar(1, 3, 6), "[##....]");
        assert_eq!(bar(3, 3, 6), "[######]");
        assert_eq!(bar(5, 3, 6), "[######]");
        assert_eq!(bar(-1, 3, 6), "[......]");
        assert_eq!(bar(0, 0, 4), "[....]");
    }

    #[test]
    fn durations_read_like_kubectl_ages() {
        assert_eq!(human_duration(Duration::from_secs(42)), "42s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(human_duration(Duration::from_secs(3720)), "1h02m");
        assert_eq!(
            human_duration(Duration::from_secs(2 * 86_400 + 3 * 3600)),
            "2d03h"
        );
    }

    #[test]
    fn tables_align_columns() {
        let t = table(&[
            vec!["TYPE".into(), "REASON".into(), "MESSAGE".into()],
            vec!["Normal".into(), "UpgradeStarted".into(), "x".into()],
        ]);
        assert_eq!(
            t,
            "TYPE     REASON           MESSAGE\nNormal   UpgradeStarted   x\n"
        );
    }
}
