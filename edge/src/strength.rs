//! Whether a passphrase secret is easy to guess, and what to tell the user then.
//!
//! Argon2id makes each guess cost its memory and passes, but a passphrase from a dictionary, a name and a
//! year, or a keyboard walk is found within few guesses however slow each one is. The estimate is
//! zxcvbn's (the Rust port of Dropbox's estimator): it counts dictionary words, names, dates, sequences,
//! repeats and l33t substitutions, which a rule on length and character classes cannot ("Summer2023!"
//! has four classes and 11 characters, and falls at once).

use weft_proto::secret::CommunitySecret;

/// Below 10^12 estimated guesses a passphrase is weak: at the default Argon2id cost a GPU tries in the
/// order of ten thousand guesses a second, so 10^12 guesses keep a farm of a hundred GPUs busy for about
/// a fortnight, and each factor of ten below that takes a tenth of the time.
const MIN_GUESSES_LOG10: f64 = 12.0;

/// The warning for a weak passphrase secret of community `community`, or None (a generated key, or a
/// passphrase hard enough to guess).
pub fn weak_secret_warning(community: &str, secret: &CommunitySecret) -> Option<String> {
    let CommunitySecret::Passphrase(p) = secret else {
        return None;
    };
    let text = String::from_utf8_lossy(p);
    let estimate = zxcvbn::zxcvbn(&text, &[community, "weft"]);
    let log10 = estimate.guesses_log10();
    if log10 >= MIN_GUESSES_LOG10 {
        return None;
    }
    let why = estimate
        .feedback()
        .and_then(|f| f.warning())
        .map(|w| format!(" ({w})"))
        .unwrap_or_default();
    Some(format!(
        "the secret of community '{community}' is a weak passphrase: about 10^{log10:.0} guesses would find it{why}, and anyone who captured a registration or a handshake can try them offline. Use a generated key instead: run `weft-edge new-community-key`, put what it prints in [community] key (or key_file) on every edge of the community, and give the supernode the new admission key (`weft-edge admission-key {community}`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_proto::secret::GeneratedKey;

    fn passphrase(p: &str) -> CommunitySecret {
        CommunitySecret::Passphrase(p.as_bytes().to_vec())
    }

    #[test]
    fn weak_passphrases_are_named_and_told_what_to_do() {
        for weak in [
            "summer2023",
            "Summer2023!",
            "password",
            "home",
            "qwertyuiop",
            "homehome1",
        ] {
            let w = weak_secret_warning("home", &passphrase(weak))
                .unwrap_or_else(|| panic!("{weak} was not found weak"));
            assert!(
                w.contains("weft-edge new-community-key") && w.contains("'home'"),
                "{w}"
            );
        }
    }

    #[test]
    fn strong_passphrases_and_generated_keys_pass() {
        assert_eq!(
            weak_secret_warning("home", &passphrase("vQ7#pL2!zR9x@mK4^tW8")),
            None
        );
        assert_eq!(
            weak_secret_warning(
                "home",
                &passphrase("tangerine lobster quietly orbits a frozen accordion")
            ),
            None
        );
        let k = CommunitySecret::Generated(GeneratedKey::from_bytes([0; 32]));
        assert_eq!(weak_secret_warning("home", &k), None);
    }
}
