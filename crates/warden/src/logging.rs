//! Warden's own logs: JSON lines (the default when stdout is not a terminal) or text.
//!
//! Log fields carry values an attacker chose (a `client_id`, a `kid`, a path, an error naming
//! an id). JSON escapes them by itself; the text format would write them raw, so a value with
//! a newline could forge a whole log line and one with an escape sequence could rewrite a
//! terminal. The text format here writes every field, the message included, with its control
//! characters escaped, so one event is always one line. Tests: the unit tests below.

use std::fmt::Write as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::debug_fn;

/// Characters that are not control characters but break or reorder a line in a viewer: the
/// line and paragraph separators and the bidirectional formatting marks (which can make a
/// field read backwards).
fn breaks_or_reorders_a_line(character: char) -> bool {
    matches!(
        character,
        '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// `text` with every control character (newline, carriage return, escape, …) and every
/// character that breaks or reorders a line escaped.
fn escape_controls(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if character.is_control() || breaks_or_reorders_a_line(character) {
            // `escape_default` writes `\n`, `\r`, `\t` or `\u{1b}`: printable, one line.
            let _ = write!(escaped, "{}", character.escape_default());
        } else {
            escaped.push(character);
        }
    }
    escaped
}

/// The subscriber for `warden serve`, writing to `writer`.
fn subscriber<W>(
    json: bool,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer);
    if json {
        Box::new(builder.json().with_current_span(false).finish())
    } else {
        let fields = debug_fn(|writer, field, value| {
            let text = escape_controls(&format!("{value:?}"));
            if field.name() == "message" {
                write!(writer, "{text}")
            } else {
                write!(writer, "{field}={text}")
            }
        })
        .delimited(" ");
        Box::new(builder.fmt_fields(fields).with_ansi(false).finish())
    }
}

/// Installs the logger (`RUST_LOG` filters, `info` by default).
pub fn init(json: bool) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing::subscriber::set_global_default(subscriber(json, filter, std::io::stdout))
        .map_err(|error| anyhow::anyhow!("installing the logger: {error}"))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'writer> MakeWriter<'writer> for Captured {
        type Writer = Captured;
        fn make_writer(&'writer self) -> Self::Writer {
            self.clone()
        }
    }

    fn logged(json: bool) -> String {
        let captured = Captured::default();
        let subscriber = subscriber(json, EnvFilter::new("info"), captured.clone());
        tracing::subscriber::with_default(subscriber, || {
            let client_id = "evil\nINFO forged: admin login ok\u{1b}[2J\u{2028}x\u{202e}y";
            tracing::info!(client_id = %client_id, why = %format!("unknown client `{client_id}`"), "token request refused");
            tracing::info!("{}", format!("message with {client_id}"));
        });
        let bytes = captured.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    /// Issue #18: an attacker-chosen value cannot forge a log line in the text format.
    #[test]
    fn text_logs_escape_control_characters_in_every_field() {
        let text = logged(false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains(r"client_id=evil\nINFO forged"), "{text}");
        assert!(lines[0].contains(r"\u{1b}[2J"), "{text}");
        assert!(lines[1].contains(r"message with evil\nINFO"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(
            !text.contains('\u{2028}') && !text.contains('\u{202e}'),
            "{text}"
        );
        assert!(lines[0].contains(r"\u{2028}x\u{202e}y"), "{text}");
    }

    #[test]
    fn json_logs_stay_one_line_per_event() {
        let text = logged(true);
        assert_eq!(text.lines().count(), 2, "{text}");
        for line in text.lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(event["fields"].is_object(), "{line}");
        }
    }
}
