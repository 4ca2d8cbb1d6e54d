//! First-party cookie strings: what `document.cookie` is given and how its
//! value is read back, and the search for the registrable domain.

/// Attributes of a cookie segmint writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieAttributes<'a> {
    /// `Domain=`; `None` writes a host-only cookie.
    pub domain: Option<&'a str>,
    /// Lifetime in seconds (`Max-Age=`); 0 deletes the cookie.
    pub max_age_secs: u64,
    /// Adds `Secure` (set on https pages).
    pub secure: bool,
}

/// The string to assign to `document.cookie` to set `name=value`.
/// Always `Path=/` and `SameSite=Lax`.
pub fn set_cookie_string(name: &str, value: &str, attrs: &CookieAttributes<'_>) -> String {
    let mut out = String::with_capacity(96);
    out.push_str(name);
    out.push('=');
    out.push_str(value);
    out.push_str("; Max-Age=");
    out.push_str(&attrs.max_age_secs.to_string());
    out.push_str("; Path=/");
    if let Some(domain) = attrs.domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    out.push_str("; SameSite=Lax");
    if attrs.secure {
        out.push_str("; Secure");
    }
    out
}

/// The value of cookie `name` in a `document.cookie` string
/// (`a=1; b=2`), if present. The first match wins, as browsers list the
/// most specific cookie first.
pub fn read_cookie<'a>(cookies: &'a str, name: &str) -> Option<&'a str> {
    cookies.split(';').find_map(|pair| {
        let (k, v) = pair.trim_start().split_once('=')?;
        (k.trim_end() == name).then(|| v.trim())
    })
}

/// Whether `value` may be stored in a cookie unencoded (RFC 6265
/// cookie-octets: no spaces, quotes, commas, semicolons or backslashes).
pub fn is_cookie_safe(value: &str) -> bool {
    value
        .bytes()
        .all(|b| matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e))
}

/// Domains to try, shortest first, when probing for the registrable
/// domain of `hostname`: `shop.example.co.uk` gives `co.uk`,
/// `example.co.uk`, `shop.example.co.uk`. The browser refuses a cookie on
/// a public suffix, so the first one it accepts is the registrable domain.
/// Empty for `localhost`, single-label hosts and IP addresses, which take
/// host-only cookies.
pub fn domain_candidates(hostname: &str) -> Vec<String> {
    let host = hostname.trim_end_matches('.').to_ascii_lowercase();
    let is_ipv4 = host.split('.').count() == 4
        && host
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if host.is_empty() || !host.contains('.') || is_ipv4 || host.contains(':') {
        return Vec::new();
    }
    // Each suffix after a dot, but the last label alone; then the host.
    let mut candidates: Vec<String> = host
        .match_indices('.')
        .rev()
        .skip(1)
        .filter_map(|(dot, _)| host.get(dot + 1..))
        .map(str::to_string)
        .collect();
    candidates.push(host);
    candidates
}

/// Finds the registrable domain of `hostname` by asking `accepts` whether
/// the browser takes a cookie for each candidate, shortest first. `None`
/// means a host-only cookie.
pub fn find_registrable_domain(
    hostname: &str,
    mut accepts: impl FnMut(&str) -> bool,
) -> Option<String> {
    domain_candidates(hostname)
        .into_iter()
        .find(|candidate| accepts(candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_set_cookie_strings() {
        let attrs = CookieAttributes {
            domain: Some("example.com"),
            max_age_secs: 31_536_000,
            secure: true,
        };
        assert_eq!(
            set_cookie_string("sgm_aid", "abc", &attrs),
            "sgm_aid=abc; Max-Age=31536000; Path=/; Domain=example.com; SameSite=Lax; Secure"
        );
        let host_only = CookieAttributes {
            domain: None,
            max_age_secs: 0,
            secure: false,
        };
        assert_eq!(
            set_cookie_string("sgm_aid", "", &host_only),
            "sgm_aid=; Max-Age=0; Path=/; SameSite=Lax"
        );
    }

    #[test]
    fn reads_cookies_from_document_cookie() {
        let jar = "a=1; sgm_aid=123e4567-e89b-12d3-a456-426614174000;b= 2 ; sgm_aid=old";
        assert_eq!(
            read_cookie(jar, "sgm_aid"),
            Some("123e4567-e89b-12d3-a456-426614174000")
        );
        assert_eq!(read_cookie(jar, "b"), Some("2"));
        assert_eq!(read_cookie(jar, "sgm"), None);
        assert_eq!(read_cookie("", "a"), None);
        assert_eq!(read_cookie("x_sgm_aid=1", "sgm_aid"), None);
    }

    #[test]
    fn candidates_go_shortest_first_and_skip_hosts_without_domains() {
        assert_eq!(
            domain_candidates("shop.Example.co.uk."),
            vec!["co.uk", "example.co.uk", "shop.example.co.uk"]
        );
        assert_eq!(domain_candidates("example.com"), vec!["example.com"]);
        assert!(domain_candidates("localhost").is_empty());
        assert!(domain_candidates("127.0.0.1").is_empty());
        assert!(domain_candidates("[::1]").is_empty());
        assert!(domain_candidates("").is_empty());
    }

    proptest::proptest! {
        /// The candidates are the host's suffixes of two labels or more,
        /// each one label longer than the one before.
        #[test]
        fn candidates_are_the_suffixes_of_two_labels_or_more(
            labels in proptest::collection::vec("[a-z0-9-]{0,6}", 2..6)
        ) {
            let host = labels.join(".");
            let candidates = domain_candidates(&host);
            // (A trailing dot is not a label.)
            let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
            if !candidates.is_empty() {
                let expected: Vec<String> = (2..=labels.len())
                    .map(|n| labels[labels.len() - n..].join("."))
                    .collect();
                proptest::prop_assert_eq!(candidates, expected);
            }
        }
    }

    #[test]
    fn probing_stops_at_the_first_accepted_domain() {
        let public_suffixes = ["co.uk", "github.io"];
        let mut tried = Vec::new();
        let found = find_registrable_domain("a.shop.example.co.uk", |d| {
            tried.push(d.to_string());
            !public_suffixes.contains(&d)
        });
        assert_eq!(found.as_deref(), Some("example.co.uk"));
        assert_eq!(tried, vec!["co.uk", "example.co.uk"]);
        assert_eq!(find_registrable_domain("localhost", |_| true), None);
    }

    #[test]
    fn cookie_safety() {
        assert!(is_cookie_safe("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_cookie_safe("a b"));
        assert!(!is_cookie_safe("a;b"));
        assert!(!is_cookie_safe("é"));
    }
}
