//! Password prompts. On a terminal the password is read without echo (rpassword, from the
//! controlling terminal). When standard input is not a terminal (scripts, tests), it is read
//! as one line from standard input, so that `printf 'pw\npw\n' | kes identity new --encrypt …`
//! works.

use std::io::{BufRead as _, IsTerminal as _};

use zeroize::Zeroizing;

use crate::fail::Failure;
use crate::term;

/// Reads one password after printing `prompt` on stderr.
pub fn read(prompt: &str) -> Result<Zeroizing<String>, Failure> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| Failure::msg(format!("failed to read password: {e}")));
    }
    term::eprint(prompt);
    // Room for any sensible password, so that reading never reallocates (and leaves copies).
    let mut line = Zeroizing::new(String::with_capacity(4096));
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::msg(format!("failed to read password: {e}")))?;
    term::eprint("\n");
    if n == 0 {
        return Err(Failure::msg("failed to read password: no input"));
    }
    let len = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(len);
    Ok(line)
}

/// Reads a new password twice and checks that both agree.
pub fn read_new() -> Result<Zeroizing<String>, Failure> {
    let first = read("Enter password for private key: ")?;
    let second = read("Confirm password for private key: ")?;
    if first.as_str() != second.as_str() {
        return Err(Failure::msg("passwords don't match"));
    }
    if first.is_empty() {
        return Err(Failure::msg("the password must not be empty"));
    }
    Ok(first)
}
