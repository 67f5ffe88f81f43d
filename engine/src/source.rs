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
    /// Creates a shared source file.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            text: text.into(),
        })
    }

    /// Returns the byte offset of a 1-based line and character column, clamped to the text.
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let mut offset = 0;
        for (index, text_line) in self.text.split_inclusive('\n').enumerate() {
            if index + 1 == line {
                let within: usize = text_line
                    .chars()
                    .take(column.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                return offset + within;
            }
            offset += text_line.len();
        }
        self.text.len()
    }

    /// Returns the 1-based line and character column of a byte offset.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |index| index + 1);
        let column = before
            .get(line_start..)
            .map_or(0, |text| text.chars().count())
            + 1;
        (line, column)
    }
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
