//! A malformed command line exits 64 (EX_USAGE) whatever the subcommand, apart
//! from doctor's 0 / 1 / 2; asking for help or the version still exits 0.

use agent_tests::harness::agent_output;

const USAGE: i32 = 64;

/// The subcommands `agent --help` lists (without clap's own `help`).
fn subcommands() -> Vec<String> {
    let out = agent_output(&["--help"], &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let commands = out
        .stdout
        .split_once("Commands:\n")
        .expect("agent --help lists its commands")
        .1;
    // A command's line is indented by two; its wrapped help lines, by more.
    commands
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn help_lists_every_subcommand_these_tests_cover() {
    let listed = subcommands();
    for name in ["run", "exec", "init", "keys", "doctor", "health", "config"] {
        assert!(listed.iter().any(|l| l == name), "{name} not in {listed:?}");
    }
}

#[test]
fn an_unknown_flag_exits_64_for_every_subcommand() {
    for name in subcommands() {
        // A mistyped flag before exec's command is refused, not run as the command.
        let args: Vec<&str> = match name.as_str() {
            "exec" => vec!["exec", "--no-such-flag", "--", "true"],
            name => vec![name, "--no-such-flag"],
        };
        let out = agent_output(&args, &[]);
        assert_eq!(out.code, USAGE, "agent {args:?}: {}", out.stderr);
        assert!(out.stderr.contains("--no-such-flag"), "{}", out.stderr);
    }
}

#[test]
fn a_flag_without_its_value_exits_64_for_every_subcommand() {
    for name in subcommands() {
        let out = agent_output(&[name.as_str(), "--config"], &[]);
        assert_eq!(out.code, USAGE, "agent {name} --config: {}", out.stderr);
    }
}

#[test]
fn an_invalid_value_exits_64() {
    for args in [
        ["doctor", "--timeout", "soon"],
        ["health", "--timeout", "soon"],
    ] {
        let out = agent_output(&args, &[]);
        assert_eq!(out.code, USAGE, "agent {args:?}: {}", out.stderr);
    }
}

#[test]
fn a_missing_command_or_subcommand_exits_64() {
    for args in [&[][..], &["exec"][..], &["no-such-command"][..]] {
        let out = agent_output(args, &[]);
        assert_eq!(out.code, USAGE, "agent {args:?}: {}", out.stderr);
    }
}

#[test]
fn help_and_version_exit_0() {
    let mut lines: Vec<Vec<String>> = vec![
        vec!["--help".into()],
        vec!["-h".into()],
        vec!["help".into()],
        vec!["--version".into()],
        vec!["-V".into()],
    ];
    for name in subcommands() {
        lines.push(vec![name.clone(), "--help".into()]);
        lines.push(vec!["help".into(), name]);
    }
    for args in lines {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = agent_output(&args, &[]);
        assert_eq!(out.code, 0, "agent {args:?}: {}", out.stderr);
        assert!(!out.stdout.is_empty(), "agent {args:?} printed nothing");
    }
}
