//! A keyshare file is named `epoch_<E>_with_<D>_domains` exactly as mpc-node
//! writes it, and nothing else is one; the newest is the greatest epoch,
//! then the most domains.

use entrypoint::keyshare::KeyshareName;

fn name(epoch: u64, domains: u64) -> KeyshareName {
    KeyshareName { epoch, domains }
}

#[test]
fn the_names_the_node_writes_are_read_and_written_back() {
    for (text, parsed) in [
        ("epoch_0_with_1_domains", name(0, 1)),
        ("epoch_12_with_3_domains", name(12, 3)),
        (
            "epoch_18446744073709551615_with_18446744073709551615_domains",
            name(u64::MAX, u64::MAX),
        ),
    ] {
        assert_eq!(KeyshareName::parse(text), Some(parsed), "{text}");
        assert_eq!(parsed.to_string(), text);
    }
}

#[test]
fn nothing_else_is_a_keyshare_name() {
    for text in [
        "key",
        "",
        "epoch_1_with_1_domain",
        "epoch_1_with_1_domains.tmp",
        "epoch_1_with_1_domains/",
        ".epoch_1_with_1_domains",
        "epoch_01_with_1_domains",
        "epoch_1_with_01_domains",
        "epoch_+1_with_1_domains",
        "epoch_-1_with_1_domains",
        "epoch__with_1_domains",
        "epoch_1_with__domains",
        "epoch_1_with_1_2_domains",
        "epoch_ 1_with_1_domains",
        "epoch_18446744073709551616_with_1_domains",
        "EPOCH_1_WITH_1_DOMAINS",
        "keyshare_1_0_0",
    ] {
        assert_eq!(KeyshareName::parse(text), None, "{text:?}");
    }
}

#[test]
fn the_newest_is_the_greatest_epoch_then_the_most_domains() {
    let mut names = vec![name(2, 1), name(10, 1), name(2, 3), name(1, 9)];
    names.sort();
    assert_eq!(names, [name(1, 9), name(2, 1), name(2, 3), name(10, 1)]);
    assert_eq!(names.iter().max(), Some(&name(10, 1)));
}
