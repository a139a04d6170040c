//! What each tool keeps of a migration in its own ledger besides its
//! version: sqlx's description and SHA-384, Prisma's SHA-256, Flyway's
//! description and CRC-32 over the file's lines.

use sha2::{Digest, Sha256, Sha384};

use super::layout::Format;

/// The description and checksum `format`'s tool records for the file at
/// `path` (in the folder) holding `text`; empty where it records none.
pub fn identity(format: Format, path: &str, text: &str) -> (String, String) {
    let file = path.rsplit('/').next().unwrap_or(path);
    match format {
        Format::Sqlx => {
            let rest = file.split_once('_').map_or("", |(_, rest)| rest);
            let stem = [".up.sql", ".down.sql", ".sql"]
                .iter()
                .find_map(|suffix| rest.strip_suffix(suffix))
                .unwrap_or(rest);
            (
                stem.replace('_', " "),
                hex(&Sha384::digest(text.as_bytes())),
            )
        }
        Format::Prisma => (String::new(), hex(&Sha256::digest(text.as_bytes()))),
        Format::Flyway => {
            let stem = file.split_once("__").map_or("", |(_, rest)| rest);
            let stem = stem.strip_suffix(".sql").unwrap_or(stem);
            (stem.replace('_', " "), flyway_checksum(text).to_string())
        }
        _ => (String::new(), String::new()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Flyway's checksum: CRC-32 over the UTF-8 bytes of each line, without
/// its line ending (so LF and CRLF agree) and without a byte-order mark,
/// as a signed 32-bit number.
pub fn flyway_checksum(text: &str) -> i32 {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut crc = !0u32;
    for line in text.split('\n') {
        for &byte in line.strip_suffix('\r').unwrap_or(line).as_bytes() {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
    }
    i32::from_ne_bytes((!crc).to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_are_the_tools_own() {
        // CRC-32's check value, and Flyway's line-ending independence.
        assert_eq!(flyway_checksum("123456789") as u32, 0xCBF4_3926);
        assert_eq!(
            flyway_checksum("12345\r\n6789\n"),
            flyway_checksum("12345\n6789")
        );
        let (description, checksum) = identity(Format::Sqlx, "20240101_create_users.up.sql", "");
        assert_eq!(description, "create users");
        assert!(checksum.starts_with("38b060a751ac9638"), "{checksum}");
        let (_, checksum) = identity(Format::Prisma, "x/migration.sql", "");
        assert!(checksum.starts_with("e3b0c44298fc1c14"), "{checksum}");
        let (description, _) = identity(Format::Flyway, "V1_1__add_users.sql", "");
        assert_eq!(description, "add users");
    }
}
