//! The community file: which communities a supernode serves, and which of them require proof of the secret.
//!
//! ```text
//! # name            admission key (optional; from `weft-edge admission-key NAME`)
//! family
//! servers           3f1c...64 hex digits
//! ```

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use weft_proto::keys::{AdmissionKey, CommunityId};
use weft_proto::supernode::AdmissionPolicy;

/// Parses the file's text into a closed policy (only listed communities are admitted).
pub fn parse(path: &Path, text: &str) -> Result<AdmissionPolicy> {
    let mut listed = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let mut words = line.split_whitespace();
        let name = words.next().expect("non-empty line has a word");
        if name.len() > 64 {
            return Err(anyhow!("{}: community name longer than 64 bytes", at()));
        }
        let key = match words.next() {
            Some(hex) => {
                let mut k = [0u8; 32];
                weft_proto::keys::decode_hex(hex, &mut k).map_err(|e| {
                    anyhow!(
                        "{}: admission key of '{name}': {e} (expected 64 hex digits)",
                        at()
                    )
                })?;
                Some(AdmissionKey(k))
            }
            None => None,
        };
        if words.next().is_some() {
            return Err(anyhow!("{}: expected 'name [admission-key]'", at()));
        }
        if listed
            .insert(CommunityId::from_name(name), (name.to_string(), key))
            .is_some()
        {
            return Err(anyhow!("{}: community '{name}' listed twice", at()));
        }
    }
    Ok(AdmissionPolicy {
        open: false,
        listed,
    })
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

    #[test]
    fn names_keys_comments_and_errors() {
        let key = CommunityKeys::derive("servers", b"s").admission.to_string();
        let text = format!("# comment\nfamily\n\nservers {key}  # with proof\n");
        let p = parse(Path::new("/etc/weft/communities"), &text).unwrap();
        assert!(!p.open);
        assert_eq!(p.listed.len(), 2);
        let (name, k) = &p.listed[&CommunityId::from_name("servers")];
        assert_eq!(name, "servers");
        assert!(k.is_some());
        assert!(p.listed[&CommunityId::from_name("family")].1.is_none());

        let e = parse(Path::new("/c"), "family\nservers zz\n")
            .err()
            .expect("an error")
            .to_string();
        assert!(e.starts_with("/c:2:"), "{e}");
        let e = parse(Path::new("/c"), "a\na\n")
            .err()
            .expect("an error")
            .to_string();
        assert!(e.contains("/c:2") && e.contains("twice"), "{e}");
        let e = parse(Path::new("/c"), "a b c\n")
            .err()
            .expect("an error")
            .to_string();
        assert!(e.contains("/c:1"), "{e}");
    }
}
