//! Terminal detection, colour, and writing to stdout/stderr.
//!
//! Two separate questions, each answered once at start-up:
//! * Which *form* to print: commands that print JSON into pipes (`key encrypt`, `key dek`,
//!   `policy show`, …) do so when standard output is not a terminal, so that
//!   `kes key dek my-key | jq` works from an interactive shell.
//! * Whether to *colour*: only when the stream is a terminal, `NO_COLOR` is not set, and
//!   `--color` is `auto` (the default); `--color always` forces colour, `--color never`
//!   disables it. anstream strips the styling wherever colour is off.

use std::io::{IsTerminal as _, Write as _};
use std::sync::OnceLock;

use anstyle::{AnsiColor, Style};
use time::UtcOffset;

use crate::cli::ColorWhen;

static STDOUT_TTY: OnceLock<bool> = OnceLock::new();
static LOCAL_OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Records the terminal state and the local UTC offset. Must run first thing in `main`,
/// while the process is single-threaded (the `time` crate refuses to read the local offset
/// otherwise).
pub fn init() {
    let _ = STDOUT_TTY.set(std::io::stdout().is_terminal());
    let _ = LOCAL_OFFSET.set(UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC));
}

/// Applies `--color`.
pub fn set_color(when: ColorWhen) {
    let choice = match when {
        ColorWhen::Auto => anstream::ColorChoice::Auto,
        ColorWhen::Never => anstream::ColorChoice::Never,
        ColorWhen::Always => anstream::ColorChoice::Always,
    };
    choice.write_global();
}

/// Whether standard output is a terminal (human output) rather than a pipe or file (JSON
/// where the command has it).
pub fn stdout_is_terminal() -> bool {
    STDOUT_TTY.get().copied().unwrap_or(false)
}

/// The local UTC offset at start-up (UTC if it could not be determined).
pub fn local_offset() -> UtcOffset {
    LOCAL_OFFSET.get().copied().unwrap_or(UtcOffset::UTC)
}

/// Bold.
pub const BOLD: Style = Style::new().bold();
/// Bold and underlined (table headers).
pub const HEADER: Style = Style::new().bold().underline();
/// Errors.
pub const RED: Style = AnsiColor::Red.on_default();
/// Success.
pub const GREEN: Style = AnsiColor::Green.on_default();
/// Warnings.
pub const YELLOW: Style = AnsiColor::Yellow.on_default();
/// Names.
pub const CYAN: Style = AnsiColor::Cyan.on_default();

/// `text` wrapped in `style` (stripped later where colour is off).
pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// Why writing to stdout failed.
#[derive(Debug)]
pub enum WriteError {
    /// The reader went away (`| head`): not an error for the user.
    BrokenPipe,
    /// Anything else.
    Other(std::io::Error),
}

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) -> Result<(), WriteError> {
    let mut out = anstream::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => WriteError::BrokenPipe,
            _ => WriteError::Other(e),
        })
}

/// Writes `text` to stderr (errors writing to stderr have nowhere to go).
pub fn eprint(text: &str) {
    let mut err = anstream::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// `Error: <message>` (red on a terminal) and an optional `Hint: <hint>` line.
pub fn print_error(message: &str, hint: Option<&str>) {
    let mut text = format!("{}{message}\n", paint(RED, "Error: "));
    if let Some(hint) = hint {
        text.push_str(&format!("{}{hint}\n", paint(YELLOW, "Hint: ")));
    }
    eprint(&text);
}

/// Formats a timestamp as `YYYY-MM-DD hh:mm:ss` in its own offset.
pub fn date(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Formats a timestamp as `YYYY-MM-DD hh:mm:ss` in local time.
pub fn local_date(t: time::OffsetDateTime) -> String {
    date(t.to_offset(local_offset()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_use_the_originals_layout() {
        let t = time::macros::datetime!(2024-01-02 03:04:05.678 UTC);
        assert_eq!(date(t), "2024-01-02 03:04:05");
        let t = time::macros::datetime!(2024-01-02 03:04:05 +02:00);
        assert_eq!(date(t), "2024-01-02 03:04:05");
    }
}
