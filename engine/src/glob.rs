//! Glob patterns: `*` matches any run of characters, `?` exactly one; nothing else is special.

use regex::Regex;

/// A compiled glob pattern.
#[derive(Clone, Debug)]
pub struct Glob {
    source: String,
    regex: Regex,
}

impl Glob {
    /// Compiles a glob.
    ///
    /// # Errors
    ///
    /// Returns the regex error when the pattern is too large to compile.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        let mut expression = String::with_capacity(pattern.len() + 8);
        expression.push_str("^(?s:");
        for character in pattern.chars() {
            match character {
                '*' => expression.push_str(".*"),
                '?' => expression.push('.'),
                other => expression.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
            }
        }
        expression.push_str(")$");
        Ok(Self {
            source: pattern.to_owned(),
            regex: Regex::new(&expression)?,
        })
    }

    /// Returns true when `text` matches the whole pattern.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// Returns the pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Returns the literal text before the first wildcard.
    pub fn literal_prefix(&self) -> &str {
        let end = self.source.find(['*', '?']).unwrap_or(self.source.len());
        self.source.get(..end).unwrap_or_default()
    }
}

/// Returns true when `text` contains a glob wildcard.
pub fn is_glob(text: &str) -> bool {
    text.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark() {
        let glob = Glob::new("Backdoor:EC2/*").unwrap();
        assert!(glob.is_match("Backdoor:EC2/C&CActivity.B!DNS"));
        assert!(!glob.is_match("Trojan:EC2/DropPoint"));
        let glob = Glob::new("Trojan:EC2/DropPoint?DNS").unwrap();
        assert!(glob.is_match("Trojan:EC2/DropPoint!DNS"));
        assert!(!glob.is_match("Trojan:EC2/DropPoint"));
    }

    #[test]
    fn regex_characters_are_literal() {
        let glob = Glob::new("a.b(c)+").unwrap();
        assert!(glob.is_match("a.b(c)+"));
        assert!(!glob.is_match("axb(c)+"));
    }

    #[test]
    fn prefix_stops_at_wildcard() {
        assert_eq!(
            Glob::new("Backdoor:EC2/*").unwrap().literal_prefix(),
            "Backdoor:EC2/"
        );
        assert_eq!(Glob::new("exact").unwrap().literal_prefix(), "exact");
    }
}
