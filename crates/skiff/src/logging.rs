//! Log output in runc's formats: `--log FILE` (created at start-up, even if
//! the command then fails) and `--log-format text|json`.
//!
//! json: one object per line, `{"level":"error","msg":"…","time":"…"}`, the
//! shape containerd and Podman parse; text: logrus' `time="…" level=… msg="…"`.
//! A minimal `tracing` subscriber: no spans, no allocation unless an event
//! passes the level filter.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub struct Logger {
    out: Mutex<Box<dyn Write + Send>>,
    format: Format,
    max: Level,
}

impl Logger {
    pub fn new(file: Option<File>, format: Format, max: Level) -> Logger {
        let out: Box<dyn Write + Send> = match file {
            Some(f) => Box::new(f),
            None => Box::new(std::io::stderr()),
        };
        Logger { out: Mutex::new(out), format, max }
    }

    /// Writes one line at `level`.
    pub fn line(&self, level: Level, msg: &str) {
        let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let level = match level {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        // One line per message: Podman parses each line as JSON.
        let msg = one_line(msg);
        let line = match self.format {
            Format::Json => {
                let mut s = serde_json::json!({"level": level, "msg": msg, "time": time}).to_string();
                s.push('\n');
                s
            }
            Format::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(line.as_bytes());
        }
    }
}

/// `msg` on one line: its lines trimmed, the empty ones dropped, joined
/// with a space (a multi-line message in a log line breaks callers that
/// read the log line by line).
pub fn one_line(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for line in msg.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}

struct MsgVisitor(String);

impl Visit for MsgVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl Subscriber for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        // Dependencies' warnings (libcgroups lists every controller the host
        // lacks) are noise for callers; they show with --debug.
        if self.max < Level::DEBUG && !m.target().starts_with("libcontainer") && !m.target().starts_with("skiff") {
            return *m.level() <= Level::ERROR;
        }
        *m.level() <= self.max
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &Event<'_>) {
        let mut v = MsgVisitor(String::new());
        e.record(&mut v);
        self.line(*e.metadata().level(), &v.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn messages_are_flattened_to_one_line() {
        assert_eq!(one_line("a\n  b\r\n\nc\n"), "a b c");
        assert_eq!(one_line("single line"), "single line");
        assert_eq!(one_line("\n"), "");
    }
}
