//! The little URL handling the SDK needs: query strings (for UTM
//! parameters), leaving out parameters the site names as private, and
//! checking that an endpoint is an absolute http(s) URL.

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

/// `query` (`a=1&b=2`, no `?`) without the parameters named in `names`
/// (lower case), compared decoded and ignoring ASCII case; `None` if it
/// has none of them.
fn without_params(query: &str, names: &[String]) -> Option<String> {
    let mut kept = String::with_capacity(query.len());
    let (mut removed, mut first) = (false, true);
    for part in query.split('&') {
        let key = form_decode(part.split('=').next().unwrap_or_default());
        if names.iter().any(|n| key.eq_ignore_ascii_case(n)) {
            removed = true;
        } else {
            if !first {
                kept.push('&');
            }
            first = false;
            kept.push_str(part);
        }
    }
    removed.then_some(kept)
}

/// `url` without the parameters named in `names` (lower case), compared
/// decoded and ignoring ASCII case: in its query, and in its fragment
/// where that holds parameters (`#access_token=…`, or a hash router's
/// `#/cart?email=…`). The rest stays as written, and a URL without them
/// comes back unchanged. Also takes a bare query (`?a=1`), as
/// `location.search` is.
pub fn strip_params(url: &str, names: &[String]) -> String {
    let (main, fragment) = match url.split_once('#') {
        Some((main, fragment)) => (main, Some(fragment)),
        None => (url, None),
    };
    // `prefix` + `sep` + `query` with the named parameters left out; no
    // `sep` when they were all there was.
    let push = |out: &mut String, prefix: &str, sep: char, query: &str| {
        out.push_str(prefix);
        let kept = without_params(query, names);
        match kept.as_deref() {
            Some("") => {}
            kept => {
                out.push(sep);
                out.push_str(kept.unwrap_or(query));
            }
        }
    };
    let mut out = String::with_capacity(url.len());
    match main.split_once('?') {
        Some((base, query)) => push(&mut out, base, '?', query),
        None => out.push_str(main),
    }
    if let Some(f) = fragment {
        match f.split_once('?') {
            Some((route, query)) => {
                out.push('#');
                push(&mut out, route, '?', query);
            }
            None if f.contains('=') => push(&mut out, "", '#', f),
            None => {
                out.push('#');
                out.push_str(f);
            }
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
    fn strips_the_named_parameters_and_nothing_else() {
        let names = ["email", "token", "access_token"].map(String::from);
        let strip = |url: &str| strip_params(url, &names);
        assert_eq!(
            strip("https://shop.example/p?email=a%40b.c&utm_source=news&x=1"),
            "https://shop.example/p?utm_source=news&x=1"
        );
        // Decoded, any case, wherever they are, every occurrence.
        assert_eq!(strip("/p?x=1&E%6Dail=a&EMAIL&token=t&y"), "/p?x=1&y");
        assert_eq!(strip("/p?email=a&&y&"), "/p?&y&");
        // Nothing left: no `?`.
        assert_eq!(
            strip("https://shop.example/p?email=a"),
            "https://shop.example/p"
        );
        assert_eq!(strip("?token=1"), "");
        // The fragment's parameters too; a plain anchor stays.
        assert_eq!(
            strip("https://a.example/cb?x=1#access_token=s&state=2"),
            "https://a.example/cb?x=1#state=2"
        );
        assert_eq!(strip("https://a.example/#token=s"), "https://a.example/");
        assert_eq!(
            strip("https://a.example/#/cart?email=a&step=2"),
            "https://a.example/#/cart?step=2"
        );
        assert_eq!(
            strip("https://a.example/p?x=1#reviews"),
            "https://a.example/p?x=1#reviews"
        );
        // Without them, exactly as written.
        for same in [
            "",
            "?",
            "https://a.example/?",
            "/p?emails=1&x=%zz&#",
            "https://a.example/p#",
        ] {
            assert_eq!(strip(same), same);
        }
        assert_eq!(strip_params("/p?email=a", &[]), "/p?email=a");
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
