//! The docs cannot drift from this CLI: every `warren …` command in their code blocks parses,
//! the command reference is its help, every message the troubleshooting page lists is still
//! in the code, and every relative link reaches a file.

use super::Cli;
use warren_proto::docs;

#[test]
fn every_warren_command_in_the_docs_parses() {
    let found = docs::commands(&docs::repo_root(), "warren");
    assert!(found.len() >= 20, "too few commands found: {found:?}");
    let bad = docs::commands_that_do_not_parse::<Cli>("warren");
    assert!(
        bad.is_empty(),
        "docs show commands that do not parse:\n{}",
        bad.join("\n")
    );
}

/// The reference shows the Linux build's help; on Windows the defaults (the pipe instead of
/// the socket) differ.
#[cfg(unix)]
#[test]
fn the_cli_reference_is_this_clis_help() {
    let page = docs::reference_page(
        <Cli as clap::CommandFactory>::command(),
        "warren-cli",
        "`warren` — command reference",
        "`warren` talks to the local daemon over its API socket; see \
         [the guides](../../README.md) for what to do with it.",
    );
    if let Err(e) = docs::check_reference("docs/reference/warren.md", "warren-cli", &page) {
        panic!("{e}");
    }
}

#[test]
fn every_troubleshooting_message_is_still_in_the_code() {
    let root = docs::repo_root();
    let page = std::fs::read_to_string(root.join(docs::TROUBLESHOOTING)).expect("the page");
    let listed = docs::listed_messages(&page);
    assert!(listed.len() >= 30, "only {} messages listed", listed.len());
    let stale = docs::stale_messages(&listed, &docs::message_sources(&root));
    assert!(
        stale.is_empty(),
        "the troubleshooting page lists messages the code no longer prints:\n{}",
        stale.join("\n")
    );
}

#[test]
fn every_relative_link_in_the_docs_reaches_a_file() {
    let broken = docs::broken_links(&docs::repo_root());
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
