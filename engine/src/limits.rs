//! Bounds on everything that comes from outside: rule files, findings and scripts.
//!
//! The values are sized for GuardDuty: EventBridge caps an event at 256 KiB and SQS caps a
//! message body at 256 KiB (1 MiB with the larger payload setting), so a finding over 1 MiB
//! is not a real finding.

/// Largest rule file accepted, in bytes.
pub const MAX_RULE_FILE_BYTES: usize = 1024 * 1024;

/// Largest number of YAML nodes (scalars, sequences, mappings) in one rule file. Alias
/// expansion counts towards it, so a "billion laughs" file stops here.
pub const MAX_RULE_FILE_NODES: usize = 100_000;

/// Deepest YAML nesting accepted in a rule file.
pub const MAX_RULE_FILE_DEPTH: usize = 32;

/// Largest alias (`*ref`) count in one rule file.
pub const MAX_RULE_FILE_ALIASES: usize = 1_000;

/// Largest finding or event accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// Deepest JSON nesting accepted in a finding or event.
pub const MAX_INPUT_DEPTH: usize = 64;

/// Longest JSONPath expression accepted, in bytes.
pub const MAX_JSONPATH_BYTES: usize = 1024;

/// Deepest bracket and parenthesis nesting accepted in a JSONPath expression.
pub const MAX_JSONPATH_DEPTH: usize = 8;

/// Longest Rhai expression (`when` or one template) accepted, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 16 * 1024;

/// Longest regular expression source accepted in a `matches` condition, in bytes.
pub const MAX_REGEX_BYTES: usize = 4 * 1024;

/// Largest compiled size of one regular expression, in bytes.
pub const MAX_REGEX_COMPILED_BYTES: usize = 1024 * 1024;

/// Rhai operations one script run may perform before it is stopped.
pub const RHAI_MAX_OPERATIONS: u64 = 50_000;

/// Rhai function call nesting allowed.
pub const RHAI_MAX_CALL_LEVELS: usize = 16;

/// Rhai expression nesting allowed, at global level and inside functions.
pub const RHAI_MAX_EXPR_DEPTH: (usize, usize) = (32, 16);

/// Largest Rhai string a script may build, in bytes.
pub const RHAI_MAX_STRING_BYTES: usize = 64 * 1024;

/// Largest Rhai array a script may build, in elements.
pub const RHAI_MAX_ARRAY_LEN: usize = 10_000;

/// Largest Rhai object map a script may build, in entries.
pub const RHAI_MAX_MAP_LEN: usize = 10_000;

/// Maximum length of a glob, in bytes. Matching takes up to pattern length times text length steps, and
/// finding types and the values globs are meant for are far shorter.
pub const MAX_GLOB_BYTES: usize = 256;

/// Most memory a script run may hold on top of what its thread held when it started, when
/// the binary installs [`crate::memory::CountingAllocator`].
pub const RHAI_MAX_MEMORY_BYTES: i64 = 32 * 1024 * 1024;

/// Longest rendered template value, in bytes.
pub const MAX_RENDERED_BYTES: usize = 64 * 1024;
