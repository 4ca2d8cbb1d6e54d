//! The little URL handling the SDK needs: query strings (for UTM
//! parameters) and checking that an endpoint is an absolute http(s) URL.

/// Decodes `application/x-www-form-urlencoded` text: `+` is a space and
/// `%XX` a byte; invalid escapes stay as written, invalid UTF-8 becomes
/// U+FFFD (as `URLSearchParams` does).
pub fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |off: usize| bytes.get(i + off).and_then(|c| (*c as char).to_digit(16));
                if let (Some(hi), Some(lo)) = (hex(1), hex(2)) {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded `(key, value)` pairs of a query string, with or without
/// its leading `?`.
pub fn query_pairs(search: &str) -> Vec<(String, String)> {
    search
        .trim_start_matches('?')
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// The UTM campaign of a page's query string, named as Segment's
/// `context.campaign` names it: `utm_campaign` becomes `name`,
/// `utm_source` `source`, and so on. Other `utm_*` keys keep their suffix.
/// The first occurrence of a key wins.
pub fn campaign(search: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    // Only `utm_` keys are decoded: a storefront URL can carry kilobytes
    // of other parameters, and this runs for every event.
    let wanted = search.trim_start_matches('?').split('&').filter(|part| {
        let key = part.split_once('=').map_or(*part, |(k, _)| k);
        key.starts_with("utm") || key.contains('%')
    });
    for part in wanted {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let (key, value) = (form_decode(key), form_decode(value));
        let Some(suffix) = key.strip_prefix("utm_") else {
            continue;
        };
        if suffix.is_empty() {
            continue;
        }
        let name = if suffix == "campaign" { "name" } else { suffix };
        if !out.iter().any(|(k, _)| k == name) {
            out.push((name.to_string(), value));
        }
    }
    out
}

/// Whether `text` is an absolute `http://` or `https://` URL with a host.
pub fn is_http_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    let Some(rest) = rest else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| h.trim_start_matches('['))
    } else {
        host.split(':').next()
    }
    .unwrap_or_default();
    !host.is_empty()
        && !text.bytes().any(|b| b.is_ascii_whitespace() || b < 0x20)
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

/// `base` joined with `path`: one slash between them, whatever either has.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_form_encoding() {
        assert_eq!(form_decode("red+shoes%21"), "red shoes!");
        assert_eq!(form_decode("%E2%82%AC"), "€");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz"), "%zz");
        assert_eq!(form_decode("%ff"), "\u{FFFD}");
    }

    #[test]
    fn extracts_the_utm_campaign() {
        let c = campaign("?utm_source=news&utm_medium=email&utm_campaign=black+friday&utm_term=shoes&utm_content=hero&utm_source=second&x=1&utm_=bad&utm_id=42");
        assert_eq!(
            c,
            vec![
                ("source".to_string(), "news".to_string()),
                ("medium".to_string(), "email".to_string()),
                ("name".to_string(), "black friday".to_string()),
                ("term".to_string(), "shoes".to_string()),
                ("content".to_string(), "hero".to_string()),
                ("id".to_string(), "42".to_string()),
            ]
        );
        assert!(campaign("").is_empty());
        assert!(campaign("?a=b&&c").is_empty());
    }

    #[test]
    fn accepts_only_absolute_http_urls() {
        for ok in [
            "https://collector.example.com",
            "http://127.0.0.1:8080/",
            "https://x.example/path?q=1",
            "http://[::1]:8080",
            "http://user@host.example",
        ] {
            assert!(is_http_url(ok), "{ok}");
        }
        for bad in [
            "",
            "collector.example.com",
            "ftp://x.example",
            "https://",
            "https:///path",
            "javascript:alert(1)",
            "https://exa mple.com",
            "/v1/batch",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn joins_paths() {
        assert_eq!(join("http://a/", "/v1/batch"), "http://a/v1/batch");
        assert_eq!(join("http://a", "v1/batch"), "http://a/v1/batch");
    }
}
