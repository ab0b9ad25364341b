//! The docs cannot drift from `warrend`: every `warrend …` command in their code blocks parses,
//! and its reference page is its help.

use super::Args;
use warren_proto::docs;

#[test]
fn every_warrend_command_in_the_docs_parses() {
    let bad = docs::commands_that_do_not_parse::<Args>("warrend");
    assert!(
        bad.is_empty(),
        "docs show commands that do not parse:\n{}",
        bad.join("\n")
    );
}

/// The reference shows the Linux build's help (Windows adds `--service`, and its defaults differ).
#[cfg(unix)]
#[test]
fn the_warrend_reference_is_its_help() {
    let page = docs::reference_page(
        <Args as clap::CommandFactory>::command(),
        "warrend",
        "`warrend` — daemon reference",
        "The daemon runs as a system service (`warrend.service`); people drive it with \
         `warren` or the window, not with these flags.",
    );
    if let Err(e) = docs::check_reference("docs/reference/warrend.md", "warrend", &page) {
        panic!("{e}");
    }
}
