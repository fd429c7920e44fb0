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
    /// most 64 characters); at most 254 characters in all.
    ///
    /// The domain must be a host name: at least two dot-separated labels of
    /// letters, digits and hyphens, each at most 63 characters, none starting
    /// or ending with a hyphen. A label with `--` in its third and fourth
    /// places is refused unless it is an `xn--` label (an internationalized
    /// name in its ASCII form) that decodes to a valid internationalized
    /// label. The top-level label (after the last dot) is letters only, or
    /// such an `xn--` label: `example.c0m` and `example.123` are refused.
    ///
    /// Addresses with non-ASCII characters are refused, which also keeps out
    /// look-alike (homoglyph) addresses: an internationalized domain is
    /// accepted only in its `xn--` form, where a look-alike shows as such.
    ///
    /// An address under a special-use top-level domain such as `.test` or
    /// `.invalid` is accepted with a warning (see [`EmailPolicy::warning`]).
    #[default]
    Strict,
    /// RFC 5322 addresses as the `email_address` crate accepts them (quoted
    /// local parts, non-ASCII characters), still without display names or
    /// IP-literal domains, and with a dotted domain. Special-use domains get
    /// the same warning as under [`EmailPolicy::Strict`].
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

    /// A warning for an address that [`EmailPolicy::check`] accepts but that
    /// is unlikely to be a real mailbox: its domain is under a special-use
    /// top-level domain (`.invalid`, `.test`, `.localhost`, `.local`,
    /// `.onion`, `.arpa`, `.example`, `.internal`, `.alt`). The same under
    /// both policies.
    ///
    /// `example.com`, `example.net` and `example.org` (and their subdomains)
    /// get no warning, so that they can stand for real addresses in samples
    /// and tests.
    ///
    /// ```
    /// use user_import::EmailPolicy;
    /// assert_eq!(
    ///     EmailPolicy::Strict.warning("jane@corp.test"),
    ///     Some(".test is reserved for testing")
    /// );
    /// assert_eq!(EmailPolicy::Strict.warning("jane@example.com"), None);
    /// assert_eq!(EmailPolicy::Strict.warning("jane@mail.example.org"), None);
    /// ```
    pub fn warning(self, email: &str) -> Option<&'static str> {
        match self {
            EmailPolicy::Strict | EmailPolicy::Rfc => special_use(email),
        }
    }
}

/// The special-use top-level domains, each with why an address under it is
/// suspect. `example.com`, `example.net` and `example.org` are special-use
/// names too, but they are left out on purpose: samples and tests use them
/// as stand-ins for real addresses, and a warning on every such row would
/// hide the warnings that matter.
const SPECIAL_USE: &[(&str, &str)] = &[
    ("invalid", ".invalid is reserved and never exists"),
    ("test", ".test is reserved for testing"),
    ("localhost", ".localhost always means the local machine"),
    ("local", ".local is for multicast DNS on a local network"),
    ("onion", ".onion is for Tor onion services"),
    (
        "arpa",
        ".arpa is for internet infrastructure, not mailboxes",
    ),
    ("example", ".example is reserved for documentation"),
    ("internal", ".internal is reserved for private networks"),
    ("alt", ".alt is reserved for names outside the DNS"),
];

/// Why the address's top-level domain is special-use, if it is.
fn special_use(email: &str) -> Option<&'static str> {
    let domain = email.rsplit_once('@').map_or(email, |(_, d)| d);
    // A root dot does not change the domain.
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let tld = domain.rsplit_once('.').map_or(domain, |(_, t)| t);
    SPECIAL_USE
        .iter()
        .find(|(name, _)| tld.eq_ignore_ascii_case(name))
        .map(|&(_, why)| why)
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
    // The domain: labels of letters, digits and inner hyphens, none with
    // `--` in its third and fourth places (an `xn--` label needs decoding,
    // which the full check does), and a top-level label of letters.
    let mut labels = 0;
    let mut len = 0;
    let mut letters_only = true;
    let mut last = 0u8;
    for &c in &b[i + 1..] {
        if c == b'.' {
            if len == 0 || last == b'-' {
                return false;
            }
            labels += 1;
            len = 0;
            letters_only = true;
        } else if c.is_ascii_alphanumeric() || c == b'-' {
            if c == b'-' && (len == 0 || (len == 3 && last == b'-')) {
                return false;
            }
            len += 1;
            if len > 63 {
                return false;
            }
            letters_only &= c.is_ascii_alphabetic();
        } else {
            return false;
        }
        last = c;
    }
    len > 0 && last != b'-' && labels >= 1 && letters_only
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
    let mut encoded = false;
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
        if label.get(2..4) == Some("--") {
            encoded_label(label)?;
            encoded = true;
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
    // An `xn--` top-level label has passed `encoded_label` above.
    if !last.bytes().all(|b| b.is_ascii_alphabetic()) && !has_ace_prefix(last) {
        return Err("the top-level domain (after the last dot) must be letters only");
    }
    if encoded && !valid_idn(domain) {
        return Err("an xn-- label does not decode to a valid internationalized name");
    }
    Ok(())
}

/// Labels with `--` in their third and fourth places are set aside for
/// encoded names; the only such encoding in use is `xn--` followed by
/// Punycode. Whether the decoded label is a valid name is checked on the
/// whole domain (`valid_idn`), since some of the rules span labels.
fn encoded_label(label: &str) -> Result<(), &'static str> {
    if !has_ace_prefix(label) {
        return Err(
            "a domain label has \"--\" in its third and fourth places (only xn-- labels may)",
        );
    }
    match label.get(4..).and_then(idna::punycode::decode_to_string) {
        Some(_) => Ok(()),
        None => Err("an xn-- label is not valid Punycode"),
    }
}

fn has_ace_prefix(label: &str) -> bool {
    label
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
}

/// Whether a domain of LDH labels, some of them `xn--`, is a valid
/// internationalized domain name: each `xn--` label decodes to a label made
/// of permitted, normalized characters, with the hyphen, joiner and
/// right-to-left rules kept. The `idna` crate implements the standard
/// processing; its strict settings (host-name characters only, hyphen
/// positions checked, DNS lengths) agree with the checks made before it.
fn valid_idn(domain: &str) -> bool {
    use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
    Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Check,
            DnsLength::Verify,
        )
        .is_ok()
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

#[cfg(test)]
mod fast_path {
    use super::*;
    use proptest::prelude::*;

    /// Domain labels from a small alphabet, with `xn--` and `--` in the
    /// third and fourth places common enough to be tried often.
    fn label() -> impl Strategy<Value = String> {
        prop_oneof![
            "[axn1-]{1,6}",
            "[xX][nN]--[axn1-]{0,8}",
            "[a-z0-9]{2}--[a-z0-9-]{0,4}",
            Just("xn--nxasmq6b".to_owned()),
        ]
    }

    proptest! {
        /// The one-pass check never accepts what the full check refuses.
        #[test]
        fn plainly_valid_implies_strict(s in "[a-zA-Z0-9.@_+-]{0,20}(\\.[a-z0-9-]{0,5})?") {
            if plainly_valid(s.as_bytes()) {
                prop_assert_eq!(strict_checks(&s), Ok(()));
            }
        }

        /// The same over addresses from a small alphabet, where labels
        /// with `--` (and `xn--` in particular) are frequent.
        #[test]
        fn plainly_valid_implies_strict_on_small_alphabet(s in "[axn1.@-]{0,16}") {
            if plainly_valid(s.as_bytes()) {
                prop_assert_eq!(strict_checks(&s), Ok(()));
            }
        }

        /// The same over addresses built label by label.
        #[test]
        fn plainly_valid_implies_strict_on_host_names(
            local in "[axn1-]{1,4}",
            labels in prop::collection::vec(label(), 1..4),
        ) {
            let s = format!("{local}@{}", labels.join("."));
            if plainly_valid(s.as_bytes()) {
                prop_assert_eq!(strict_checks(&s), Ok(()));
            }
        }
    }

    /// Every domain of up to seven characters from a small alphabet (which
    /// spells `xn--` and puts `--` anywhere), after a fixed local part.
    #[test]
    fn plainly_valid_implies_strict_on_every_short_domain() {
        const ALPHABET: &[u8] = b"axn1-.";
        let mut domain = Vec::new();
        let mut plain = 0;
        for len in 1..=7u32 {
            for mut k in 0..ALPHABET.len().pow(len) {
                domain.clear();
                for _ in 0..len {
                    domain.push(ALPHABET[k % ALPHABET.len()]);
                    k /= ALPHABET.len();
                }
                let mut e = b"a@".to_vec();
                e.extend_from_slice(&domain);
                if plainly_valid(&e) {
                    plain += 1;
                    let e = String::from_utf8_lossy(&e);
                    assert_eq!(strict_checks(&e), Ok(()), "{e}");
                }
            }
        }
        assert!(plain > 1000);
    }

    /// What the one pass leaves to the full check: it says neither yes nor
    /// no to an `xn--` label, and the full check accepts the ones that
    /// decode.
    #[test]
    fn encoded_labels_go_to_the_full_check() {
        for e in ["a@xn--nxasmq6b.com", "a@example.xn--p1ai", "a@ab--cd.com"] {
            assert!(!plainly_valid(e.as_bytes()), "{e}");
        }
        assert_eq!(strict("a@xn--nxasmq6b.com"), Ok(()));
        assert_eq!(strict("a@example.xn--p1ai"), Ok(()));
        assert!(strict("a@ab--cd.com").is_err());
        // Hyphens elsewhere stay on the fast path.
        assert!(plainly_valid(b"a@c--n.com"));
        assert!(plainly_valid(b"a@abc--d.com"));
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

    /// Cases from Dominic Sayers' `isemail` test suite: the file
    /// `test/tests.xml` (version 3.05) of the GitHub repository
    /// dominicsayers/isemail (BSD licence), which gives each address with the
    /// diagnosis of an RFC 5321/5322 parser. The expected results here are
    /// this crate's strict policy, not that diagnosis: where the suite
    /// accepts, with or without a warning, what the strict policy refuses (a
    /// quoted local part, an address literal, comments, a domain without a
    /// dot, a top-level label with a hyphen), the refusal is expected; the
    /// suite's DNS warnings (a domain with no records) are not this check's
    /// business. The number is the suite's test id.
    #[test]
    fn strict_on_the_isemail_test_suite() {
        let label63 = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghikl";
        let local64 = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghiklm";
        let many_labels = "a@a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.\
            a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.\
            a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.\
            a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.\
            a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v";
        let longest = format!(
            "{local64}@{label63}.{label63}.abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghi"
        );
        let too_long = format!("{longest}j");
        let ok = Ok(());
        let hyphen = Err("a domain label starts or ends with a hyphen");
        let empty_label = Err("the domain has an empty label");
        let needs_dot = Err("the domain needs a dot (e.g. example.com)");
        let ip = Err("the domain looks like an IP address");
        let literal = Err("an IP-literal domain is not allowed");
        let cases: Vec<(u32, String, Result<(), &str>)> = vec![
            (1, "".into(), Err("no @")),
            (2, "test".into(), Err("no @")),
            (3, "@".into(), Err("nothing before the @")),
            (4, "test@".into(), Err("nothing after the @")),
            (5, "test@io".into(), needs_dot),
            (7, "@iana.org".into(), Err("nothing before the @")),
            (8, "test@iana.org".into(), ok),
            (9, "test@nominet.org.uk".into(), ok),
            (10, "test@about.museum".into(), ok),
            (12, "test@e.com".into(), ok),
            (13, "test@iana.a".into(), ok),
            (14, "test.test@iana.org".into(), ok),
            (
                15,
                ".test@iana.org".into(),
                Err("misplaced dot before the @"),
            ),
            (
                16,
                "test.@iana.org".into(),
                Err("misplaced dot before the @"),
            ),
            (18, "test_exa-mple.com".into(), Err("no @")),
            (19, "!#$%&`*+/=?^`{|}~@iana.org".into(), ok),
            (20, "test\\@test@iana.org".into(), Err("more than one @")),
            (21, "123@iana.org".into(), ok),
            (22, "test@123.com".into(), ok),
            (23, "test@iana.123".into(), ip),
            (24, "test@255.255.255.255".into(), ip),
            (25, format!("{local64}@iana.org"), ok),
            (
                26,
                format!("{local64}n@iana.org"),
                Err("the part before the @ is longer than 64 characters"),
            ),
            (27, format!("test@{label63}.com"), ok),
            (
                28,
                format!("test@{label63}m.com"),
                Err("a domain label is longer than 63 characters"),
            ),
            (29, "test@mason-dixon.com".into(), ok),
            (30, "test@-iana.org".into(), hyphen),
            (31, "test@iana-.com".into(), hyphen),
            // `--` in the second and third places is an ordinary label.
            (32, "test@c--n.com".into(), ok),
            (
                33,
                "test@iana.co-uk".into(),
                Err("the top-level domain (after the last dot) must be letters only"),
            ),
            (34, "test@.iana.org".into(), empty_label),
            (35, "test@iana.org.".into(), empty_label),
            (36, "test@iana..com".into(), empty_label),
            (37, many_labels.into(), ok),
            (38, longest, ok),
            (39, too_long, Err("longer than 254 characters")),
            (
                42,
                "\"test\"@iana.org".into(),
                Err("a quoted local part is not allowed"),
            ),
            (61, "test@[255.255.255.255]".into(), literal),
            (
                68,
                "test@[IPv6:1111:2222:3333:4444:5555:6666:7777:8888]".into(),
                literal,
            ),
            (85, " test @iana.org".into(), Err("contains a space")),
            (
                90,
                "(comment)test@iana.org".into(),
                Err("comments are not allowed"),
            ),
            (
                93,
                "test@(comment)iana.org".into(),
                Err("invalid character in the domain"),
            ),
            // An internationalized domain in its ASCII form, top-level label included.
            (100, "test@xn--hxajbheg2az3al.xn--jxalpdlp".into(), ok),
            // `xn--` means nothing before the @.
            (101, "xn--test@iana.org".into(), ok),
            (102, "test@iana.org-".into(), hyphen),
            (
                161,
                "test@iana/icann.org".into(),
                Err("invalid character in the domain"),
            ),
            (166, "test@org".into(), needs_dot),
        ];
        assert!(cases.len() >= 15);
        for (id, address, expected) in &cases {
            assert_eq!(strict(address), *expected, "isemail test {id}: {address}");
        }
    }

    #[test]
    fn strict_host_name_rules() {
        let double_hyphen =
            Err("a domain label has \"--\" in its third and fourth places (only xn-- labels may)");
        let bad_idn = Err("an xn-- label does not decode to a valid internationalized name");
        let tld = Err("the top-level domain (after the last dot) must be letters only");
        for (e, expected) in [
            ("a@xn--nxasmq6b.com", Ok(())),
            ("a@XN--NXASMQ6B.com", Ok(())),
            ("a@mail.xn--nxasmq6b.com", Ok(())),
            ("a@example.xn--p1ai", Ok(())),
            ("a@ab--cd.com", double_hyphen),
            ("a@example.ab--cd", double_hyphen),
            ("a@xy--nxasmq6b.com", double_hyphen),
            (
                "a@xn--abc-.com",
                Err("a domain label starts or ends with a hyphen"),
            ),
            // Decodes to U+0080, a control character.
            ("a@xn--a.com", bad_idn),
            // Too large a number for a character.
            (
                "a@xn--99999999999.com",
                Err("an xn-- label is not valid Punycode"),
            ),
            ("a@example.c0m", tld),
            ("a@example.co1", tld),
            ("a@example.x-y", tld),
            ("a@example.123", Err("the domain looks like an IP address")),
        ] {
            assert_eq!(strict(e), expected, "{e}");
        }
    }

    #[test]
    fn special_use_domains_warn_except_the_example_names() {
        for e in [
            "a@corp.test",
            "A@CORP.TEST",
            "a@x.invalid",
            "a@x.localhost",
            "a@printer.local",
            "a@x.onion",
            "a@router.home.arpa",
            "a@4.3.2.1.in-addr.arpa",
            "a@doc.example",
            "a@corp.internal",
            "a@x.alt",
        ] {
            assert_eq!(strict(e), Ok(()), "{e}");
            assert!(EmailPolicy::Strict.warning(e).is_some(), "{e}");
            assert!(EmailPolicy::Rfc.warning(e).is_some(), "{e}");
        }
        for e in [
            "a@example.com",
            "a@mail.example.net",
            "a@example.org",
            "a@test.com",
            "a@local.io",
            "a@example.co.uk",
        ] {
            assert_eq!(EmailPolicy::Strict.warning(e), None, "{e}");
        }
        assert_eq!(rfc("a@corp.test"), Ok(()));
    }

    #[test]
    fn strict_is_no_looser_than_the_rfc_crate() {
        for e in ["a@b.io", "a+b@c.de", "a.b.c@d-e.fg"] {
            assert!(strict(e).is_ok());
            assert!(rfc(e).is_ok(), "{e}");
        }
    }
}
