//! The edge's command line as a user meets it: help, configuration errors, the admission-key tool.
//! (These also make `cargo test --workspace` build the weft-edge binary the end-to-end tests run.)

use std::process::Command;

fn edge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weft-edge"))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_config_lists_every_option_with_defaults() {
    let (code, out, _) = run(edge().args(["help", "config"]));
    assert_eq!(code, 0);
    for opt in [
        "[community]",
        "name",
        "key",
        "key_file",
        "supernode",
        "[tuntap]",
        "address_mode",
        "macaddr",
        "mtu",
        "1400",
        "[connection]",
        "bind",
        "allow_p2p",
        "register_interval",
        "advertise",
        "[daemon]",
        "state_dir",
        "runtime_dir",
        "[logging]",
        "verbose",
    ] {
        assert!(out.contains(opt), "help config lacks {opt}:\n{out}");
    }
}

#[test]
fn config_errors_name_file_line_and_option() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home.conf");
    std::fs::write(
        &path,
        "[community]\nname=home\nkey=k\nsupernode=127.0.0.1:7700\n[tuntap]\nmtuu=1400\n",
    )
    .unwrap();
    let (code, _, err) = run(edge().arg("start").arg(&path));
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{}:6", path.display()))
            && err.contains("mtuu")
            && err.contains("mtu"),
        "{err}"
    );

    std::fs::write(
        &path,
        "[community]\nname=home\nkey=k\nsupernode=127.0.0.1:7700\n",
    )
    .unwrap();
    let (code, _, err) = run(edge()
        .arg("start")
        .arg(&path)
        .args(["-O", "tuntap.mtu=lots"]));
    assert_eq!(code, 2);
    assert!(
        err.contains("-O tuntap.mtu=lots") || err.contains("tuntap.mtu=lots"),
        "{err}"
    );
    assert!(err.contains("mtu"), "{err}");

    let (code, _, err) = run(edge().arg("start").arg(dir.path().join("missing.conf")));
    assert_eq!(code, 2);
    assert!(err.contains("missing.conf"), "{err}");
}

#[test]
fn secret_never_echoed_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.conf");
    std::fs::write(&path, "[community]\nname=home\nkey=TopSecret99\n").unwrap();
    let (code, _, err) = run(edge().arg("start").arg(&path));
    assert_eq!(code, 2);
    assert!(err.contains("supernode"), "{err}");
    assert!(!err.contains("TopSecret99"), "{err}");
}

#[test]
fn admission_key_depends_on_secret_and_name() {
    let (code, a, _) = run(edge()
        .args(["admission-key", "home"])
        .env("WEFT_KEY", "one"));
    assert_eq!(code, 0);
    let (_, b, _) = run(edge()
        .args(["admission-key", "home"])
        .env("WEFT_KEY", "two"));
    let (_, c, _) = run(edge()
        .args(["admission-key", "work"])
        .env("WEFT_KEY", "one"));
    let (_, a2, _) = run(edge()
        .args(["admission-key", "home"])
        .env("WEFT_KEY", "one"));
    assert!(a.starts_with("home ") && a.trim().len() == 5 + 64, "{a}");
    assert_eq!(a, a2);
    assert_ne!(a.split_whitespace().nth(1), b.split_whitespace().nth(1));
    assert_ne!(a.split_whitespace().nth(1), c.split_whitespace().nth(1));
    let (code, _, err) = run(edge()
        .args(["admission-key", "home"])
        .env_remove("WEFT_KEY"));
    assert_eq!(code, 2);
    assert!(err.contains("WEFT_KEY"), "{err}");
}

#[test]
fn version_names_the_git_revision_and_help_points_to_the_manual() {
    let (code, out, _) = run(edge().arg("--version"));
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!("weft-edge {} (git ", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    let (code, out, _) = run(edge().arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("man 8 weft-edge"), "{out}");
    assert!(out.lines().count() < 25, "--help should stay short:\n{out}");
}

#[test]
fn generates_its_man_page_completions_and_weft_conf() {
    let (code, out, _) = run(edge().args(["--generate", "man"]));
    assert_eq!(code, 0);
    assert!(out.contains("\n.TH weft-edge 8 "), "{out}");
    assert_eq!(out.matches(".ds Aq").count(), 2, "one preamble: {out}");
    assert!(
        out.contains("SIGHUP") && out.contains(".SH COMMANDS"),
        "{out}"
    );
    let (code, out, _) = run(edge().args(["--generate", "man-conf"]));
    assert_eq!(code, 0);
    for want in [
        ".TH WEFT.CONF 5",
        ".SS [community]",
        ".SS [supernode]",
        "community_file",
        "\\fBuser\\fR",
    ] {
        assert!(out.contains(want), "weft.conf(5) lacks {want}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, _) = run(edge().args(["--generate", &format!("complete-{shell}")]));
        assert_eq!(code, 0, "{shell}");
        assert!(out.contains("admission-key"), "{shell}: {out}");
    }
    let (code, _, err) = run(edge().args(["--generate", "nope"]));
    assert_eq!(code, 2);
    assert!(err.contains("unknown --generate kind"), "{err}");
}
