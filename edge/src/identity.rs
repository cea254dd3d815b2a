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
        Ok(text) => {
            let mut private = [0u8; 32];
            decode_hex(text.trim(), &mut private)
                .map_err(|e| anyhow::anyhow!("{}: {e} (expected 64 hex digits)", path.display()))?;
            Ok(StaticKeypair::from_private(private))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(state_dir).with_context(|| {
                format!("cannot create state directory {}", state_dir.display())
            })?;
            let _ = fs::set_permissions(state_dir, fs::Permissions::from_mode(0o700));
            let private: [u8; 32] = rand::random();
            let hex: String = private.iter().map(|b| format!("{b:02x}")).collect();
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            writeln!(f, "{hex}").with_context(|| format!("cannot write {}", path.display()))?;
            f.sync_all()?;
            tracing::info!("created a new identity in {}", path.display());
            Ok(StaticKeypair::from_private(private))
        }
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    }
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
}
