//! Least privilege without systemd: a daemon started as root with `[daemon] user` set prepares its state
//! and runtime directories for that user, binds what needs root, then becomes that user, keeping only the
//! capabilities it still needs (the edge: `CAP_NET_ADMIN`, to create the TAP device and set the address
//! a supernode assigns; the supernode: none).
//!
//! The switch happens before the tokio runtime exists, while the process has one thread: capability sets
//! are per thread, and a thread started earlier would keep root's.
//!
//! Under systemd none of this runs: the unit starts the daemon as the user `weft` with
//! `AmbientCapabilities=` (see packaging/systemd/), and `[daemon] user` is ignored when not root.
//!
//! Crates: `nix` for the user database, setgroups/setresgid/setresuid and chown; `caps` for the
//! capability sets (permitted, effective, inheritable, ambient, bounding) and the keep-caps bit.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Uid, User};

pub use caps::Capability as Cap;

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    Uid::effective().is_root()
}

/// The user to become: `[daemon] user`, looked up in the user database.
#[derive(Debug, Clone)]
pub struct RunAs {
    /// The user's name.
    pub name: String,
    /// Its uid.
    pub uid: Uid,
    /// Its primary group.
    pub gid: Gid,
}

impl RunAs {
    /// Looks the user up.
    pub fn lookup(name: &str) -> Result<RunAs> {
        let user = User::from_name(name)
            .with_context(|| format!("cannot look up user {name:?}"))?
            .with_context(|| {
                format!("[daemon] user: no user {name:?} on this system (the Debian package creates \"weft\")")
            })?;
        Ok(RunAs {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
        })
    }
}

/// The user to switch to, when there is one to switch to: `[daemon] user` is set and we are root. Not
/// root with a user set (as under systemd, which starts us as that user): nothing to do, said at debug
/// level, or as a warning when we run as someone else.
pub fn planned(user: Option<&str>) -> Result<Option<RunAs>> {
    let Some(name) = user else { return Ok(None) };
    if !is_root() {
        let me = Uid::effective();
        match User::from_uid(me).ok().flatten() {
            Some(u) if u.name == name => {
                tracing::debug!("already running as {name}")
            }
            _ => tracing::warn!(
                "[daemon] user = {name} is ignored: not started as root (running as uid {me})"
            ),
        }
        return Ok(None);
    }
    RunAs::lookup(name).map(Some)
}

/// Creates `dir` (and missing parents, as root-owned 0755 directories) with `mode`, and gives it and the
/// files directly in it to `user`, as systemd's `StateDirectory=`/`RuntimeDirectory=` do: the daemon
/// writes there after it stopped being root.
pub fn prepare_dir(dir: &Path, mode: u32, user: &RunAs) -> Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .mode(mode)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let chown = |p: &Path| {
        nix::unistd::chown(p, Some(user.uid), Some(user.gid))
            .with_context(|| format!("cannot give {} to {}", p.display(), user.name))
    };
    chown(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            chown(&entry.path())?;
        }
    }
    Ok(())
}

/// Becomes `user` for good, keeping `keep` in the permitted and effective sets and nothing else: the
/// bounding set is cut down to `keep`, the inheritable and ambient sets are emptied, supplementary
/// groups dropped, and no_new_privs set. Must be called while the process has a single thread.
pub fn drop_to(user: &RunAs, keep: &[Capability]) -> Result<()> {
    let keep: CapsHashSet = keep.iter().copied().collect();
    // Keep the permitted set across the uid change; trimmed to `keep` right after.
    caps::securebits::set_keepcaps(true).context("PR_SET_KEEPCAPS")?;
    let bounding = caps::read(None, CapSet::Bounding).context("reading the bounding set")?;
    for cap in bounding.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *cap)
            .with_context(|| format!("dropping {cap} from the bounding set"))?;
    }
    nix::unistd::setgroups(&[]).context("setgroups")?;
    nix::unistd::setresgid(user.gid, user.gid, user.gid).context("setresgid")?;
    nix::unistd::setresuid(user.uid, user.uid, user.uid).context("setresuid")?;
    caps::set(None, CapSet::Permitted, &keep).context("setting the permitted set")?;
    caps::set(None, CapSet::Effective, &keep).context("setting the effective set")?;
    caps::clear(None, CapSet::Inheritable).context("clearing the inheritable set")?;
    // The ambient set may be unsupported by an old kernel: then it is empty anyway.
    let _ = caps::clear(None, CapSet::Ambient);
    caps::securebits::set_keepcaps(false).context("clearing PR_SET_KEEPCAPS")?;
    nix::sys::prctl::set_no_new_privs().context("PR_SET_NO_NEW_PRIVS")?;
    // Prove it: no way back to root.
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        bail!("could still become root after dropping privileges");
    }
    let left = caps::read(None, CapSet::Permitted)?;
    if left != keep {
        bail!("permitted capabilities after the drop are {left:?}, expected {keep:?}");
    }
    tracing::info!(
        "running as {} (uid {}, gid {}) with capabilities {:?}",
        user.name,
        user.uid,
        user.gid,
        keep
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_is_a_clear_error() {
        let e = RunAs::lookup("no-such-user-weft-test").unwrap_err();
        assert!(format!("{e:#}").contains("no user"), "{e:#}");
    }

    #[test]
    fn no_user_no_plan() {
        assert!(planned(None).unwrap().is_none());
    }

    // Dropping privileges for real would change the whole test process: the end-to-end package test
    // (tests/tests/package.rs) starts the installed daemons as root with `user = weft` and reads their
    // uid and capability sets from /proc.
}
