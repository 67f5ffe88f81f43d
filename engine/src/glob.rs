//! Glob patterns: `*` matches any run of characters, `?` exactly one; nothing else is special.

/// A compiled glob pattern.
#[derive(Clone, Debug)]
pub struct Glob {
    source: String,
    pattern: Vec<char>,
}

impl Glob {
    /// Compiles a glob. Every string is a valid glob.
    pub fn new(pattern: &str) -> Self {
        Self {
            source: pattern.to_owned(),
            pattern: pattern.chars().collect(),
        }
    }

    /// Returns true when `text` matches the whole pattern.
    ///
    /// The match walks pattern and text once, and on a mismatch goes back to the last `*`,
    /// which then covers one more character. That takes at most pattern length times text
    /// length steps, and no memory.
    pub fn is_match(&self, text: &str) -> bool {
        let mut pattern_at = 0;
        let mut text_at = 0;
        // The pattern index after the last `*`, and the text index that `*` covers up to.
        let mut last_star: Option<(usize, usize)> = None;
        loop {
            let expected = self.pattern.get(pattern_at).copied();
            let next = text.get(text_at..).and_then(|rest| rest.chars().next());
            match (expected, next) {
                (Some('*'), _) => {
                    pattern_at += 1;
                    last_star = Some((pattern_at, text_at));
                }
                (Some('?'), Some(found)) => {
                    pattern_at += 1;
                    text_at += found.len_utf8();
                }
                (Some(literal), Some(found)) if literal == found => {
                    pattern_at += 1;
                    text_at += found.len_utf8();
                }
                (None, None) => return true,
                _ => {
                    let Some((after_star, covered)) = last_star else {
                        return false;
                    };
                    let Some(found) = text.get(covered..).and_then(|rest| rest.chars().next())
                    else {
                        return false;
                    };
                    let covered = covered + found.len_utf8();
                    last_star = Some((after_star, covered));
                    pattern_at = after_star;
                    text_at = covered;
                }
            }
        }
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
        let glob = Glob::new("Backdoor:EC2/*");
        assert!(glob.is_match("Backdoor:EC2/C&CActivity.B!DNS"));
        assert!(!glob.is_match("Trojan:EC2/DropPoint"));
        let glob = Glob::new("Trojan:EC2/DropPoint?DNS");
        assert!(glob.is_match("Trojan:EC2/DropPoint!DNS"));
        assert!(!glob.is_match("Trojan:EC2/DropPoint"));
    }

    #[test]
    fn regex_characters_are_literal() {
        let glob = Glob::new("a.b(c)+");
        assert!(glob.is_match("a.b(c)+"));
        assert!(!glob.is_match("axb(c)+"));
    }

    /// Builds the regular expression that matches the same texts as the glob.
    fn as_regex(pattern: &str) -> regex::Regex {
        let mut expression = String::from("^(?s:");
        for character in pattern.chars() {
            match character {
                '*' => expression.push_str(".*"),
                '?' => expression.push('.'),
                other => expression.push_str(&regex::escape(&other.to_string())),
            }
        }
        expression.push_str(")$");
        regex::Regex::new(&expression).unwrap()
    }

    /// Every pattern over `a`, `é`, `*` and `?` up to 4 characters, against every text over
    /// `a`, `b` and `é` up to 5 characters, matches as the regular expression does.
    #[test]
    fn agrees_with_regular_expressions() {
        fn words(alphabet: &[char], max: usize) -> Vec<String> {
            let mut all = vec![String::new()];
            let mut last = vec![String::new()];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|word| alphabet.iter().map(move |c| format!("{word}{c}")))
                    .collect();
                all.extend(last.iter().cloned());
            }
            all
        }
        let texts = words(&['a', 'b', 'é'], 5);
        for pattern in words(&['a', 'é', '*', '?'], 4) {
            let glob = Glob::new(&pattern);
            let regex = as_regex(&pattern);
            for text in &texts {
                assert_eq!(
                    glob.is_match(text),
                    regex.is_match(text),
                    "pattern `{pattern}`, text `{text}`"
                );
            }
        }
    }

    #[test]
    fn prefix_stops_at_wildcard() {
        assert_eq!(
            Glob::new("Backdoor:EC2/*").literal_prefix(),
            "Backdoor:EC2/"
        );
        assert_eq!(Glob::new("exact").literal_prefix(), "exact");
    }
}
