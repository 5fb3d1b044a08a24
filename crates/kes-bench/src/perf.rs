//! System calls of the server in a measured window, counted by `perf stat` on the
//! `raw_syscalls:sys_enter` tracepoint.
//!
//! `perf stat -p <pid>` attaches to every thread of the server with its counters disabled
//! (`--delay -1`); the benchmark switches them on at the start of the window and off at its end
//! through perf's control pipe (`--control fd:3,4`, each command acknowledged), so the count
//! covers exactly the window. Where `perf` is missing or may not trace (no tracefs, a
//! `perf_event_paranoid` setting that forbids it), the count is left out and the phase runs
//! anyway. Counting costs the server a little time per system call, the same for every server
//! measured.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The tracepoint counted.
const EVENT: &str = "raw_syscalls:sys_enter";
/// How long perf may take to acknowledge a command or to print its counts.
const PERF_TIMEOUT: Duration = Duration::from_secs(5);

/// A `perf stat` process attached to the server, its counters off until [`Syscalls::enable`].
pub struct Syscalls {
    child: Child,
    control: std::io::PipeWriter,
    acks: mpsc::Receiver<String>,
}

impl Syscalls {
    /// Attaches to process `pid`; `None` (with the reason on stderr, once) when perf cannot.
    pub fn attach(pid: u32) -> Option<Syscalls> {
        let (control_read, control) = std::io::pipe().ok()?;
        let (ack_read, ack_write) = std::io::pipe().ok()?;
        let mut command = Command::new("perf");
        command
            .args([
                "stat",
                "-x,",
                "--delay",
                "-1",
                "--control",
                "fd:3,4",
                "-e",
                EVENT,
            ])
            .arg("-p")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        pass_fds(&mut command, control_read, ack_write);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(err) => {
                warn_once(&format!("no system-call counts: perf: {err}"));
                return None;
            }
        };
        let (tx, acks) = mpsc::channel();
        std::thread::spawn(move || {
            // Ends when perf exits and the pipe closes.
            for line in BufReader::new(ack_read).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Some(Syscalls {
            child,
            control,
            acks,
        })
    }

    /// Switches the counters on; `false` when perf did not acknowledge.
    pub fn enable(&mut self) -> bool {
        self.command("enable")
    }

    /// Switches the counters off; `false` when perf did not acknowledge.
    pub fn disable(&mut self) -> bool {
        self.command("disable")
    }

    fn command(&mut self, what: &str) -> bool {
        if self
            .control
            .write_all(format!("{what}\n").as_bytes())
            .is_err()
        {
            return false;
        }
        // perf answers "ack\n" and a NUL byte, which starts the next line.
        matches!(self.acks.recv_timeout(PERF_TIMEOUT),
            Ok(ack) if ack.trim_matches(|c: char| c == '\0' || c.is_whitespace()) == "ack")
    }

    /// Stops perf and returns the count, or `None` (with perf's words on stderr) when it
    /// counted nothing.
    pub fn finish(mut self) -> Option<u64> {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + PERF_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return None;
                }
            }
        }
        let mut text = String::new();
        self.child.stderr.take()?.read_to_string(&mut text).ok()?;
        let count = parse_count(&text);
        if count.is_none() {
            warn_once(&format!(
                "no system-call counts: perf said: {}",
                text.trim()
            ));
        }
        count
    }
}

impl Drop for Syscalls {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The count of [`EVENT`] in perf's CSV output (`<count>,<unit>,<event>,...`).
pub fn parse_count(text: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut fields = line.split(',');
        let count = fields.next()?;
        let _unit = fields.next()?;
        (fields.next()? == EVENT)
            .then(|| count.parse().ok())
            .flatten()
    })
}

fn warn_once(message: &str) {
    static TOLD: std::sync::Once = std::sync::Once::new();
    TOLD.call_once(|| eprintln!("kes-bench: {message}"));
}

/// Makes `control` the child's fd 3 and `ack` its fd 4 (perf's `--control fd:3,4`).
fn pass_fds(command: &mut Command, control: std::io::PipeReader, ack: std::io::PipeWriter) {
    use std::os::fd::{AsRawFd as _, OwnedFd};
    use std::os::unix::process::CommandExt as _;
    let control = OwnedFd::from(control);
    let ack = OwnedFd::from(ack);
    let (c, a) = (control.as_raw_fd(), ack.as_raw_fd());
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl(2) and dup2(2),
    // which are async-signal-safe; the two descriptors stay open in the parent until `command` is
    // dropped, because the closure owns them.
    unsafe {
        command.pre_exec(move || {
            let _keep = (&control, &ack);
            // First out of the way (either may be 3 or 4 already), then into place: dup2
            // onto another number also clears close-on-exec.
            let high = [
                libc::fcntl(c, libc::F_DUPFD, 10),
                libc::fcntl(a, libc::F_DUPFD, 10),
            ];
            for (from, to) in high.into_iter().zip([3, 4]) {
                if from == -1 || libc::dup2(from, to) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_read_from_perf_csv() {
        let text = "Events disabled\nEvents enabled\nEvents disabled\n\
                    49803,,raw_syscalls:sys_enter,552027732,100.00,,\n";
        assert_eq!(parse_count(text), Some(49803));
        assert_eq!(
            parse_count("<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n"),
            None
        );
        assert_eq!(parse_count("12,,context-switches,1,100.00,,\n"), None);
        assert_eq!(parse_count(""), None);
    }
}
