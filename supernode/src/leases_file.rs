//! Persisted address leases: `<state_dir>/leases`, one `community-id public-key address/prefix last-seen`
//! per line (last-seen: when the edge last registered, Unix seconds, so that a lease expires on time across
//! restarts), written atomically (temporary file, fsync, rename) so a crash never leaves half a file.
//! Files of earlier versions have no last-seen column; their leases count as seen at start-up.

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
        "# weft-supernode address leases: community-id public-key address/prefix last-seen-unix-seconds"
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
        let l = vec![
            Lease {
                community: CommunityId([1; 8]),
                edge: PublicKey([2; 32]),
                ip: "10.128.0.5/24".parse().unwrap(),
                last_seen: Some(1_800_000_000),
            },
            Lease {
                community: CommunityId([1; 8]),
                edge: PublicKey([3; 32]),
                ip: "10.128.0.6/24".parse().unwrap(),
                last_seen: Some(1_800_000_020),
            },
        ];
        save(dir.path(), &l).unwrap();
        assert_eq!(load(dir.path()).unwrap(), l);
        let text = fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(
            text.lines().nth(1).unwrap().ends_with(" 1800000000"),
            "{text}"
        );
        fs::write(dir.path().join(FILE), "junk line\n").unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("leases:1"), "{e}");
        let e = fs::write(
            dir.path().join(FILE),
            format!("{}\n{} yesterday\n", l[0].to_line(), l[1].to_line()),
        )
        .map(|_| load(dir.path()).unwrap_err().to_string())
        .unwrap();
        assert!(e.contains("leases:2") && e.contains("last-seen"), "{e}");
    }

    #[test]
    fn reads_the_format_of_earlier_versions() {
        let dir = tempfile::tempdir().unwrap();
        // Exactly what earlier versions wrote: a header and three columns.
        let c = CommunityId([1; 8]);
        let k = PublicKey([2; 32]);
        fs::write(
            dir.path().join(FILE),
            format!(
                "# weft-supernode address leases: community-id public-key address/prefix\n{c} {k} 10.128.0.5/24\n"
            ),
        )
        .unwrap();
        let got = load(dir.path()).unwrap();
        assert_eq!(
            got,
            vec![Lease {
                community: c,
                edge: k,
                ip: "10.128.0.5/24".parse().unwrap(),
                last_seen: None,
            }]
        );
        // Saved again, it gains the column.
        let mut l = got;
        l[0].last_seen = Some(1_800_000_000);
        save(dir.path(), &l).unwrap();
        assert_eq!(load(dir.path()).unwrap(), l);
    }
}
