//! What the docs show, checked against the code (feature `docs`, a dev-dependency of the three
//! binaries): the `warren`/`warrend`/`warren-coordinator` commands in the docs' code blocks,
//! the command references generated from clap, and the error messages the troubleshooting
//! page lists. Docs that are tested cannot drift from the program.

use std::path::{Path, PathBuf};

/// Set to rewrite the generated reference pages instead of comparing them.
pub const BLESS_ENV: &str = "WARREN_BLESS_DOCS";

/// Where the troubleshooting page lists messages, relative to the repository root.
pub const TROUBLESHOOTING: &str = "docs/troubleshooting.md";

/// Source trees whose string literals a troubleshooting message must come from.
const MESSAGE_SOURCES: [&str; 7] = [
    "cli/src",
    "gui/src",
    "daemon/src",
    "daemon/core/src",
    "coordinator/src",
    "coordinator/core/src",
    "proto/src",
];

/// Fenced blocks of these kinds hold output or files, never commands.
const NOT_COMMANDS: [&str; 9] = [
    "text", "json", "toml", "ini", "rust", "yaml", "diff", "console", "output",
];

/// A command found in a code block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocCommand {
    pub file: String,
    pub line: usize,
    pub text: String,
    /// The words as the shell would pass them, the program's name first.
    pub args: Vec<String>,
}

impl std::fmt::Display for DocCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.text)
    }
}

/// The repository's root: proto sits one level below it.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("proto/ has a parent")
        .to_path_buf()
}

/// README.md and every Markdown file under docs/, sorted.
pub fn doc_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("README.md")];
    files.extend(files_below(&[root.join("docs")], "md"));
    files.sort();
    files
}

/// Every file with extension `ext` in or below `dirs` (missing ones are skipped).
fn files_below(dirs: &[PathBuf], ext: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = dirs.to_vec();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == ext) {
                files.push(p);
            }
        }
    }
    files
}

/// Every command of program `bin` in the code blocks of the docs under `root`.
pub fn commands(root: &Path, bin: &str) -> Vec<DocCommand> {
    doc_files(root)
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            let name = f.strip_prefix(root).unwrap_or(f).display().to_string();
            commands_in(&name, &text, bin)
        })
        .collect()
}

/// The commands of `bin` in one Markdown text.
pub fn commands_in(file: &str, markdown: &str, bin: &str) -> Vec<DocCommand> {
    let mut found = Vec::new();
    let mut in_block = false;
    let mut parse_block = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in markdown.lines().enumerate() {
        let trimmed = raw.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            in_block = !in_block;
            let kind = info.trim().split([' ', ',']).next().unwrap_or("");
            parse_block = in_block && !NOT_COMMANDS.contains(&kind);
            pending = None;
            continue;
        }
        if !parse_block {
            continue;
        }
        let (start, mut line) = match pending.take() {
            Some((start, so_far)) => (start, so_far + " " + trimmed),
            None => (i + 1, trimmed.to_string()),
        };
        if let Some(cont) = line.strip_suffix('\\') {
            pending = Some((start, cont.trim_end().to_string()));
            continue;
        }
        line = line.trim().to_string();
        if let Some(args) = command_words(&line, bin) {
            found.push(DocCommand {
                file: file.to_string(),
                line: start,
                text: line,
                args,
            });
        }
    }
    found
}

/// The words of `line` if it runs `bin` (after an optional `$ ` prompt, `sudo` and variable
/// assignments), cut at the first pipe, `&&`, `;`, redirection or comment.
fn command_words(line: &str, bin: &str) -> Option<Vec<String>> {
    let line = line.strip_prefix("$ ").unwrap_or(line);
    let words = shell_words(line)?;
    let mut rest = words
        .iter()
        .skip_while(|w| w.as_str() == "sudo" || is_assignment(w));
    let first = rest.next()?;
    if first != bin {
        return None;
    }
    let mut args = vec![bin.to_string()];
    for w in rest {
        if ["|", "&&", "||", ";", ">", ">>", "2>", "2>&1", "&"].contains(&w.as_str())
            || w.starts_with('#')
        {
            break;
        }
        args.push(w.clone());
    }
    Some(args)
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
    })
}

/// Splits like a POSIX shell: whitespace outside quotes, '…' literal, "…" with \" escapes,
/// a backslash escaping the next character. `None` on an unclosed quote.
fn shell_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// Relative links (outside code blocks) in README.md, CHANGELOG.md, ROADMAP.md and docs/ whose
/// file does not exist, as `file: target`.
pub fn broken_links(root: &Path) -> Vec<String> {
    let mut files = doc_files(root);
    files.extend(["CHANGELOG.md", "ROADMAP.md"].map(|f| root.join(f)));
    let mut broken = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let dir = f.parent().unwrap_or(root);
        let mut in_block = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                in_block = !in_block;
                continue;
            }
            if in_block {
                continue;
            }
            for target in link_targets(line) {
                let path = target.split('#').next().unwrap_or("");
                let external = target.contains("://") || target.starts_with("mailto:");
                if !external && !path.is_empty() && !dir.join(path).exists() {
                    let name = f.strip_prefix(root).unwrap_or(&f).display().to_string();
                    broken.push(format!("{name}: {target}"));
                }
            }
        }
    }
    broken
}

/// The targets of Markdown links `[text](target)` on one line.
fn link_targets(line: &str) -> Vec<&str> {
    line.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &line[i + 2..];
            let end = rest.find(')')?;
            let target = &rest[..end];
            (!target.contains(char::is_whitespace)).then_some(target)
        })
        .collect()
}

/// A message the troubleshooting page lists, as its literal pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedMessage {
    pub line: usize,
    pub heading: String,
    /// The pieces between `…` that are long enough to search for.
    pub pieces: Vec<String>,
}

/// Pieces shorter than this are too common to prove anything and are not searched for.
const MIN_PIECE: usize = 6;

/// The messages of a troubleshooting page: each `### ` heading whose whole text is one
/// backticked message, run-time parts written as `…`.
pub fn listed_messages(markdown: &str) -> Vec<ListedMessage> {
    markdown
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let msg = l.strip_prefix("### `")?.strip_suffix('`')?;
            let pieces = msg
                .split('…')
                .map(str::trim)
                .filter(|p| p.chars().count() >= MIN_PIECE)
                .map(str::to_string)
                .collect();
            Some(ListedMessage {
                line: i + 1,
                heading: msg.to_string(),
                pieces,
            })
        })
        .collect()
}

/// The Rust sources a message may come from, concatenated.
pub fn message_sources(root: &Path) -> String {
    let dirs: Vec<PathBuf> = MESSAGE_SOURCES.iter().map(|d| root.join(d)).collect();
    files_below(&dirs, "rs")
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap_or_default() + "\n")
        .collect()
}

/// The listed messages with a piece that no source contains: their text changed or is gone.
pub fn stale_messages(listed: &[ListedMessage], sources: &str) -> Vec<String> {
    listed
        .iter()
        .filter_map(|m| {
            let missing: Vec<&str> = m
                .pieces
                .iter()
                .filter(|p| !sources.contains(p.as_str()))
                .map(String::as_str)
                .collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "{TROUBLESHOOTING}:{}: `{}` — not in the code: {missing:?}",
                    m.line, m.heading
                )
            })
        })
        .collect()
}

#[cfg(feature = "docs")]
mod reference;
#[cfg(feature = "docs")]
pub use reference::{check_reference, commands_that_do_not_parse, reference_page};

#[cfg(test)]
mod tests;
