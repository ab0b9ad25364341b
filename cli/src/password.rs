//! Network passwords: from `--password`, typed at a prompt without echo, or one line on stdin
//! (for scripts: `echo "$PW" | warren join lan-party`).

use anyhow::{bail, Context, Result};
use std::io::{BufRead, IsTerminal};

pub fn get(given: Option<String>, network: &str, confirm: bool) -> Result<String> {
    if let Some(p) = given {
        return nonempty(p, network);
    }
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password(format!("password for {network}: "))
            .context("cannot read the password")?;
        if confirm {
            let again =
                rpassword::prompt_password("again: ").context("cannot read the password")?;
            if again != p {
                bail!("the two passwords differ; nothing was changed");
            }
        }
        return nonempty(p, network);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    nonempty(line.trim_end_matches(['\r', '\n']).to_string(), network)
}

fn nonempty(p: String, network: &str) -> Result<String> {
    if p.is_empty() {
        bail!("no password for {network}: pass --password PW, type it when asked, or pipe it in");
    }
    Ok(p)
}
