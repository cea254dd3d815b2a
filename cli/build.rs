//! Records the git revision the binaries are built from, for `--version`.
//!
//! `WEFT_GIT_REV` wins (a build from a tarball, or a distribution build that knows its revision); else
//! `git rev-parse --short HEAD` in the source tree; else "unknown". Rebuilds when HEAD moves.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=WEFT_GIT_REV");
    let rev = match std::env::var("WEFT_GIT_REV") {
        Ok(r) if !r.trim().is_empty() => r.trim().to_string(),
        _ => {
            // Rebuild when HEAD, the branch it points to, or the packed refs change (also in a worktree).
            for p in ["HEAD", "packed-refs"] {
                if let Some(path) = git(&["rev-parse", "--git-path", p]) {
                    println!("cargo:rerun-if-changed={}", abs(&path));
                }
            }
            if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
                if let Some(path) = git(&["rev-parse", "--git-path", &head_ref]) {
                    println!("cargo:rerun-if-changed={}", abs(&path));
                }
            }
            git(&["rev-parse", "--short=10", "HEAD"]).unwrap_or_else(|| "unknown".into())
        }
    };
    println!("cargo:rustc-env=WEFT_GIT_REV={rev}");
}

/// `git rev-parse --git-path` answers relative to the working directory it ran in.
fn abs(p: &str) -> String {
    let path = Path::new(p);
    if path.is_absolute() {
        p.to_string()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(path)
            .display()
            .to_string()
    }
}
