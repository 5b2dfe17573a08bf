//! The README's settings reference is what the agent itself prints.

use agent_tests::harness::agent_output;

#[test]
fn the_readme_settings_reference_matches_the_agent() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find("<!-- settings:start -->\n")
        .expect("settings start marker");
    let end = readme
        .find("<!-- settings:end -->")
        .expect("settings end marker");
    let documented = &readme[start + "<!-- settings:start -->\n".len()..end];
    let printed = agent_output(&["config", "--reference"], &[]).stdout + "\n";
    assert_eq!(
        documented, printed,
        "README.md's settings reference is stale; replace it with `agent config --reference`"
    );
}
