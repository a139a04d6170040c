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
    slug_keeping(name, None)
}

/// [`slug`], keeping every `kept` character as it is.
fn slug_keeping(name: &str, kept: Option<char>) -> String {
    let mut out = String::with_capacity(name.len());
    for ch in name.chars() {
        let ch = ch.to_ascii_lowercase();
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() || Some(ch) == kept {
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
    cut(slug(name), 0)
}

/// Stands for the clone's tag (`{clone}`) in a name given to
/// [`identifier_with_tags`]: a character no name, branch or folder holds.
pub const TAG: char = '\0';

/// [`identifier`] of a name whose [`TAG`]s each become a tag of `tag_len`
/// characters afterwards. The tags are kept whole, even in a name that has
/// to be cut, and the hash suffix is of the name with them unfilled: every
/// clone cuts its names alike, and no two clones' names meet.
pub fn identifier_with_tags(name: &str, tag_len: usize) -> String {
    cut(slug_keeping(name, Some(TAG)), tag_len)
}

/// How many tags of `tag_len` characters a name cut to fit can keep whole,
/// each with a `_` before it, beside the hash suffix.
pub fn most_tags(tag_len: usize) -> usize {
    (MAX_IDENTIFIER - SUFFIX_HEX - 1) / (tag_len + 1)
}

/// `slug` cut to fit, counting each [`TAG`] in it as `tag_len` long.
fn cut(slug: String, tag_len: usize) -> String {
    let tags = slug.matches(TAG).count();
    if slug.len() - tags + tags * tag_len <= MAX_IDENTIFIER {
        return slug;
    }
    // What is kept of the rest, once the suffix and every tag (with the
    // `_` before one moved to the end) have their room.
    let budget = MAX_IDENTIFIER.saturating_sub(SUFFIX_HEX + 1 + tags * (tag_len + 1));
    let (mut head, mut kept, mut moved) = (String::new(), 0, 0);
    for ch in slug.chars() {
        if kept >= budget {
            moved += usize::from(ch == TAG);
        } else {
            kept += usize::from(ch != TAG);
            head.push(ch);
        }
    }
    let mut out = head.trim_end_matches('_').to_string();
    for _ in 0..moved {
        out.push('_');
        out.push(TAG);
    }
    format!("{out}_{}", crate::hash::short(&slug, SUFFIX_HEX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As many tags as `most_tags` allows fit once filled in; one more
    /// cannot.
    #[test]
    fn the_most_tags_fit() {
        let most = most_tags(8);
        let fill = |name: String| name.replace(TAG, "0a1b2c3d");
        let name = |n: usize| format!("{}{}", "x".repeat(80), format!("_{TAG}").repeat(n));
        assert!(fill(identifier_with_tags(&name(most), 8)).len() <= MAX_IDENTIFIER);
        assert!(fill(identifier_with_tags(&name(most + 1), 8)).len() > MAX_IDENTIFIER);
    }

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

    /// Filled in, a tag keeps its place and its length; a cut name keeps
    /// it whole, and is cut alike in every clone.
    #[test]
    fn tags_are_kept_whole() {
        let fill = |name: String, tag: &str| name.replace(TAG, tag);
        let short = identifier_with_tags("My App_feature_\0", 8);
        assert_eq!(fill(short, "0a1b2c3d"), "my_app_feature_0a1b2c3d");
        for name in [
            format!("{}_\0", "x".repeat(80)),
            format!("\0_{}", "y".repeat(80)),
            format!("{}_\0_{}", "a".repeat(50), "b".repeat(50)),
        ] {
            let cut = identifier_with_tags(&name, 8);
            assert_eq!(cut.matches(TAG).count(), 1, "{name}");
            let (one, two) = (fill(cut.clone(), "0a1b2c3d"), fill(cut, "ffffffff"));
            assert!(is_identifier(&one) && is_identifier(&two), "{one}");
            assert!(
                (MAX_IDENTIFIER - 1..=MAX_IDENTIFIER).contains(&one.len()),
                "{one}"
            );
            assert!(one.contains("0a1b2c3d") && two.contains("ffffffff"));
            assert_eq!(one.replace("0a1b2c3d", ""), two.replace("ffffffff", ""));
        }
        // Without a tag, as ever.
        let long = format!("{}_a", "x".repeat(80));
        assert_eq!(identifier_with_tags(&long, 8), identifier(&long));
        assert_eq!(
            identifier(&long),
            format!("{}_{}", "x".repeat(54), crate::hash::short(&slug(&long), 8))
        );
    }

    #[test]
    fn short_names_are_untouched() {
        assert_eq!(identifier("a\0b"), "a_b");
        assert_eq!(identifier("my_app_feature"), "my_app_feature");
    }
}
