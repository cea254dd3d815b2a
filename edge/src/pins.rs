//! Supernode keys learned on first use: the state directory's `supernode-keys` file, one
//! `address key` line per supernode, so a key trusted once is checked on every later start.
//!
//! Keys in the configuration (`supernode = HOST[:PORT] KEY`) take precedence; this file only fills in
//! supernodes the configuration pins no key for.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use weft_proto::keys::PublicKey;

const FILE: &str = "supernode-keys";

/// The keys stored in `state_dir` (none if there is no file). A line that does not parse is skipped with
/// a warning naming it: the key of that supernode is then asked for again.
pub fn load(state_dir: &Path) -> BTreeMap<SocketAddr, PublicKey> {
    let path = state_dir.join(FILE);
    let Ok(text) = fs::read_to_string(&path) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = line.split_once(' ').and_then(|(a, k)| {
            Some((a.trim().parse::<SocketAddr>().ok()?, k.trim().parse().ok()?))
        });
        match parsed {
            Some((a, k)) => {
                out.insert(a, k);
            }
            None => tracing::warn!(
                "{}:{}: not 'address key'; ignored (that supernode's key will be asked for again)",
                path.display(),
                n + 1
            ),
        }
    }
    out
}

/// Adds (or replaces) the key of `addr` in `state_dir`'s file, written beside and renamed over.
pub fn store(state_dir: &Path, addr: SocketAddr, key: PublicKey) -> Result<()> {
    let mut all = load(state_dir);
    all.insert(addr, key);
    let path = state_dir.join(FILE);
    let tmp = state_dir.join(format!("{FILE}.new"));
    let mut f =
        fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    writeln!(
        f,
        "# Supernode keys this edge trusted on first use (address key); pin them in the configuration instead"
    )?;
    for (a, k) in &all {
        writeln!(f, "{a} {k}")?;
    }
    f.sync_all()?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_keys_load_back_and_bad_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_empty());
        let a: SocketAddr = "192.0.2.1:7700".parse().unwrap();
        let b: SocketAddr = "[2001:db8::1]:7700".parse().unwrap();
        store(dir.path(), a, PublicKey([1; 32])).unwrap();
        store(dir.path(), b, PublicKey([2; 32])).unwrap();
        store(dir.path(), a, PublicKey([3; 32])).unwrap();
        let m = load(dir.path());
        assert_eq!(m.len(), 2);
        assert_eq!(m[&a], PublicKey([3; 32]));
        assert_eq!(m[&b], PublicKey([2; 32]));
        let mut text = fs::read_to_string(dir.path().join(FILE)).unwrap();
        text.push_str("garbage\n192.0.2.9:1 nothex\n");
        fs::write(dir.path().join(FILE), text).unwrap();
        assert_eq!(load(dir.path()).len(), 2);
    }
}
