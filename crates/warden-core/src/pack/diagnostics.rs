//! Problems found while loading a pack, each with file, line and column.
//!
//! Cedar reports problems as `miette` diagnostics whose labels carry byte offsets into the
//! text that was parsed. Warden parses one file at a time, so an offset maps back to a
//! line and column of a known file. Every problem is collected; loading never stops at
//! the first one.

use std::fmt;

/// How bad a problem is: an error rejects the pack, a warning does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The pack is rejected.
    Error,
    /// The pack loads; the author should still look.
    Warning,
}

/// One problem in a pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackDiagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file the problem is in (display path), if it is in a file.
    pub file: Option<String>,
    /// 1-based line, if known.
    pub line: Option<usize>,
    /// 1-based column (in characters), if known.
    pub column: Option<usize>,
    /// What is wrong, in one line.
    pub message: String,
}

impl PackDiagnostic {
    /// An error located at a byte offset of `text` (the content of `file`).
    pub(crate) fn at_offset(
        severity: Severity,
        file: &str,
        text: &str,
        offset: Option<usize>,
        message: String,
    ) -> Self {
        let (line, column) = match offset {
            Some(offset) => {
                let (line, column) = line_and_column(text, offset);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        Self {
            severity,
            file: Some(file.to_owned()),
            line,
            column,
            message,
        }
    }

    /// A problem of a whole file, without a position.
    pub(crate) fn in_file(severity: Severity, file: &str, message: String) -> Self {
        Self {
            severity,
            file: Some(file.to_owned()),
            line: None,
            column: None,
            message,
        }
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for PackDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match (&self.file, self.line, self.column) {
            (Some(file), Some(line), Some(column)) => {
                write!(f, "{file}:{line}:{column}: {kind}: {}", self.message)
            }
            (Some(file), _, _) => write!(f, "{file}: {kind}: {}", self.message),
            (None, _, _) => write!(f, "{kind}: {}", self.message),
        }
    }
}

/// The 1-based line and column of a byte offset in `text`. Offsets past the end or inside a
/// multi-byte character are clamped to the nearest valid position before them.
pub(crate) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, column)
}

/// Lines and columns of increasing offsets in one text, counted from the previous offset
/// rather than from the start: naming the policies of a large file stays linear.
pub(crate) struct LineCounter<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
    line_start: usize,
}

impl<'a> LineCounter<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        LineCounter {
            text,
            offset: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// The 1-based line and column of `offset`; an offset before the previous one is counted
    /// from the start.
    pub(crate) fn at(&mut self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        if offset < self.offset {
            return line_and_column(self.text, offset);
        }
        let between = self.text.get(self.offset..offset).unwrap_or_default();
        for (position, _) in between.match_indices('\n') {
            self.line += 1;
            self.line_start = self.offset + position + 1;
        }
        self.offset = offset;
        let column = self
            .text
            .get(self.line_start..offset)
            .unwrap_or_default()
            .chars()
            .count()
            + 1;
        (self.line, column)
    }
}

/// Flattens a Cedar (miette) diagnostic into one message per underlying problem, each with
/// the byte offset of its first label. Cedar nests several problems under `related()`.
pub(crate) fn flatten_miette(diagnostic: &dyn miette::Diagnostic) -> Vec<(String, Option<usize>)> {
    let mut flattened = Vec::new();
    if let Some(related) = diagnostic.related() {
        for inner in related {
            flattened.push(describe_miette(inner));
        }
    }
    if flattened.is_empty() {
        flattened.push(describe_miette(diagnostic));
    }
    flattened
}

fn describe_miette(diagnostic: &dyn miette::Diagnostic) -> (String, Option<usize>) {
    let mut message = diagnostic.to_string();
    if let Some(help) = diagnostic.help() {
        message.push_str(&format!(" (help: {help})"));
    }
    let offset = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset());
    (message.replace('\n', " "), offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_from_one() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_and_column(text, 0), (1, 1));
        assert_eq!(line_and_column(text, 1), (1, 2));
        assert_eq!(line_and_column(text, 3), (2, 1));
        // 'é' is two bytes: the offset after it is column 4.
        assert_eq!(line_and_column(text, 7), (2, 4));
        assert_eq!(line_and_column(text, 8), (3, 1));
        assert_eq!(line_and_column(text, 999), (3, 2));
    }

    #[test]
    fn the_line_counter_agrees_with_counting_from_the_start() {
        let text = "ab\ncdé\nf\n\nxyz";
        let mut counter = LineCounter::new(text);
        for offset in [0, 1, 3, 3, 7, 8, 10, 12, 999] {
            assert_eq!(
                counter.at(offset),
                line_and_column(text, offset),
                "at {offset}"
            );
        }
        assert_eq!(counter.at(2), line_and_column(text, 2));
    }

    #[test]
    fn display_names_file_line_and_column() {
        let diagnostic =
            PackDiagnostic::at_offset(Severity::Error, "a.cedar", "x\nyz", Some(3), "boom".into());
        assert_eq!(diagnostic.to_string(), "a.cedar:2:2: error: boom");
    }
}
