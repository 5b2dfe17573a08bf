//! Checks for a person at a terminal: one line each with ✔ / ! / ✖ / –, the
//! fixes of the problems after, colour only on a TTY.

use std::io::IsTerminal;

use entrypoint::check::{Check, Status};

/// Prints `checks` under `title`.
pub fn print_section(title: &str, checks: &[Check]) {
    let colour = std::io::stdout().is_terminal();
    println!("{}", paint(title, BOLD, colour));
    let width = checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
    for check in checks {
        println!(
            "  {} {:<width$}  {}",
            paint(mark(check.status), status_colour(check.status), colour),
            check.id,
            check.cause
        );
    }
}

/// Prints the fixes of every failed or warned check and returns how many there are.
pub fn print_problems<'a>(checks: impl IntoIterator<Item = &'a Check>) -> usize {
    let colour = std::io::stdout().is_terminal();
    let problems: Vec<&Check> = checks
        .into_iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
        .collect();
    if problems.is_empty() {
        println!("\nno problems");
        return 0;
    }
    println!("\n{} problem(s):", problems.len());
    for p in &problems {
        println!(
            "  {} {}: {}",
            paint(mark(p.status), status_colour(p.status), colour),
            p.id,
            p.cause
        );
        if let Some(fix) = &p.fix {
            println!("    fix: {fix}");
        }
    }
    problems.len()
}

pub fn mark(status: Status) -> &'static str {
    match status {
        Status::Ok => "✔",
        Status::Warn => "!",
        Status::Fail => "✖",
        Status::Skipped => "–",
    }
}

const BOLD: &str = "1";

fn status_colour(status: Status) -> &'static str {
    match status {
        Status::Ok => "32",
        Status::Warn => "33",
        Status::Fail => "31",
        Status::Skipped => "2",
    }
}

fn paint(text: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}
