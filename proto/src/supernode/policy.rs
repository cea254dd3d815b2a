//! Which communities a supernode admits, and on what terms: the parsed community file.
//!
//! A community is admitted because it is **listed** by name (the supernode then knows its id, derived from
//! the name, and can check everything without the edge revealing the name), because its name matches a
//! **pattern** (the supernode cannot invert the id, so the edge must tell it the name: it is asked to with
//! NAK `NameRequired`), or because the supernode is **open** (no community file: any community).
//!
//! Per community the policy can hold an admission key (proof that the edge knows the secret), an address
//! pool for auto-assigned addresses, and a list of allowed edge public keys. A community with a key list is
//! *key-restricted*: edges of other keys are refused with `KeyNotAllowed`, a key removed on reload is cut
//! off (its registration dropped, its peers told with PEER_REVOKED), and edges are told to answer handshakes
//! only from peers the supernode introduced.

use std::collections::{HashMap, HashSet};

use crate::keys::{AdmissionKey, CommunityId, PublicKey};
use crate::wire::{Ipv4Net, NakReason};

/// The terms on which one listed community is admitted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommunityPolicy {
    /// Its name (for display; never on the wire).
    pub name: String,
    /// The admission key an edge must prove it holds, if any.
    pub admission: Option<AdmissionKey>,
    /// The subnet its auto-assigned addresses come from (else the supernode's default pool).
    pub pool: Option<Ipv4Net>,
    /// The edge public keys it admits; `None` admits any key.
    pub allowed_keys: Option<HashSet<PublicKey>>,
}

impl CommunityPolicy {
    /// A community admitted by name with no further condition.
    pub fn named(name: &str) -> CommunityPolicy {
        CommunityPolicy {
            name: name.to_string(),
            ..CommunityPolicy::default()
        }
    }

    /// Whether it lists the keys it allows.
    pub fn key_restricted(&self) -> bool {
        self.allowed_keys.is_some()
    }

    fn allows_key(&self, key: &PublicKey) -> bool {
        self.allowed_keys.as_ref().is_none_or(|k| k.contains(key))
    }
}

/// Communities admitted because their name matches a glob pattern (`*` any run, `?` one character).
/// They cannot have an admission key (the supernode would need one per matching name) nor a pool (each
/// matching community takes a subnet of the default pool); they can have a list of allowed keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatternPolicy {
    /// The pattern.
    pub pattern: String,
    /// The edge public keys every matching community admits; `None` admits any key.
    pub allowed_keys: Option<HashSet<PublicKey>>,
}

/// Which communities a supernode admits.
#[derive(Clone, Default, Debug)]
pub struct AdmissionPolicy {
    /// Admit communities neither listed nor matched by a pattern (without any proof: the supernode cannot
    /// check one).
    pub open: bool,
    /// Communities listed by name, by id.
    pub listed: HashMap<CommunityId, CommunityPolicy>,
    /// Name patterns, tried in order after `listed`.
    pub patterns: Vec<PatternPolicy>,
}

/// How one community is admitted under a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission<'a> {
    /// Listed by name.
    Listed(&'a CommunityPolicy),
    /// Its name (given by the edge or learned earlier) matches this pattern.
    Pattern(&'a PatternPolicy),
    /// The supernode is open.
    Open,
}

impl Admission<'_> {
    /// The admission key to check, if any.
    pub fn admission_key(&self) -> Option<&AdmissionKey> {
        match self {
            Admission::Listed(c) => c.admission.as_ref(),
            _ => None,
        }
    }

    /// Whether the community lists the keys it allows.
    pub fn key_restricted(&self) -> bool {
        match self {
            Admission::Listed(c) => c.key_restricted(),
            Admission::Pattern(p) => p.allowed_keys.is_some(),
            Admission::Open => false,
        }
    }

    /// Whether `key` may register.
    pub fn allows_key(&self, key: &PublicKey) -> bool {
        match self {
            Admission::Listed(c) => c.allows_key(key),
            Admission::Pattern(p) => p.allowed_keys.as_ref().is_none_or(|k| k.contains(key)),
            Admission::Open => true,
        }
    }
}

impl AdmissionPolicy {
    /// Admit everyone.
    pub fn open() -> AdmissionPolicy {
        AdmissionPolicy {
            open: true,
            ..AdmissionPolicy::default()
        }
    }

    /// How community `id` is admitted, given its name if known; `Err` says why not.
    pub fn admission(
        &self,
        id: &CommunityId,
        name: Option<&str>,
    ) -> Result<Admission<'_>, NakReason> {
        if let Some(c) = self.listed.get(id) {
            return Ok(Admission::Listed(c));
        }
        if !self.patterns.is_empty() {
            match name {
                Some(n) => {
                    if let Some(p) = self.patterns.iter().find(|p| glob_match(&p.pattern, n)) {
                        return Ok(Admission::Pattern(p));
                    }
                }
                None if !self.open => return Err(NakReason::NameRequired),
                None => {}
            }
        }
        if self.open {
            Ok(Admission::Open)
        } else {
            Err(NakReason::CommunityNotAllowed)
        }
    }

    /// The address pools of listed communities that have one.
    pub fn pools(&self) -> HashMap<CommunityId, Ipv4Net> {
        self.listed
            .iter()
            .filter_map(|(id, c)| c.pool.map(|p| (*id, p)))
            .collect()
    }
}

/// Glob matching: `*` matches any run of characters (also none), `?` exactly one; everything else itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // The classic linear backtracking matcher: remember the last `*` and retry one character later.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("office-*", "office-berlin"));
        assert!(glob_match("office-*", "office-"));
        assert!(!glob_match("office-*", "offices"));
        assert!(glob_match("lab-??", "lab-07"));
        assert!(!glob_match("lab-??", "lab-7"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn admission_order_and_name_required() {
        let mut p = AdmissionPolicy::default();
        p.listed.insert(
            CommunityId::from_name("home"),
            CommunityPolicy::named("home"),
        );
        p.patterns.push(PatternPolicy {
            pattern: "office-*".into(),
            allowed_keys: None,
        });
        let home = CommunityId::from_name("home");
        let berlin = CommunityId::from_name("office-berlin");
        assert!(matches!(p.admission(&home, None), Ok(Admission::Listed(_))));
        assert_eq!(p.admission(&berlin, None), Err(NakReason::NameRequired));
        assert!(matches!(
            p.admission(&berlin, Some("office-berlin")),
            Ok(Admission::Pattern(_))
        ));
        assert_eq!(
            p.admission(&CommunityId::from_name("x"), Some("x")),
            Err(NakReason::CommunityNotAllowed)
        );
        p.patterns.clear();
        assert_eq!(
            p.admission(&berlin, None),
            Err(NakReason::CommunityNotAllowed)
        );
    }
}
