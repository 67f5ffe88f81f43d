//! Source files and positions inside them.

use std::sync::Arc;

/// A loaded text file, shared by every diagnostic that points into it.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user gave it, used in messages.
    pub name: String,
    /// The whole text.
    pub text: String,
}

impl SourceFile {
    /// Creates a shared source file. A carriage return outside a CRLF pair becomes a line
    /// feed, because YAML reads it as a line break and line numbers must agree with YAML.
    /// Both are one byte, so byte offsets do not move.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let mut text = text.into();
        if text.contains('\r') {
            text = lone_carriage_returns_to_line_feeds(&text);
        }
        Arc::new(Self {
            name: name.into(),
            text,
        })
    }

    /// Returns the byte offset of a 1-based line and character column, clamped to the text.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        // Columns leave the mark out, so positions are counted after it.
        let mark = if self.text.starts_with(BYTE_ORDER_MARK) {
            BYTE_ORDER_MARK.len_utf8()
        } else {
            0
        };
        self.text
            .get(mark..)
            .and_then(|text| offset_in_text(text, line, column))
            .map_or(self.text.len(), |offset| offset + mark)
    }

    /// Returns the 1-based line and character column of a byte offset.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |index| index + 1);
        let line_text = before.get(line_start..).unwrap_or_default();
        let line_text = if line_start == 0 {
            line_text.strip_prefix(BYTE_ORDER_MARK).unwrap_or(line_text)
        } else {
            line_text
        };
        let column = line_text.chars().count() + 1;
        (line, column)
    }
}

/// Returns the byte offset in `text` of a 1-based line and character column, or `None` when
/// the text has fewer lines.
pub(crate) fn offset_in_text(text: &str, line: usize, column: usize) -> Option<usize> {
    let mut start = 0;
    for (index, text_line) in text.split_inclusive('\n').enumerate() {
        if index + 1 == line {
            let within: usize = text_line
                .chars()
                .take(column.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return Some(start + within);
        }
        start += text_line.len();
    }
    None
}

/// A byte order mark at the start of a file. serde-saphyr skips it and leaves it out of its
/// columns, so the columns here leave it out too.
const BYTE_ORDER_MARK: char = '\u{feff}';

fn lone_carriage_returns_to_line_feeds(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' && chars.peek() != Some(&'\n') {
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

/// A place in a source file: 1-based line and column, and the byte range it covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte offset of the first character.
    pub offset: usize,
    /// Length in bytes; zero points between two characters.
    pub len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_carriage_returns_break_lines() {
        let file = SourceFile::new("cr.yaml", "a: 1\rb: 2\r\nc: 3\r");
        assert_eq!(file.text, "a: 1\nb: 2\r\nc: 3\n");
        let offset = file.text.find('c').unwrap_or_default();
        assert_eq!(file.line_column(offset), (3, 1));
        assert_eq!(file.offset_of(3, 1), offset);
    }

    #[test]
    fn byte_order_mark_is_not_a_column() {
        let file = SourceFile::new("bom.yaml", "\u{feff}rules: x\nb: \u{feff}y");
        let rules = file.text.find('r').unwrap_or_default();
        assert_eq!(file.line_column(rules), (1, 1));
        assert_eq!(file.offset_of(1, 1), rules);
        // Only the mark at the start of the file is left out.
        let y = file.text.find('y').unwrap_or_default();
        assert_eq!(file.line_column(y), (2, 5));
        assert_eq!(file.offset_of(2, 5), y);
    }

    #[test]
    fn columns_count_characters() {
        let file = SourceFile::new("utf.yaml", "d: \"ééé\", x");
        let x = file.text.find('x').unwrap_or_default();
        assert_eq!(file.line_column(x), (1, 11));
        assert_eq!(file.offset_of(1, 11), x);
    }
}
