//! The supernode's command line as a user meets it: help and configuration errors.
//! (These also make `cargo test --workspace` build the weft-supernode binary the end-to-end tests run.)

use std::process::Command;

fn sn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weft-supernode"))
}

#[test]
fn help_config_lists_every_option() {
    let out = sn().args(["help", "config"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "[connection]",
        "0.0.0.0:7700",
        "community_file",
        "auto_ip_min",
        "auto_ip_max",
        "state_dir",
        "runtime_dir",
        "verbose",
    ] {
        assert!(text.contains(opt), "help config lacks {opt}:\n{text}");
    }
}

#[test]
fn bad_config_and_bad_community_file_are_reported_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("sn.conf");
    std::fs::write(&conf, "[connection]\nbind=0.0.0.0:7700\n[supernodes]\n").unwrap();
    let out = sn().arg("start").arg(&conf).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains(&format!("{}:3", conf.display())) && err.contains("supernodes"),
        "{err}"
    );

    let list = dir.path().join("communities");
    std::fs::write(&list, "home\nwork not-a-key\n").unwrap();
    std::fs::write(
        &conf,
        format!("[supernode]\ncommunity_file={}\n", list.display()),
    )
    .unwrap();
    let out = sn().arg("start").arg(&conf).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains(&format!("{}:2", list.display())) && err.contains("work"),
        "{err}"
    );
}
