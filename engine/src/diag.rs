//! Diagnostics: located errors about rule files, rendered with a source snippet.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode};

use crate::source::{SourceFile, Span};

/// Maximum length of a source line shown in a snippet, in characters.
pub const MAX_SNIPPET_LINE_CHARS: usize = 400;

/// Most diagnostics rendered in full; the rest are counted.
pub const MAX_RENDERED: usize = 100;

/// The severity of a diagnostic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Severity {
    /// The rules cannot be loaded.
    #[default]
    Error,
    /// The rules load, but probably do not do what their author meant.
    Warning,
}

/// The text of a source file for the snippet renderer, shared with the file rather than
/// copied: a file of 1 MiB with 1,000 diagnostics would otherwise be held 1,000 times.
#[derive(Clone, Debug)]
struct SharedText(Arc<SourceFile>);

impl SourceCode for SharedText {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let contents =
            self.0
                .text
                .as_str()
                .read_span(span, context_lines_before, context_lines_after)?;
        if context_lines_before > 0 {
            return Ok(contents);
        }
        // miette counts the column of a span's start in bytes. Messages count characters, as
        // editors do, so the snippet's header gets the same column as the message.
        let (_, column) = self.0.line_column(span.offset());
        Ok(Box::new(miette::MietteSpanContents::new(
            contents.data(),
            *contents.span(),
            contents.line(),
            column.saturating_sub(1),
            contents.line_count(),
        )))
    }
}

/// One located problem in a rule file.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// Whether the problem stops the rules from loading.
    pub severity: Severity,
    /// The file the problem is in.
    pub file: Arc<SourceFile>,
    /// Where in the file.
    pub span: Span,
    /// The id of the rule the problem belongs to, when it belongs to one.
    pub rule_id: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// A short label shown under the snippet.
    pub label: Option<String>,
    source: Arc<NamedSource<SharedText>>,
}

impl Diagnostic {
    /// Creates a diagnostic at `span` of `file`.
    pub fn new(file: &Arc<SourceFile>, span: Span, message: impl Into<String>) -> Self {
        let text = SharedText(Arc::clone(file));
        let source = NamedSource::new(file.name.clone(), text).with_language("yaml");
        Self {
            severity: Severity::Error,
            file: Arc::clone(file),
            span,
            rule_id: None,
            message: message.into(),
            help: None,
            label: None,
            source: Arc::new(source),
        }
    }

    /// Attaches the id of the rule the problem belongs to.
    #[must_use]
    pub fn in_rule(mut self, rule_id: Option<&str>) -> Self {
        self.rule_id = rule_id.map(str::to_owned);
        self
    }

    /// Adds a help line with the fix for the problem.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Turns the diagnostic into a warning, which does not stop the rules from loading.
    #[must_use]
    pub fn into_warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Returns true for a warning.
    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }

    /// Adds a label shown under the snippet.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Returns `file:line:column`.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file.name, self.span.line, self.span.column)
    }

    /// Renders the diagnostic as text with a snippet of the source, without colours. A line
    /// longer than [`MAX_SNIPPET_LINE_CHARS`] is not shown: the message and help come alone,
    /// because the snippet renderer cannot draw columns that far and the output would be huge.
    pub fn render(&self) -> String {
        if self.line_chars() > MAX_SNIPPET_LINE_CHARS {
            let mark = if self.is_warning() { '⚠' } else { '×' };
            let mut out = format!("  {mark} {self}\n");
            if let Some(help) = &self.help {
                out.push_str(&format!("  help: {help}\n"));
            }
            return out;
        }
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            out = self.to_string();
        }
        out
    }

    /// Returns the length in characters of the line the span starts on.
    fn line_chars(&self) -> usize {
        let text = &self.file.text;
        let before = text
            .get(..self.span.offset.min(text.len()))
            .unwrap_or_default();
        let start = before.rfind('\n').map_or(0, |index| index + 1);
        let line = text.get(start..).and_then(|rest| rest.lines().next());
        line.map_or(0, |line| line.chars().count())
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: ", self.location())?;
        if self.is_warning() {
            formatter.write_str("warning: ")?;
        }
        if let Some(rule_id) = &self.rule_id {
            write!(formatter, "rule `{rule_id}`: ")?;
        }
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(self.source.as_ref())
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = LabeledSpan::new(
            Some(self.label.clone().unwrap_or_else(|| "here".to_owned())),
            self.span.offset,
            self.span.len,
        );
        Some(Box::new(std::iter::once(label)))
    }
}

/// Every problem found while loading a set of rule files.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Returns true when no problem was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Renders every diagnostic with its snippet, followed by a count.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for diagnostic in self.0.iter().take(MAX_RENDERED) {
            out.push_str(&diagnostic.render());
            out.push('\n');
        }
        let count = self.0.len();
        if count > MAX_RENDERED {
            out.push_str(&format!("{} more not shown\n", count - MAX_RENDERED));
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    /// Counts errors and warnings: `2 errors and 1 warning in rule files`.
    pub fn summary(&self) -> String {
        let warnings = self.0.iter().filter(|d| d.is_warning()).count();
        let errors = self.0.len() - warnings;
        let counted = |count: usize, noun: &str| {
            let plural = if count == 1 { "" } else { "s" };
            format!("{count} {noun}{plural}")
        };
        let text = match (errors, warnings) {
            (_, 0) => counted(errors, "error"),
            (0, _) => counted(warnings, "warning"),
            _ => format!(
                "{} and {}",
                counted(errors, "error"),
                counted(warnings, "warning")
            ),
        };
        format!("{text} in rule files")
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, diagnostic) in self.0.iter().enumerate() {
            if index > 0 {
                formatter.write_str("\n")?;
            }
            write!(formatter, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
