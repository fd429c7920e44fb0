//! The email policy.

use serde::{Deserialize, Serialize};

/// How email addresses are checked.
///
/// ```
/// use user_import::EmailPolicy;
/// assert_eq!(EmailPolicy::default(), EmailPolicy::Strict);
/// assert!(EmailPolicy::Strict.check("john.doe@example.com").is_ok());
/// assert!(EmailPolicy::Strict.check("John <john@example.com>").is_err());
/// assert!(EmailPolicy::Rfc.check("\"john doe\"@example.com").is_ok());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EmailPolicy {
    /// The default: a plain ASCII address `local@domain`: no display name, no
    /// quoted local part, no IP-literal domain, no comments; the local part is
    /// dot-separated atoms of letters, digits and ``!#$%&'*+-/=?^_`{|}~`` (at
    /// most 64 characters); the domain has at least two dot-separated labels of
    /// letters, digits and inner hyphens (at most 63 characters each) and a
    /// top-level label that is not all digits; at most 254 characters in all.
    /// Addresses with non-ASCII characters are refused, which also keeps out
    /// look-alike (homoglyph) addresses.
    #[default]
    Strict,
    /// RFC 5322 addresses as the `email_address` crate accepts them (quoted
    /// local parts, non-ASCII characters), still without display names or
    /// IP-literal domains, and with a dotted domain.
    Rfc,
}

impl EmailPolicy {
    /// Checks an address (already trimmed).
    ///
    /// # Errors
    ///
    /// A short reason, for the `invalid_email` message.
    ///
    /// ```
    /// assert_eq!(
    ///     user_import::EmailPolicy::Strict.check("a@[127.0.0.1]"),
    ///     Err("an IP-literal domain is not allowed")
    /// );
    /// ```
    pub fn check(self, email: &str) -> Result<(), &'static str> {
        match self {
            EmailPolicy::Strict => strict(email),
            EmailPolicy::Rfc => rfc(email),
        }
    }
}

/// The common case in one pass: a plain address that the full check would
/// accept. Anything else goes through the full check, which says why.
fn plainly_valid(b: &[u8]) -> bool {
    let n = b.len();
    if n > 254 {
        return false;
    }
    let mut i = 0;
    let mut after_dot = true; // no leading dot
    while i < n && b[i] != b'@' {
        let c = b[i];
        if c == b'.' {
            if after_dot {
                return false;
            }
            after_dot = true;
        } else if is_atext(c) {
            after_dot = false;
        } else {
            return false;
        }
        i += 1;
    }
    if i == 0 || i > 64 || i == n || after_dot {
        return false;
    }
    // The domain: labels of letters, digits and inner hyphens.
    let mut labels = 0;
    let mut len = 0;
    let mut digits_only = true;
    let mut last = 0u8;
    for &c in &b[i + 1..] {
        if c == b'.' {
            if len == 0 || last == b'-' {
                return false;
            }
            labels += 1;
            len = 0;
            digits_only = true;
        } else if c.is_ascii_alphanumeric() || c == b'-' {
            if len == 0 && c == b'-' {
                return false;
            }
            len += 1;
            if len > 63 {
                return false;
            }
            digits_only &= c.is_ascii_digit();
        } else {
            return false;
        }
        last = c;
    }
    len > 0 && last != b'-' && labels >= 1 && !digits_only
}

fn strict(email: &str) -> Result<(), &'static str> {
    if plainly_valid(email.as_bytes()) {
        return Ok(());
    }
    strict_checks(email)
}

/// The full strict check, which names the first problem.
fn strict_checks(email: &str) -> Result<(), &'static str> {
    if email.len() > 254 {
        return Err("longer than 254 characters");
    }
    if !email.is_ascii() {
        return Err("only plain ASCII addresses are accepted");
    }
    if email.contains('<') || email.contains('>') {
        return Err("a display name is not allowed; give the bare address");
    }
    let Some(at) = email.rfind('@') else {
        return Err("no @");
    };
    let (local, domain) = (&email[..at], &email[at + 1..]);
    if local.contains('"') {
        return Err("a quoted local part is not allowed");
    }
    if local.contains('@') {
        return Err("more than one @");
    }
    if local.is_empty() {
        return Err("nothing before the @");
    }
    if local.len() > 64 {
        return Err("the part before the @ is longer than 64 characters");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("misplaced dot before the @");
    }
    if let Some(c) = local.bytes().find(|&b| !is_atext(b) && b != b'.') {
        return Err(if c == b' ' {
            "contains a space"
        } else if c == b'(' || c == b')' {
            "comments are not allowed"
        } else {
            "invalid character before the @"
        });
    }
    if domain.starts_with('[') {
        return Err("an IP-literal domain is not allowed");
    }
    if domain.is_empty() {
        return Err("nothing after the @");
    }
    let mut labels = 0;
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("the domain has an empty label");
        }
        if label.len() > 63 {
            return Err("a domain label is longer than 63 characters");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a domain label starts or ends with a hyphen");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(if label.contains(' ') {
                "contains a space"
            } else {
                "invalid character in the domain"
            });
        }
        labels += 1;
        last = label;
    }
    if labels < 2 {
        return Err("the domain needs a dot (e.g. example.com)");
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the domain looks like an IP address");
    }
    Ok(())
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

#[cfg(test)]
mod fast_path {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The one-pass check never accepts what the full check refuses.
        #[test]
        fn plainly_valid_implies_strict(s in "[a-zA-Z0-9.@_+-]{0,20}(\\.[a-z0-9-]{0,5})?") {
            if plainly_valid(s.as_bytes()) {
                prop_assert_eq!(strict_checks(&s), Ok(()));
            }
        }
    }
}

fn rfc(email: &str) -> Result<(), &'static str> {
    use email_address::{EmailAddress, Options};
    if email.chars().count() > 254 {
        return Err("longer than 254 characters");
    }
    let options = Options::default()
        .with_required_tld()
        .without_domain_literal()
        .without_display_text();
    match EmailAddress::parse_with_options(email, options) {
        Ok(_) => Ok(()),
        Err(e) => Err(match e {
            email_address::Error::MissingSeparator => "no @",
            email_address::Error::LocalPartEmpty => "nothing before the @",
            email_address::Error::DomainEmpty => "nothing after the @",
            email_address::Error::DomainTooFew => "the domain needs a dot (e.g. example.com)",
            email_address::Error::UnsupportedDomainLiteral => "an IP-literal domain is not allowed",
            email_address::Error::UnsupportedDisplayName => {
                "a display name is not allowed; give the bare address"
            }
            _ => "not a valid address",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_accepts_ordinary_addresses() {
        for e in [
            "john.doe@example.com",
            "J.O'Neil+tag@mail.example.co.uk",
            "a@b.io",
            "x_y-z@sub-domain.example.org",
        ] {
            assert_eq!(strict(e), Ok(()), "{e}");
        }
    }

    #[test]
    fn strict_refuses_what_the_spec_names() {
        for e in [
            "John Doe <john@example.com>",
            "john@[192.168.0.1]",
            "\"john doe\"@example.com",
            "john@localhost",
            "john@1.2.3.4",
            "jоhn@example.com", // Cyrillic о
            "john@@example.com",
            "john..doe@example.com",
            ".john@example.com",
            "john@-example.com",
            "john@example..com",
            "john doe@example.com",
            "",
            "@",
        ] {
            assert!(strict(e).is_err(), "{e}");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(200));
        assert!(strict(&long).is_err());
    }

    #[test]
    fn strict_is_no_looser_than_the_rfc_crate() {
        for e in ["a@b.io", "a+b@c.de", "a.b.c@d-e.fg"] {
            assert!(strict(e).is_ok());
            assert!(rfc(e).is_ok(), "{e}");
        }
    }
}
