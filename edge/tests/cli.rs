//! The edge's command line as a user meets it: help, configuration errors, the community key and
//! admission-key tools.
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
        "kdf_memory",
        "65536",
        "kdf_passes",
        "new-community-key",
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

fn new_key() -> String {
    let (code, out, err) = run(edge().arg("new-community-key"));
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

fn admission(secret: &str, extra: &[&str]) -> (i32, String, String) {
    run(edge()
        .args(["admission-key", "home"])
        .args(extra)
        .env("WEFT_KEY", secret))
}

#[test]
fn new_community_keys_are_random_recognised_and_used_as_they_are() {
    let (a, b) = (new_key(), new_key());
    assert_ne!(a, b);
    for k in [&a, &b] {
        assert!(k.starts_with("weftkey1-") && k.len() == 9 + 72, "{k}");
    }
    // A generated key draws no warning, and the Argon2id cost does not change its admission key.
    let (code, out, err) = admission(&a, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    let (_, cheap, _) = admission(&a, &["--kdf-memory", "8192", "--kdf-passes", "1"]);
    assert_eq!(out, cheap);
    let (_, other, _) = admission(&b, &[]);
    assert_ne!(out, other);
}

#[test]
fn malformed_keys_and_low_costs_are_refused_by_name() {
    let k = new_key();
    let cut = &k[..k.len() - 1];
    let (code, out, err) = admission(cut, &[]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert!(
        err.contains("WEFT_KEY") && err.contains("generated key"),
        "{err}"
    );
    assert!(!err.contains(cut), "the secret is echoed: {err}");
    let (code, _, err) = admission(
        "a strong enough passphrase, really",
        &["--kdf-memory", "4096"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--kdf-memory") && err.contains("8192"),
        "{err}"
    );
    let (code, _, err) = admission("a strong enough passphrase, really", &["--kdf-passes", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("--kdf-passes"), "{err}");

    // The daemon refuses the same key by file, line and option, without echoing it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("home.conf");
    std::fs::write(
        &path,
        format!("[community]\nname=home\nsupernode=127.0.0.1:7700\nkey={cut}\n"),
    )
    .unwrap();
    let (code, _, err) = run(edge().arg("start").arg(&path));
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{}:4", path.display()))
            && err.contains("key")
            && err.contains("generated key"),
        "{err}"
    );
    assert!(!err.contains(cut), "the secret is echoed: {err}");
    std::fs::write(
        &path,
        "[community]\nname=home\nsupernode=127.0.0.1:7700\nkey=pass\nkdf_passes=99\n",
    )
    .unwrap();
    let (code, _, err) = run(edge().arg("start").arg(&path));
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("{}:5", path.display())) && err.contains("kdf_passes"),
        "{err}"
    );
}

#[test]
fn weak_passphrases_are_warned_about_and_the_cost_counts() {
    let (code, slow, err) = admission("summer2023", &[]);
    assert_eq!(code, 0);
    assert!(
        err.contains("warning") && err.contains("weak") && err.contains("new-community-key"),
        "{err}"
    );
    let (_, cheap, _) = admission("summer2023", &["--kdf-memory", "8192", "--kdf-passes", "1"]);
    assert_ne!(slow, cheap, "the Argon2id cost does not change the key");
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
