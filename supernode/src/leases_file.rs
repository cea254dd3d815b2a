//! Persisted address leases: `<state_dir>/leases`, one `community-id public-key address/prefix` per line,
//! written atomically (temporary file, fsync, rename) so a crash never leaves half a file.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use weft_proto::supernode::Lease;

const FILE: &str = "leases";

/// Loads the leases; a missing file is an empty table, a malformed line an error naming it.
pub fn load(state_dir: &Path) -> Result<Vec<Lease>> {
    let path = state_dir.join(FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| Lease::from_line(l).map_err(|e| anyhow!("{}:{}: {e}", path.display(), i + 1)))
        .collect()
}

/// Saves the leases.
pub fn save(state_dir: &Path, leases: &[Lease]) -> Result<()> {
    fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
    let tmp = state_dir.join(format!("{FILE}.tmp"));
    let mut f =
        fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    writeln!(
        f,
        "# weft-supernode address leases: community-id public-key address/prefix"
    )?;
    for l in leases {
        writeln!(f, "{}", l.to_line())?;
    }
    f.sync_all()?;
    fs::rename(&tmp, state_dir.join(FILE))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_proto::keys::{CommunityId, PublicKey};

    #[test]
    fn save_then_load() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        let l = vec![Lease {
            community: CommunityId([1; 8]),
            edge: PublicKey([2; 32]),
            ip: "10.128.0.5/24".parse().unwrap(),
        }];
        save(dir.path(), &l).unwrap();
        assert_eq!(load(dir.path()).unwrap(), l);
        fs::write(dir.path().join(FILE), "junk line\n").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("leases:1"), "{e}");
    }
}
