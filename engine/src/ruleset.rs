//! A loaded set of rules, indexed by finding type, with the environment they read.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::compile;
use crate::diag::{Diagnostic, Diagnostics};
use crate::glob::Glob;
use crate::registry::ActionCatalog;
use crate::rule::{Rule, TypePattern};
use crate::source::{SourceFile, Span};
use crate::yaml;

/// Compiled rules ready to evaluate findings.
pub struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    exact: HashMap<String, Vec<usize>>,
    globs: Vec<(Glob, usize)>,
    pub(crate) files: Vec<FileEnv>,
    pub(crate) catalog: Arc<dyn ActionCatalog>,
    warnings: Vec<Diagnostic>,
}

/// The environment one rule file declares, and the values bound to it.
pub(crate) struct FileEnv {
    pub(crate) file: Arc<SourceFile>,
    pub(crate) declared: Vec<(String, Span)>,
    pub(crate) values: rhai::Dynamic,
}

/// Why rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path could not be read.
    #[error("cannot read `{path}`: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// A folder holds no rule file.
    #[error("no rule files (`*.yaml`, `*.yml`) in `{0}`")]
    Empty(PathBuf),
    /// Rule files have errors.
    #[error("{0}")]
    Rules(Diagnostics),
}

/// Lists the rule files named by `paths`: files as given, and the `*.yaml` and `*.yml` files
/// directly inside folders, sorted by name. Subfolders (such as `tests/`) are not read.
///
/// # Errors
///
/// Returns [`LoadError::Io`] for a path that cannot be read and [`LoadError::Empty`] for a
/// folder without rule files.
pub fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).map_err(|error| io_error(path, &error))?;
        if !metadata.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|error| io_error(path, &error))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|entry| entry.is_file() && is_rule_file(entry))
            .collect();
        if found.is_empty() {
            return Err(LoadError::Empty(path.clone()));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

fn is_rule_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|ext| ext.to_str()),
        Some("yaml" | "yml")
    )
}

fn io_error(path: &Path, error: &std::io::Error) -> LoadError {
    LoadError::Io {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

/// Reads one rule file. A file that is too large or not UTF-8 gives a diagnostic, so that the
/// other files are still checked. A file that cannot be read at all stops the load.
fn read_rule_file(path: &Path) -> Result<Result<Arc<SourceFile>, Box<Diagnostic>>, LoadError> {
    let name = path.display().to_string();
    let limit = crate::limits::MAX_RULE_FILE_BYTES;
    let too_large = |size: String| {
        let source = SourceFile::new(name.clone(), String::new());
        let message = format!("rule file is {size} bytes, over the limit of {limit} bytes");
        Box::new(Diagnostic::new(&source, Span::default_at_start(), message))
    };
    let size = std::fs::metadata(path)
        .map_err(|error| io_error(path, &error))?
        .len();
    if size > limit as u64 {
        return Ok(Err(too_large(size.to_string())));
    }
    // The size from metadata is 0 for devices and pipes, so the read is bounded too.
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| {
            use std::io::Read;
            file.take(limit as u64 + 1).read_to_end(&mut bytes)
        })
        .map_err(|error| io_error(path, &error))?;
    if bytes.len() > limit {
        return Ok(Err(too_large(format!("over {limit}"))));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Ok(SourceFile::new(name, text))),
        Err(error) => {
            let valid = error.utf8_error().valid_up_to();
            let source = SourceFile::new(name, String::from_utf8_lossy(error.as_bytes()));
            let (line, column) = source.line_column(valid);
            let span = Span {
                line,
                column,
                offset: valid,
                len: 0,
            };
            let utf16 = error.as_bytes().starts_with(&[0xff, 0xfe])
                || error.as_bytes().starts_with(&[0xfe, 0xff]);
            let help = if utf16 {
                "the file starts with a UTF-16 byte order mark: save it as UTF-8"
            } else {
                "save rule files as UTF-8"
            };
            let diagnostic =
                Diagnostic::new(&source, span, "the file is not valid UTF-8").with_help(help);
            Ok(Err(Box::new(diagnostic)))
        }
    }
}

impl RuleSet {
    /// Loads and compiles rule files and folders (see [`rule_files`]).
    ///
    /// # Errors
    ///
    /// Returns every problem in every file at once (a file over the size limit or not in
    /// UTF-8 included), or the first path that cannot be read at all.
    pub fn load(paths: &[PathBuf], catalog: Arc<dyn ActionCatalog>) -> Result<Self, LoadError> {
        let mut sources = Vec::new();
        let mut unreadable = Vec::new();
        for path in rule_files(paths)? {
            match read_rule_file(&path)? {
                Ok(source) => sources.push(source),
                Err(diagnostic) => unreadable.push(*diagnostic),
            }
        }
        match Self::from_sources(sources, catalog) {
            Ok(rules) if unreadable.is_empty() => Ok(rules),
            Ok(rules) => {
                unreadable.extend(rules.warnings);
                Err(LoadError::Rules(Diagnostics(unreadable)))
            }
            Err(Diagnostics(mut diagnostics)) => {
                unreadable.append(&mut diagnostics);
                Err(LoadError::Rules(Diagnostics(unreadable)))
            }
        }
    }

    /// Compiles rule files already in memory.
    ///
    /// # Errors
    ///
    /// Returns every problem in every file, including rule ids used twice.
    pub fn from_sources(
        sources: Vec<Arc<SourceFile>>,
        catalog: Arc<dyn ActionCatalog>,
    ) -> Result<Self, Diagnostics> {
        let mut diagnostics = Vec::new();
        let mut rules = Vec::new();
        let mut files = Vec::new();
        for (index, source) in sources.into_iter().enumerate() {
            let compiled = match yaml::parse(&source) {
                Ok(root) => {
                    compile::compile_file(&source, index, &root, catalog.as_ref(), &mut diagnostics)
                }
                Err(diagnostic) => {
                    diagnostics.push(*diagnostic);
                    compile::CompiledFile::default()
                }
            };
            rules.extend(compiled.rules);
            files.push(FileEnv {
                file: source,
                declared: compiled.env,
                values: rhai::Dynamic::from_map(rhai::Map::new()),
            });
        }
        check_duplicate_ids(&rules, &mut diagnostics);
        if diagnostics
            .iter()
            .any(|diagnostic| !diagnostic.is_warning())
        {
            return Err(Diagnostics(diagnostics));
        }
        Ok(Self::index(rules, files, catalog, diagnostics))
    }

    /// Returns the warnings found while compiling: rules that load but probably do not do
    /// what their author meant.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    fn index(
        rules: Vec<Rule>,
        files: Vec<FileEnv>,
        catalog: Arc<dyn ActionCatalog>,
        warnings: Vec<Diagnostic>,
    ) -> Self {
        let mut exact: HashMap<String, Vec<usize>> = HashMap::new();
        let mut globs = Vec::new();
        for (index, rule) in rules.iter().enumerate().filter(|(_, rule)| rule.enabled) {
            for pattern in &rule.types {
                match pattern {
                    TypePattern::Exact(text) => {
                        let entry = exact.entry(text.clone()).or_default();
                        if entry.last() != Some(&index) {
                            entry.push(index);
                        }
                    }
                    TypePattern::Glob(glob) => globs.push((glob.clone(), index)),
                }
            }
        }
        Self {
            rules,
            exact,
            globs,
            files,
            catalog,
            warnings,
        }
    }

    /// Binds the declared environment variables of every file to values from `lookup`.
    ///
    /// # Errors
    ///
    /// Returns a located diagnostic for each declared variable that is unset or empty.
    pub fn bind_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), Diagnostics> {
        let mut diagnostics = Vec::new();
        for file in &mut self.files {
            let mut map = rhai::Map::new();
            for (name, span) in &file.declared {
                match lookup(name) {
                    Some(value) if !value.is_empty() => {
                        map.insert(name.as_str().into(), rhai::Dynamic::from(value));
                    }
                    _ => diagnostics.push(
                        Diagnostic::new(
                            &file.file,
                            *span,
                            format!("environment variable `{name}` is not set"),
                        )
                        .with_help(format!(
                            "set `{name}` in the environment, or pass `--env {name}=VALUE` to \
                             `cordon plan` or `cordon run`"
                        )),
                    ),
                }
            }
            file.values = rhai::Dynamic::from_map(map);
        }
        if diagnostics.is_empty() {
            Ok(())
        } else {
            Err(Diagnostics(diagnostics))
        }
    }

    /// Returns the environment variables declared across all files.
    pub fn declared_env(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .files
            .iter()
            .flat_map(|file| file.declared.iter().map(|(name, _)| name.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Returns every rule, enabled or not, in load order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Returns the action catalog the rules were checked against.
    pub fn catalog(&self) -> &dyn ActionCatalog {
        self.catalog.as_ref()
    }

    /// Returns the indexes of the enabled rules whose type patterns match `finding_type`, in
    /// load order.
    pub fn candidates(&self, finding_type: &str) -> Vec<usize> {
        let mut found: Vec<usize> = self.exact.get(finding_type).cloned().unwrap_or_default();
        for (glob, index) in &self.globs {
            if glob.is_match(finding_type) {
                found.push(*index);
            }
        }
        found.sort_unstable();
        found.dedup();
        found
    }
}

fn check_duplicate_ids(rules: &[Rule], diagnostics: &mut Vec<Diagnostic>) {
    let mut first: BTreeMap<&str, &Rule> = BTreeMap::new();
    for rule in rules {
        match first.get(rule.id.as_str()) {
            Some(original) => diagnostics.push(
                Diagnostic::new(
                    &rule.file,
                    rule.span,
                    format!("duplicate rule id `{}`", rule.id),
                )
                .in_rule(Some(&rule.id))
                .with_help(format!("the id is first used at {}", original.location())),
            ),
            None => {
                first.insert(&rule.id, rule);
            }
        }
    }
}
