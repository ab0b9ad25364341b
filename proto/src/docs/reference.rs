//! What needs the program's clap definition: its command reference, generated as its man page
//! is, and the docs' commands parsed by it.

use super::{commands, repo_root, BLESS_ENV};
use clap::error::ErrorKind;

/// The commands of `bin` in the docs that `P` refuses, each with clap's first line of error
/// (asking for help or the version counts as parsing).
pub fn commands_that_do_not_parse<P: clap::Parser>(bin: &str) -> Vec<String> {
    let found = commands(&repo_root(), bin);
    assert!(!found.is_empty(), "no `{bin}` command found in the docs");
    found
        .iter()
        .filter_map(|c| match P::try_parse_from(&c.args) {
            Ok(_) => None,
            Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
                None
            }
            Err(e) => Some(format!(
                "{c}\n    {}",
                e.to_string().lines().next().unwrap_or("")
            )),
        })
        .collect()
}

/// The Markdown page: the program's long help, then each subcommand's (hidden ones left out),
/// depth first.
pub fn reference_page(mut cmd: clap::Command, package: &str, title: &str, intro: &str) -> String {
    cmd.build();
    let name = cmd.get_name().to_string();
    let mut page = format!(
        "# {title}\n\n{intro}\n\nGenerated from `{name}`'s own help by its test \
         (`{BLESS_ENV}=1 cargo test -p {package} docs` rewrites it); do not edit by hand.\n"
    );
    let mut contents = String::new();
    let mut sections = String::new();
    add_section(&cmd, &name, &mut contents, &mut sections);
    page.push_str("\n## Contents\n\n");
    page.push_str(&contents);
    page.push_str(&sections);
    page
}

fn add_section(cmd: &clap::Command, path: &str, contents: &mut String, sections: &mut String) {
    let anchor: String = path
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    contents.push_str(&format!("- [`{path}`](#{anchor})\n"));
    let help = cmd.clone().render_long_help().to_string();
    let help: Vec<&str> = help.lines().map(str::trim_end).collect();
    sections.push_str(&format!(
        "\n## {path}\n\n```text\n{}\n```\n",
        help.join("\n").trim()
    ));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        add_section(
            sub,
            &format!("{path} {}", sub.get_name()),
            contents,
            sections,
        );
    }
}

/// Compares `page` with the file at `relative` (from the repository root), or writes it when
/// [`BLESS_ENV`] is set. `Err` says what to run.
pub fn check_reference(relative: &str, package: &str, page: &str) -> Result<(), String> {
    let path = repo_root().join(relative);
    if std::env::var_os(BLESS_ENV).is_some() {
        std::fs::write(&path, page).map_err(|e| format!("writing {relative}: {e}"))?;
        return Ok(());
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk == page {
        return Ok(());
    }
    let first_difference = on_disk
        .lines()
        .zip(page.lines())
        .position(|(a, b)| a != b)
        .map_or(on_disk.lines().count().min(page.lines().count()), |i| i);
    Err(format!(
        "{relative} is not what the program's help says (first difference at line {}); \
         run `{BLESS_ENV}=1 cargo test -p {package} docs` and commit the page",
        first_difference + 1
    ))
}
