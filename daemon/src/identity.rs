//! A daemon's identity: a static X25519 key pair kept in its state directory, created on first start.
//!
//! An edge's public key is its name in the mesh: the supernode leases its virtual address to it, peers
//! authenticate it in every handshake, and the default MAC address is derived from it. A supernode's public
//! key is what edges pin: every control session with it proves it. So the file must survive restarts, and
//! only the daemon's user may read it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use weft_config::Schema;
use weft_proto::keys::{decode_hex, StaticKeypair};

use crate::StartArgs;

/// Which daemon's identity, for `keygen` and `show-key`: the session or config file as for `start` (its
/// `[daemon] state_dir`), or a state directory given directly.
#[derive(clap::Args)]
pub struct KeyArgs {
    /// A session name (reads /etc/weft/<session>.conf) or a path to a config file.
    #[arg(required_unless_present = "state_dir", conflicts_with = "state_dir")]
    session: Option<String>,
    /// Override an option: -O section.option=value (repeatable).
    #[arg(short = 'O', value_name = "SECTION.OPTION=VALUE")]
    overrides: Vec<String>,
    /// The state directory holding the identity (instead of a session).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

impl KeyArgs {
    fn state_dir(&self, schema: &Schema) -> Result<PathBuf> {
        if let Some(d) = &self.state_dir {
            return Ok(d.clone());
        }
        let args = StartArgs {
            session: self.session.clone().expect("clap requires one of the two"),
            overrides: self.overrides.clone(),
        };
        let cfg = crate::load_config(schema, &args)?;
        Ok(crate::Common::from_config(&cfg)?.state_dir)
    }

    /// `keygen` (with `Some(force)`) or `show-key` (with None): the public key, as one line.
    pub fn command(&self, program: &str, schema: &Schema, create: Option<bool>) -> Result<String> {
        let dir = self.state_dir(schema)?;
        let kp = match create {
            Some(force) => self::create(program, &dir, force)?,
            None => load(program, &dir)?,
        };
        Ok(kp.public.to_string())
    }
}

const FILE: &str = "identity.key";

/// Loads the identity from `state_dir`, or creates one there.
pub fn load_or_create(state_dir: &Path) -> Result<StaticKeypair> {
    let path = state_dir.join(FILE);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let kp = write_new(state_dir, false)?;
            tracing::info!("created a new identity in {}", path.display());
            Ok(kp)
        }
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    }
}

/// Loads the identity from `state_dir` (`PROGRAM show-key`); an error if there is none.
pub fn load(program: &str, state_dir: &Path) -> Result<StaticKeypair> {
    let path = state_dir.join(FILE);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} does not exist: this {} has no identity yet (create it with `{program} keygen`, or start it once)",
            path.display(),
            program.trim_start_matches("weft-")
        ),
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    }
}

/// Creates the identity in `state_dir` (`PROGRAM keygen`); refuses to replace one unless `force`.
pub fn create(program: &str, state_dir: &Path, force: bool) -> Result<StaticKeypair> {
    let path = state_dir.join(FILE);
    if path.exists() && !force {
        bail!(
            "{} exists already: this {} has an identity (`{program} show-key` prints it); --force replaces it, and {} then know it by the new key",
            path.display(),
            program.trim_start_matches("weft-"),
            if program == "weft-supernode" { "edges that pinned the old key refuse it until their pin is updated; they" } else { "peers and supernodes" }
        );
    }
    write_new(state_dir, force)
}

fn parse(path: &Path, text: &str) -> Result<StaticKeypair> {
    let mut private = [0u8; 32];
    decode_hex(text.trim(), &mut private)
        .map_err(|e| anyhow::anyhow!("{}: {e} (expected 64 hex digits)", path.display()))?;
    Ok(StaticKeypair::from_private(private))
}

/// Writes a new random identity, mode 0600. The file gets the owner of the state directory when that
/// directory already exists (so `keygen` run as root prepares it for a daemon that runs as
/// `weft`).
fn write_new(state_dir: &Path, replace: bool) -> Result<StaticKeypair> {
    use std::os::unix::fs::MetadataExt;
    let path = state_dir.join(FILE);
    let existed = state_dir.is_dir();
    fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
    let _ = fs::set_permissions(state_dir, fs::Permissions::from_mode(0o700));
    let private: [u8; 32] = rand::random();
    let hex: String = private.iter().map(|b| format!("{b:02x}")).collect();
    // Written beside and renamed over, so a replaced identity is never half written.
    let tmp = state_dir.join(format!("{FILE}.new"));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    writeln!(f, "{hex}").with_context(|| format!("cannot write {}", tmp.display()))?;
    f.sync_all()?;
    if existed {
        if let Ok(m) = fs::metadata(state_dir) {
            let _ = std::os::unix::fs::chown(&tmp, Some(m.uid()), Some(m.gid()));
        }
    }
    if !replace && path.exists() {
        let _ = fs::remove_file(&tmp);
        bail!("{} appeared meanwhile; not replaced", path.display());
    }
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(StaticKeypair::from_private(private))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(&dir.path().join("s")).unwrap();
        let b = load_or_create(&dir.path().join("s")).unwrap();
        assert_eq!(a.public, b.public);
        let mode = fs::metadata(dir.path().join("s").join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::write(dir.path().join("s").join(FILE), "nothex").unwrap();
        assert!(load_or_create(&dir.path().join("s")).is_err());
    }

    #[test]
    fn keygen_refuses_to_overwrite_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("s");
        let p = "weft-edge";
        assert!(load(p, &s)
            .err()
            .unwrap()
            .to_string()
            .contains("weft-edge keygen"));
        let a = create(p, &s, false).unwrap();
        assert_eq!(load(p, &s).unwrap().public, a.public);
        let e = create(p, &s, false).err().unwrap().to_string();
        assert!(e.contains("--force"), "{e}");
        let e = create("weft-supernode", &s, false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("weft-supernode show-key") && e.contains("pinned"),
            "{e}"
        );
        assert_eq!(load_or_create(&s).unwrap().public, a.public);
        let b = create(p, &s, true).unwrap();
        assert_ne!(a.public, b.public);
        assert_eq!(load(p, &s).unwrap().public, b.public);
        let mode = fs::metadata(s.join(FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!s.join("identity.key.new").exists());
    }
}
