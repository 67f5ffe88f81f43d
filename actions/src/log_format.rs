//! The field format of text logs.

use std::fmt::Write as _;

use cordon_engine::plan::printable;
use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::debug_fn;

/// Returns the field formatter for text logs. Values print as with the default formatter
/// (strings quoted, `%` fields as their `Display` text), but with control characters escaped.
/// Lambda and terminals split records at line breaks, so a finding id with a line break in
/// it would otherwise end its log line and start a forged one.
pub fn text_fields() -> impl for<'writer> FormatFields<'writer> + Send + Sync + 'static {
    debug_fn(|writer, field, value| {
        let mut text = String::new();
        // `fmt::Write` for `String` always returns `Ok`.
        let _ = write!(text, "{value:?}");
        let text = printable(&text);
        if field.name() == "message" {
            writer.write_str(&text)
        } else {
            write!(writer, "{field}={text}")
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn line_breaks_in_values_stay_on_one_line() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .fmt_fields(text_fields())
            .finish();
        let finding_id = "abc\r\nFAKE LINE: isolate succeeded\u{1b}[2J";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("finding", finding_id = %finding_id);
            let _entered = span.enter();
            tracing::info!(region = "eu-west-1\n", "handled {}", "a\nb");
        });

        let output = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(output.lines().count(), 1, "{output}");
        assert!(!output.contains('\u{1b}'), "{output}");
        assert!(
            output.contains(r"finding_id=abc\u{d}\u{a}FAKE LINE: isolate succeeded\u{1b}[2J"),
            "{output}"
        );
        assert!(output.contains(r#"region="eu-west-1\n""#), "{output}");
        assert!(output.contains(r"handled a\u{a}b"), "{output}");
    }
}
