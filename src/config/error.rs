//! Configuration errors: every problem found in `proxy.toml`, each with its place.

use std::fmt;
use std::path::PathBuf;

/// One problem in the file, pointing at a line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: usize,
    pub column: usize,
    /// The key, as a path: `server.https`, `route[2].upstream`.
    pub key: String,
    /// What is wrong and, where there is one, the fix.
    pub message: String,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read at all.
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was read and has one or more problems.
    #[error("{} has {} problem(s)", path.display(), diagnostics.len())]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

impl Error {
    /// Every problem, one per line, as `path:line:column: key: message`.
    pub fn render(&self) -> String {
        match self {
            Error::Read { path, source } => format!("{}: cannot read: {source}", path.display()),
            Error::Invalid { path, diagnostics } => diagnostics
                .iter()
                .map(|d| format!("{}:{d}", path.display()))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// The problems, when the file was readable.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            Error::Read { .. } => &[],
            Error::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}:{}: {}", self.line, self.column, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.line, self.column, self.key, self.message
            )
        }
    }
}

/// 1-based line and column of a byte offset (columns count characters, as editors do).
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_column(text, 9), (2, 3));
    }
}
