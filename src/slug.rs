//! Database identifiers from free-form names.
//!
//! PostgreSQL silently truncates identifiers over 63 bytes, so two long
//! worktree names could land on one database. Names are slugged to
//! `[a-z0-9_]`, and a name that has to be cut carries a hash of the whole.

pub const MAX_IDENTIFIER: usize = 63;
const SUFFIX_HEX: usize = 8;

/// Lowercase ASCII letters, digits and single underscores; everything else
/// becomes `_`. Never empty.
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for ch in name.chars() {
        let ch = ch.to_ascii_lowercase();
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            out.push(ch);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() {
        "_".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Whether `name` is one [`identifier`] can give: read-back names (locks,
/// records) name files and databases, and are checked with this.
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IDENTIFIER
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A slug that fits in a database identifier, hash-suffixed when cut.
pub fn identifier(name: &str) -> String {
    let slug = slug(name);
    if slug.len() <= MAX_IDENTIFIER {
        return slug;
    }
    let keep = MAX_IDENTIFIER - SUFFIX_HEX - 1;
    let head = slug[..keep].trim_end_matches('_');
    format!("{head}_{}", crate::hash::short(&slug, SUFFIX_HEX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_to_lowercase_underscores() {
        assert_eq!(slug("Feature/Auth-2"), "feature_auth_2");
        assert_eq!(slug("--x--"), "x");
        assert_eq!(slug("日本"), "_");
    }

    #[test]
    fn long_names_are_cut_with_distinct_suffixes() {
        let a = identifier(&format!("{}_a", "x".repeat(80)));
        let b = identifier(&format!("{}_b", "x".repeat(80)));
        assert_eq!(a.len(), MAX_IDENTIFIER);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }

    #[test]
    fn short_names_are_untouched() {
        assert_eq!(identifier("my_app_feature"), "my_app_feature");
    }
}
