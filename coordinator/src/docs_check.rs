//! The docs cannot drift from `warren-coordinator`: every command of it in their code blocks
//! parses, and its reference page is its help.

use super::Args;
use clap::CommandFactory;
use warren_proto::docs;

#[test]
fn every_coordinator_command_in_the_docs_parses() {
    let bad = docs::commands_that_do_not_parse::<Args>("warren-coordinator");
    assert!(
        bad.is_empty(),
        "docs show commands that do not parse:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_coordinator_reference_is_its_help() {
    let page = docs::reference_page(
        Args::command(),
        "warren-coordinator",
        "`warren-coordinator` — reference",
        "The coordinator runs as a system service (`warren-coordinator.service`); its limits \
         can also be set in `/etc/default/warren-coordinator` (see the \
         [coordinator guide](../guides/coordinator.md)).",
    );
    if let Err(e) = docs::check_reference(
        "docs/reference/warren-coordinator.md",
        "warren-coordinator",
        &page,
    ) {
        panic!("{e}");
    }
}
