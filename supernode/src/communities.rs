//! The community file (`[supernode] community_file`): which communities a supernode serves, and on what
//! terms. One entry per community; an entry starts at the beginning of a line and may continue on the
//! following indented lines. `#` starts a comment.
//!
//! ```text
//! # name          options
//! family                                  # admitted, no condition
//! servers         3f1c...64 hex digits    # with an admission key (`weft-edge admission-key NAME`)
//! home            key=3f1c...  pool=10.10.0.0/24
//!                 allow=8520f0...64 hex   # laptop (`weft-edge show-key` on it)
//!                 allow=1a2b3c...,77aa... # phone, tablet
//! office-*        allow=                  # a pattern; `allow=` alone: no key allowed yet
//! ```
//!
//! - `NAME [ADMISSION-KEY]`: the one-line form of earlier versions, still valid.
//! - `key=HEX`: the admission key (the same as the second word): edges must prove they know the secret.
//! - `pool=NET/LEN`: auto-assigned addresses of this community come from this network (else the
//!   supernode's `auto_ip_min`..`auto_ip_max` range, a /24 per community). Pools must not overlap.
//! - `allow=HEX[,HEX...]` (repeatable): the community admits only these edge public keys; an entry with
//!   any `allow=` (even empty) is key-restricted. Removing a key and reloading cuts that edge off at once.
//!   Removing *every* `allow=` makes the community admit any key again: leave an empty `allow=` to keep
//!   it closed.
//! - A name with `*` or `?` is a pattern (glob): it admits every community whose name matches. The
//!   supernode only sees community ids, so it asks edges of unknown ids for their name (NAK
//!   `NameRequired`), which reveals that name to it and to the path. A pattern can have `allow=`, not
//!   `key=` (the supernode would need a key per name) nor `pool=` (each matching community takes a
//!   subnet of the default range).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use weft_proto::keys::{AdmissionKey, CommunityId, PublicKey};
use weft_proto::supernode::{AdmissionPolicy, CommunityPolicy, PatternPolicy};
use weft_proto::wire::Ipv4Net;

/// One entry while it is being read.
struct Entry {
    line: usize,
    name: String,
    key: Option<AdmissionKey>,
    pool: Option<Ipv4Net>,
    allow: Option<HashSet<PublicKey>>,
}

fn is_pattern(name: &str) -> bool {
    name.contains(['*', '?'])
}

/// Parses the file's text into a closed policy (only listed or matched communities are admitted).
pub fn parse(path: &Path, text: &str) -> Result<AdmissionPolicy> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("");
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        let mut words = line.split_whitespace().peekable();
        if !line.starts_with([' ', '\t']) {
            let name = words.next().expect("non-empty line has a word");
            if name.len() > 64 {
                bail!("{at}: community name longer than 64 bytes");
            }
            if name.contains('=') {
                bail!("{at}: expected a community name first, found option '{name}'");
            }
            let mut e = Entry {
                line: i + 1,
                name: name.to_string(),
                key: None,
                pool: None,
                allow: None,
            };
            // The one-line form of earlier versions: `name admission-key`.
            if let Some(w) = words.peek() {
                if !w.contains('=') {
                    e.key = Some(admission_key(&at, &e.name, w)?);
                    words.next();
                }
            }
            entries.push(e);
        } else if entries.is_empty() {
            bail!("{at}: an indented line continues the entry above, but there is none");
        }
        let e = entries.last_mut().expect("an entry");
        for w in words {
            let Some((opt, value)) = w.split_once('=') else {
                bail!(
                    "{at}: '{w}' in the entry of '{}': expected option=value (key=, pool=, allow=)",
                    e.name
                );
            };
            match opt {
                "key" => {
                    if e.key.is_some() {
                        bail!("{at}: option 'key' given twice for '{}'", e.name);
                    }
                    e.key = Some(admission_key(&at, &e.name, value)?);
                }
                "pool" => {
                    if e.pool.is_some() {
                        bail!("{at}: option 'pool' given twice for '{}'", e.name);
                    }
                    let net: Ipv4Net = value.parse().map_err(|err| {
                        anyhow!(
                            "{at}: option 'pool' of '{}': {err} (e.g. pool=10.10.0.0/24)",
                            e.name
                        )
                    })?;
                    if !(8..=30).contains(&net.prefix) {
                        bail!(
                            "{at}: option 'pool' of '{}': prefix length must be 8 to 30",
                            e.name
                        );
                    }
                    e.pool = Some(net);
                }
                "allow" => {
                    let set = e.allow.get_or_insert_with(HashSet::new);
                    for k in value.split(',').filter(|k| !k.is_empty()) {
                        let key: PublicKey = k.parse().map_err(|err| {
                            anyhow!(
                                "{at}: option 'allow' of '{}': '{k}': {err} (expected an edge public key, 64 hex digits, as `weft-edge show-key` prints it)",
                                e.name
                            )
                        })?;
                        set.insert(key);
                    }
                }
                other => bail!(
                    "{at}: unknown option '{other}' for '{}' (options: key=, pool=, allow=)",
                    e.name
                ),
            }
        }
    }

    let mut listed = HashMap::new();
    let mut patterns = Vec::new();
    let mut pools: Vec<(Ipv4Net, String)> = Vec::new();
    for e in entries {
        let at = format!("{}:{}", path.display(), e.line);
        if is_pattern(&e.name) {
            if e.key.is_some() {
                bail!("{at}: pattern '{}' cannot have an admission key (the supernode would need one per community name); list those communities by name instead", e.name);
            }
            if e.pool.is_some() {
                bail!("{at}: pattern '{}' cannot have a pool (each matching community gets a subnet of auto_ip_min..auto_ip_max); list the community by name to give it a pool", e.name);
            }
            if patterns.iter().any(|p: &PatternPolicy| p.pattern == e.name) {
                bail!("{at}: pattern '{}' listed twice", e.name);
            }
            patterns.push(PatternPolicy {
                pattern: e.name,
                allowed_keys: e.allow,
            });
            continue;
        }
        if let Some(net) = e.pool {
            let mask = |p: u8| u32::MAX << (32 - p);
            let n = u32::from(net.addr);
            if let Some((_, other)) = pools.iter().find(|(o, _)| {
                let m = mask(o.prefix.min(net.prefix));
                u32::from(o.addr) & m == n & m
            }) {
                bail!(
                    "{at}: option 'pool' of '{}': {net} overlaps the pool of '{other}'",
                    e.name
                );
            }
            pools.push((net, e.name.clone()));
        }
        let policy = CommunityPolicy {
            name: e.name.clone(),
            admission: e.key,
            pool: e.pool.map(|n| Ipv4Net {
                addr: std::net::Ipv4Addr::from(u32::from(n.addr) & (u32::MAX << (32 - n.prefix))),
                prefix: n.prefix,
            }),
            allowed_keys: e.allow,
        };
        if listed
            .insert(CommunityId::from_name(&e.name), policy)
            .is_some()
        {
            bail!("{at}: community '{}' listed twice", e.name);
        }
    }
    Ok(AdmissionPolicy {
        open: false,
        listed,
        patterns,
    })
}

fn admission_key(at: &str, name: &str, hex: &str) -> Result<AdmissionKey> {
    let mut k = [0u8; 32];
    weft_proto::keys::decode_hex(hex, &mut k).map_err(|e| {
        anyhow!("{at}: admission key of '{name}': {e} (expected 64 hex digits, from `weft-edge admission-key {name}`)")
    })?;
    Ok(AdmissionKey(k))
}

/// Reads and parses the community file.
pub fn load(path: &Path) -> Result<AdmissionPolicy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read community file {}", path.display()))?;
    parse(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_proto::keys::CommunityKeys;

    fn err(text: &str) -> String {
        parse(Path::new("/c"), text)
            .expect_err("an error")
            .to_string()
    }

    #[test]
    fn names_keys_comments_and_errors() {
        let key = CommunityKeys::from_key_material("servers", b"s")
            .admission
            .to_string();
        let text = format!("# comment\nfamily\n\nservers {key}  # with proof\n");
        let p = parse(Path::new("/etc/weft/communities"), &text).unwrap();
        assert!(!p.open);
        assert_eq!(p.listed.len(), 2);
        let c = &p.listed[&CommunityId::from_name("servers")];
        assert_eq!(c.name, "servers");
        assert!(c.admission.is_some());
        assert!(p.listed[&CommunityId::from_name("family")]
            .admission
            .is_none());

        let e = err("family\nservers zz\n");
        assert!(e.starts_with("/c:2:"), "{e}");
        let e = err("a\na\n");
        assert!(e.contains("/c:2") && e.contains("twice"), "{e}");
        let e = err("a b c\n");
        assert!(e.contains("/c:1"), "{e}");
    }

    #[test]
    fn options_continuations_and_patterns() {
        let adm = CommunityKeys::from_key_material("home", b"s")
            .admission
            .to_string();
        let (k1, k2, k3) = ("11".repeat(32), "22".repeat(32), "33".repeat(32));
        let text = format!(
            "home key={adm} pool=10.10.0.7/24\n   allow={k1}  # laptop\n\tallow={k2},{k3}\n\
             closed allow=\noffice-* allow={k1}\nlab-??\n"
        );
        let p = parse(Path::new("/c"), &text).unwrap();
        let home = &p.listed[&CommunityId::from_name("home")];
        assert!(home.admission.is_some());
        assert_eq!(home.pool.unwrap().to_string(), "10.10.0.0/24");
        let allowed = home.allowed_keys.as_ref().unwrap();
        assert_eq!(allowed.len(), 3);
        assert!(allowed.contains(&k2.parse().unwrap()));
        let closed = &p.listed[&CommunityId::from_name("closed")];
        assert_eq!(closed.allowed_keys.as_ref().map(|k| k.len()), Some(0));
        assert_eq!(p.patterns.len(), 2);
        assert_eq!(p.patterns[0].pattern, "office-*");
        assert!(p.patterns[0].allowed_keys.is_some());
        assert!(p.patterns[1].allowed_keys.is_none());
        assert_eq!(p.listed.len(), 2);
    }

    #[test]
    fn errors_name_the_line_and_the_option() {
        let e = err("home\n  pol=10.0.0.0/24\n");
        assert!(
            e.starts_with("/c:2:") && e.contains("unknown option 'pol'"),
            "{e}"
        );
        let e = err("home pool=10.0.0.0/33\n");
        assert!(e.starts_with("/c:1:") && e.contains("'pool'"), "{e}");
        let e = err("home pool=10.0.0.0/31\n");
        assert!(e.contains("8 to 30"), "{e}");
        let e = err("a\n\nb\n   allow=abc\n");
        assert!(e.starts_with("/c:4:") && e.contains("'allow'"), "{e}");
        let e = err("   allow=\n");
        assert!(e.starts_with("/c:1:") && e.contains("continues"), "{e}");
        let e = err("office-* key=\n");
        assert!(e.starts_with("/c:1:"), "{e}");
        let e = err(&format!("office-* key={}\n", "00".repeat(32)));
        assert!(e.contains("cannot have an admission key"), "{e}");
        let e = err("office-* pool=10.0.0.0/24\n");
        assert!(e.contains("cannot have a pool"), "{e}");
        let e = err("a pool=10.0.0.0/16\nb pool=10.0.5.0/24\n");
        assert!(
            e.starts_with("/c:2:") && e.contains("overlaps the pool of 'a'"),
            "{e}"
        );
        let e = err("a key=1 key=2\n");
        assert!(e.starts_with("/c:1:"), "{e}");
        let e = err("a allow=x junk\n");
        assert!(e.starts_with("/c:1:"), "{e}");
        let e = err("a\n  junk\n");
        assert!(e.starts_with("/c:2:") && e.contains("option=value"), "{e}");
    }
}
