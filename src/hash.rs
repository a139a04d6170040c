//! Content hashes as they appear in locks and ledgers: `blake3:<64 hex>`.

pub const PREFIX: &str = "blake3:";

pub fn of(bytes: &[u8]) -> String {
    format!("{PREFIX}{}", blake3::hash(bytes).to_hex())
}

/// Checksum of a text file that ignores Windows line endings, so a checkout
/// with `core.autocrlf` gets the same checksum as one without.
pub fn of_text(bytes: &[u8]) -> String {
    of(&normalize_newlines(bytes))
}

fn normalize_newlines(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter().peekable();
    while let Some(&b) = iter.next() {
        if b == b'\r' && iter.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(b);
    }
    out
}

/// A short hash for suffixes (identifiers cut to length, port start points).
pub fn short(text: &str, hex_len: usize) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..hex_len].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_lf_checksum_alike() {
        assert_eq!(of_text(b"a\r\nb\r\n"), of_text(b"a\nb\n"));
        assert_ne!(of_text(b"a\rb"), of_text(b"ab"));
    }

    #[test]
    fn hashes_carry_the_algorithm() {
        let h = of(b"");
        assert!(h.starts_with("blake3:"));
        assert_eq!(h.len(), 7 + 64);
    }
}
