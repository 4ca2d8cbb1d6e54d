//! Version strings compared as GrowthBook compares them (`$veq`, `$vgt`,
//! ...): `v1.2.3-rc.1+build` becomes a padded string whose plain string
//! order is version order.

/// GrowthBook's `paddedVersionString`: strips a leading `v` and any
/// `+build`, splits on `.` and `-`, appends `~` to a bare three-part
/// version (so `1.0.0` sorts after `1.0.0-beta`) and left-pads numeric
/// parts to 5 characters. An empty string counts as `0`.
pub fn padded_version(text: &str) -> String {
    let text = if text.is_empty() { "0" } else { text };
    let text = text.strip_prefix('v').unwrap_or(text);
    let text = match text.find('+') {
        Some(i) => text.get(..i).unwrap_or_default(),
        None => text,
    };
    let mut parts: Vec<String> = text.split(['-', '.']).map(str::to_string).collect();
    if parts.len() == 3 {
        parts.push("~".into());
    }
    parts
        .iter()
        .map(|p| {
            if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() < 5 {
                format!("{}{p}", " ".repeat(5 - p.len()))
            } else {
                p.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> String {
        padded_version(s)
    }

    #[test]
    fn orders_like_semver() {
        assert!(v("1.0.0") > v("1.0.0-beta"));
        assert!(v("1.10.0") > v("1.9.0"));
        assert_eq!(v("v1.2.3+build5"), v("1.2.3"));
        assert!(v("1.0.0-rc.2") > v("1.0.0-rc.1"));
        assert_eq!(padded_version(""), "    0");
    }
}
