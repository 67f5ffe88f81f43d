//! The record of a network interface's security groups before isolation, kept as tags on the
//! network interface itself so that `release` can restore them.
//!
//! The group ids are joined with spaces, because a space is allowed in tag values by every
//! AWS service, and split into chunks of at most 256 characters (the tag value limit). The
//! first chunk is under `cordon:original-groups`, the next ones under
//! `cordon:original-groups-2`, `cordon:original-groups-3` and so on, so any number of groups
//! fits as long as the interface has tags to spare (50 per resource).

use std::collections::BTreeMap;

/// The tag key of the first chunk, and the prefix of the others.
pub(crate) const RECORD_KEY: &str = "cordon:original-groups";

/// The maximum length of an EC2 tag value, in characters.
pub(crate) const MAX_TAG_VALUE_CHARS: usize = 256;

/// An error reading back a record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RecordError {
    /// A chunk between the first and the last is missing.
    #[error("tag `{0}` is missing, so the record of original groups is incomplete")]
    MissingChunk(String),
    /// The record lists no groups.
    #[error("the record of original groups is empty")]
    Empty,
    /// The record lists something that is not a security group id.
    #[error("the record of original groups lists `{0}`, which is not a security group id")]
    NotAGroup(String),
}

/// Returns the tags that record `groups`, in key order.
pub(crate) fn encode(groups: &[String]) -> Vec<(String, String)> {
    let mut chunks: Vec<String> = vec![String::new()];
    for group in groups {
        let Some(current) = chunks.last_mut() else {
            break;
        };
        let needed = if current.is_empty() {
            group.chars().count()
        } else {
            current.chars().count() + 1 + group.chars().count()
        };
        if needed <= MAX_TAG_VALUE_CHARS || current.is_empty() {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(group);
        } else {
            chunks.push(group.clone());
        }
    }
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, chunk)| (chunk_key(index), chunk))
        .collect()
}

fn chunk_key(index: usize) -> String {
    match index {
        0 => RECORD_KEY.to_owned(),
        _ => format!("{RECORD_KEY}-{}", index + 1),
    }
}

/// Returns the chunk number of a record key (1 for the first), or `None` for other keys.
fn chunk_number(key: &str) -> Option<usize> {
    let rest = key.strip_prefix(RECORD_KEY)?;
    if rest.is_empty() {
        return Some(1);
    }
    let digits = rest.strip_prefix('-')?;
    if digits.starts_with('0') {
        return None;
    }
    digits.parse::<usize>().ok().filter(|number| *number >= 2)
}

/// Returns the record keys among `tags`, in chunk order.
pub(crate) fn keys<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut found: BTreeMap<usize, String> = BTreeMap::new();
    for (key, _) in tags {
        if let Some(number) = chunk_number(key) {
            found.insert(number, key.to_owned());
        }
    }
    found.into_values().collect()
}

/// Reads the recorded groups from a resource's tags: `None` when there is no record.
/// Returns the keys of the record chunks among `tags`, whatever their values.
pub(crate) fn chunk_keys<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    tags.into_iter()
        .filter(|(key, _)| chunk_number(key).is_some())
        .map(|(key, _)| key.to_owned())
        .collect()
}

pub(crate) fn decode<'a>(
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<Result<Vec<String>, RecordError>> {
    let mut chunks: BTreeMap<usize, &str> = BTreeMap::new();
    for (key, value) in tags {
        if let Some(number) = chunk_number(key) {
            chunks.insert(number, value);
        }
    }
    if chunks.is_empty() {
        return None;
    }
    let last = chunks.keys().next_back().copied().unwrap_or(1);
    let mut groups = Vec::new();
    for number in 1..=last {
        let Some(chunk) = chunks.get(&number) else {
            return Some(Err(RecordError::MissingChunk(chunk_key(number - 1))));
        };
        groups.extend(chunk.split_whitespace().map(str::to_owned));
    }
    if groups.is_empty() {
        return Some(Err(RecordError::Empty));
    }
    if let Some(odd) = groups
        .iter()
        .find(|group| !crate::params::is_ec2_id(group, "sg-"))
    {
        let start: String = odd.chars().take(64).collect();
        return Some(Err(RecordError::NotAGroup(
            start.escape_debug().to_string(),
        )));
    }
    Some(Ok(groups))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(index: usize) -> String {
        format!("sg-{index:017x}")
    }

    fn pairs(tags: &[(String, String)]) -> Vec<(&str, &str)> {
        tags.iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect()
    }

    #[test]
    fn record_with_other_words_is_rejected() {
        let tags = [(RECORD_KEY, "sg-0123456789abcdef0 ; rm -rf")];
        let error = decode(tags.iter().copied()).unwrap().unwrap_err();
        assert_eq!(error, RecordError::NotAGroup(";".to_owned()));
    }

    #[test]
    fn one_chunk_for_few_groups() {
        let groups = vec![group(1), group(2)];
        let tags = encode(&groups);
        assert_eq!(tags.len(), 1);
        assert_eq!(tags[0].0, RECORD_KEY);
        assert_eq!(decode(pairs(&tags)), Some(Ok(groups)));
    }

    #[test]
    fn many_groups_round_trip() {
        let groups: Vec<String> = (0..40).map(group).collect();
        let tags = encode(&groups);
        assert_eq!(tags.len(), 4);
        assert_eq!(tags[1].0, "cordon:original-groups-2");
        for (_, value) in &tags {
            assert!(value.chars().count() <= MAX_TAG_VALUE_CHARS);
        }
        let mut shuffled = pairs(&tags);
        shuffled.reverse();
        assert_eq!(decode(shuffled), Some(Ok(groups)));
    }

    #[test]
    fn missing_chunk_is_reported() {
        let groups: Vec<String> = (0..40).map(group).collect();
        let mut tags = encode(&groups);
        tags.remove(1);
        assert_eq!(
            decode(pairs(&tags)),
            Some(Err(RecordError::MissingChunk(
                "cordon:original-groups-2".into()
            )))
        );
    }

    #[test]
    fn other_tags_are_ignored() {
        let tags = [("Name", "web"), ("cordon:original-groups-x", "sg-1")];
        assert_eq!(decode(tags), None);
        assert!(keys(tags).is_empty());
    }

    #[test]
    fn keys_in_chunk_order() {
        let tags = [
            ("cordon:original-groups-10", ""),
            ("cordon:original-groups-2", ""),
            ("cordon:original-groups", ""),
        ];
        assert_eq!(
            keys(tags),
            vec![
                "cordon:original-groups",
                "cordon:original-groups-2",
                "cordon:original-groups-10"
            ]
        );
    }
}
