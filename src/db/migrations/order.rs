//! The order each tool applies its migrations in, as a key computed from
//! the migration's name alone (so a ledger row without its file still has
//! one): golang-migrate, sqlx and goose by version number, Flyway by its
//! dotted version (`V2` before `V10`) with repeatables after every
//! versioned one, the others by name.

use super::layout::Format;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrderKey {
    /// A version number, then the name (two files never share a version:
    /// `layout` refuses that).
    Number(u128, String),
    /// Flyway's version parts.
    Parts(Vec<u128>, String),
    Name(String),
    /// Flyway's `R__` files: after every versioned migration, by name,
    /// and never "out of order".
    Repeatable(String),
}

impl OrderKey {
    pub fn is_repeatable(&self) -> bool {
        matches!(self, OrderKey::Repeatable(_))
    }
}

/// The key of the migration named `name` (its path in the folder).
pub fn key(format: Format, name: &str) -> OrderKey {
    let file = name.rsplit('/').next().unwrap_or(name);
    let named = || OrderKey::Name(name.to_string());
    match format {
        Format::GolangMigrate | Format::Sqlx | Format::Goose => {
            number(file).map_or_else(named, |n| OrderKey::Number(n, name.to_string()))
        }
        Format::Flyway => {
            if file.starts_with("R__") {
                return OrderKey::Repeatable(name.to_string());
            }
            flyway_version(file).map_or_else(named, |v| OrderKey::Parts(v, name.to_string()))
        }
        Format::Flat | Format::Diesel | Format::Prisma | Format::Dbmate => named(),
    }
}

/// The digits a file name starts with, up to its first `_` (goose,
/// golang-migrate and sqlx name files `<version>_<name>`).
pub fn number(file: &str) -> Option<u128> {
    let (digits, _) = file.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `V1.2_3__name.sql` ⇒ `[1, 2, 3]`: parts split at `.` or `_`.
pub fn flyway_version(file: &str) -> Option<Vec<u128>> {
    let (version, _) = file.strip_prefix('V')?.split_once("__")?;
    version
        .split(['.', '_'])
        .map(|part| {
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse().ok())
                .flatten()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(format: Format, names: &[&str]) -> Vec<String> {
        let mut names: Vec<&str> = names.to_vec();
        names.sort_by_key(|n| key(format, n));
        names.into_iter().map(String::from).collect()
    }

    #[test]
    fn each_tool_orders_by_its_own_rule() {
        assert_eq!(
            sorted(
                Format::Flyway,
                &[
                    "R__views.sql",
                    "V10__c.sql",
                    "V2__b.sql",
                    "V1.1__a.sql",
                    "V1__a.sql"
                ]
            ),
            [
                "V1__a.sql",
                "V1.1__a.sql",
                "V2__b.sql",
                "V10__c.sql",
                "R__views.sql"
            ]
        );
        assert_eq!(
            sorted(
                Format::GolangMigrate,
                &["10_c.up.sql", "9_b.up.sql", "1_a.up.sql"]
            ),
            ["1_a.up.sql", "9_b.up.sql", "10_c.up.sql"]
        );
        assert_eq!(
            sorted(Format::Flat, &["10_c.sql", "9_b.sql"]),
            ["10_c.sql", "9_b.sql"]
        );
        assert!(key(Format::Flyway, "R__x.sql").is_repeatable());
        assert_eq!(flyway_version("V1..2__x.sql"), None);
        assert_eq!(number("x1_a.sql"), None);
    }
}
