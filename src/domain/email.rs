//! One email address, one account: the normal form every email is stored and looked up in.
//!
//! Look-alikes must not become separate accounts (an attacker signing up as the fullwidth or
//! zero-width twin of a colleague's address). So an email is matched after: dropping invisible
//! characters (Unicode format characters, `Cf`, and the other default-ignorable ones: zero-width
//! spaces and joiners, bidi controls, soft hyphens, variation selectors, Hangul fillers), then
//! NFKC (fullwidth and other compatibility forms become their plain twins), then lower-casing,
//! and dropping the trailing dot of a fully-qualified domain.

use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};

/// The normal form of an email: the key accounts, invitations and sign-in counters use.
pub fn normalize_email(email: &str) -> String {
    // Invisible characters go first: one between a letter and a combining accent would
    // otherwise stop NFKC from composing them.
    let visible: String = email.chars().filter(|c| !is_invisible(*c)).collect();
    let compatible = ComposingNormalizerBorrowed::new_nfkc().normalize(&visible);
    let mut email = compatible.trim().to_lowercase();
    if let Some(at) = email.rfind('@') {
        let domain_end = email[at + 1..].trim_end_matches('.').len() + at + 1;
        if domain_end > at + 1 {
            email.truncate(domain_end);
        }
    }
    email
}

fn is_invisible(c: char) -> bool {
    CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// A deliberately small check: something, an `@`, something with a dot-free-or-dotted domain.
/// Full RFC 5322 validation rejects real addresses more often than it catches typos.
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email("  Ann@Example.COM "), "ann@example.com");
        assert!(is_plausible_email("ann@example.com"));
        assert!(!is_plausible_email("ann.example.com"));
        assert!(!is_plausible_email("@example.com"));
        assert!(!is_plausible_email("ann@"));
        assert!(!is_plausible_email("a b@example.com"));
        assert!(!is_plausible_email("a@b@c"));
    }

    #[test]
    fn look_alikes_have_one_normal_form() {
        let plain = "newhire@example.com";
        for twin in [
            "NewHire@Example.com",
            // fullwidth letters and at sign
            "ｎｅｗｈｉｒｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            // zero-width space, joiner, word joiner, BOM, soft hyphen, bidi override
            "new\u{200b}hire@example.com",
            "new\u{200d}hire@exa\u{2060}mple.com",
            "\u{feff}newhire@example.com",
            "new\u{ad}hire@example.com",
            "newhire\u{202e}@example.com",
            // variation selector and Hangul filler (default-ignorable, not Cf)
            "newhire\u{fe0f}@example.com",
            "new\u{3164}hire@example.com",
            // the fully-qualified domain's trailing dot
            "newhire@example.com.",
            // mathematical bold letters
            "\u{1d427}ewhire@example.com",
        ] {
            assert_eq!(normalize_email(twin), plain, "{twin:?}");
        }
        // Composition is not blocked by an invisible joiner: e + U+034F + U+0301 is é.
        assert_eq!(
            normalize_email("rene\u{34f}\u{301}@x.io"),
            normalize_email("rené@x.io")
        );
        // A domain of dots only is left for the plausibility check to refuse.
        assert_eq!(normalize_email("a@."), "a@.");
    }
}
