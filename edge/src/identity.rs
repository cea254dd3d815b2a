//! The edge's identity: a static X25519 key pair kept in its state directory, created on first start.
//!
//! The public key is the edge's name in the mesh: the supernode leases its virtual address to it, peers
//! authenticate it in every handshake, and the default MAC address is derived from it. So the file must
//! survive restarts, and only the daemon's user may read it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};
use weft_proto::keys::{decode_hex, StaticKeypair};

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

/// Loads the identity from `state_dir` (`weft-edge show-key`); an error if there is none.
pub fn load(state_dir: &Path) -> Result<StaticKeypair> {
    let path = state_dir.join(FILE);
    match fs::read_to_string(&path) {
        Ok(text) => parse(&path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} does not exist: this edge has no identity yet (create it with `weft-edge keygen`, or start the edge once)",
            path.display()
        ),
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    }
}

/// Creates the identity in `state_dir` (`weft-edge keygen`); refuses to replace one unless `force`.
pub fn create(state_dir: &Path, force: bool) -> Result<StaticKeypair> {
    let path = state_dir.join(FILE);
    if path.exists() && !force {
        bail!(
            "{} exists already: this edge has an identity (`weft-edge show-key` prints it); --force replaces it, and peers and supernodes then know the edge by the new key",
            path.display()
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
/// directory already exists (so `weft-edge keygen` run as root prepares it for a daemon that runs as
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
        assert!(load(&s).err().unwrap().to_string().contains("keygen"));
        let a = create(&s, false).unwrap();
        assert_eq!(load(&s).unwrap().public, a.public);
        let e = create(&s, false).err().unwrap().to_string();
        assert!(e.contains("--force"), "{e}");
        assert_eq!(load_or_create(&s).unwrap().public, a.public);
        let b = create(&s, true).unwrap();
        assert_ne!(a.public, b.public);
        assert_eq!(load(&s).unwrap().public, b.public);
        let mode = fs::metadata(s.join(FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!s.join("identity.key.new").exists());
    }
}
