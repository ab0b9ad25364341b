use super::*;

const PAGE: &str = r#"
Intro `warren up` in prose is not a command.

```sh
warren up --coordinator HOST:7400
sudo warren join NETWORK --password 'two words'   # a comment
$ warren status --json | jq .self
WARREN_X=1 warren ping PEER && echo ok
ip netns exec a warren status
warrend --config /etc/warren/config.toml \
    --port 51820
```

```text
warren status
```

```
warren-coordinator serve
```
"#;

#[test]
fn commands_are_found_in_code_blocks_only() {
    let found = commands_in("x.md", PAGE, "warren");
    let args: Vec<Vec<String>> = found.iter().map(|c| c.args.clone()).collect();
    let want: Vec<Vec<&str>> = vec![
        vec!["warren", "up", "--coordinator", "HOST:7400"],
        vec!["warren", "join", "NETWORK", "--password", "two words"],
        vec!["warren", "status", "--json"],
        vec!["warren", "ping", "PEER"],
    ];
    assert_eq!(args, want);
    assert_eq!(found[0].line, 5);
    assert_eq!(
        found[0].to_string(),
        "x.md:5: warren up --coordinator HOST:7400"
    );
}

#[test]
fn continued_lines_and_other_programs() {
    let daemon = commands_in("x.md", PAGE, "warrend");
    assert_eq!(daemon.len(), 1);
    assert_eq!(
        daemon[0].args,
        [
            "warrend",
            "--config",
            "/etc/warren/config.toml",
            "--port",
            "51820"
        ]
    );
    assert_eq!(daemon[0].line, 10);
    let coordinator = commands_in("x.md", PAGE, "warren-coordinator");
    assert_eq!(coordinator[0].args, ["warren-coordinator", "serve"]);
}

#[test]
fn shell_words_follow_quotes_and_escapes() {
    assert_eq!(
        shell_words(r#"a "b c" 'd "e"' f\ g "h\"i""#).unwrap(),
        ["a", "b c", "d \"e\"", "f g", "h\"i"]
    );
    assert_eq!(shell_words("x 'open"), None);
    assert_eq!(shell_words("''").unwrap(), [""]);
}

#[test]
fn messages_are_headings_split_at_ellipses() {
    let page = "## Joining\n\n### `wrong password for …: ask the owner`\n\ntext\n### `ok`\n";
    let listed = listed_messages(page);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].line, 3);
    assert_eq!(listed[0].pieces, ["wrong password for", ": ask the owner"]);
    assert!(listed[1].pieces.is_empty(), "too short to search for");
    let sources = r#"bail!("wrong password for {name}: ask the owner")"#;
    assert!(stale_messages(&listed, sources).is_empty());
    let changed = r#"bail!("wrong password for {name}; ask the owner")"#;
    let stale = stale_messages(&listed, changed);
    assert_eq!(stale.len(), 1);
    assert!(stale[0].contains(": ask the owner"), "{stale:?}");
}

#[test]
fn the_repository_has_docs_and_sources() {
    let root = repo_root();
    let files = doc_files(&root);
    assert!(files.iter().any(|f| f.ends_with("README.md")));
    assert!(message_sources(&root).contains("fn main()"));
}

#[test]
fn link_targets_are_read_from_markdown_links() {
    assert_eq!(
        link_targets(
            "see [a](docs/a.md) and [b](../b.md#part), [c](https://x.org) [d](not a link)"
        ),
        ["docs/a.md", "../b.md#part", "https://x.org"]
    );
}
