//! `../shared/corpus/manifest.tsv`: every row, decoded.

use super::corpus_dir;

#[derive(Debug, Clone)]
pub struct Row {
    pub path: String,
    pub filename: String,
    pub content_type: String,
    /// `Some(201)`, `Some(400)`, or `None` for `either`.
    pub expected: Option<u16>,
    pub reason: String,
}

impl Row {
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(corpus_dir().join(&self.path))
            .unwrap_or_else(|e| panic!("{}: {e}", self.path))
    }
}

pub fn manifest() -> Vec<Row> {
    let text = std::fs::read_to_string(corpus_dir().join("manifest.tsv"))
        .expect("../shared/corpus/manifest.tsv must exist (the corpus ships beside the checkout)");
    let rows: Vec<Row> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert!(cols.len() >= 5, "bad manifest row: {line}");
            Row {
                path: cols[0].to_owned(),
                filename: unescape(cols[1]),
                content_type: cols[2].to_owned(),
                expected: match cols[3] {
                    "either" => None,
                    s => Some(s.parse().expect("status")),
                },
                reason: cols[4].to_owned(),
            }
        })
        .collect();
    assert!(
        rows.len() >= 78,
        "manifest has {} rows, expected at least 78",
        rows.len()
    );
    rows
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\0'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}
