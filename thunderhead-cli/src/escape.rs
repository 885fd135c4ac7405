//! Keys and values as text. Every byte outside 0x20..=0x7E is written `\xHH`, except tab,
//! newline and carriage return (`\t`, `\n`, `\r`); a backslash is `\\`. Reading accepts
//! exactly those escapes (hex digits in either case), printable ASCII for itself, and
//! non-ASCII UTF-8 text for its own bytes.

use std::fmt;

/// Why a piece of text is not a valid escaped byte string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscapeError {
    /// Byte offset in the text.
    pub at: usize,
    pub reason: &'static str,
}

impl fmt::Display for EscapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.at)
    }
}

/// `bytes` as text.
pub fn escape(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'\\' => text.push_str("\\\\"),
            b'\t' => text.push_str("\\t"),
            b'\n' => text.push_str("\\n"),
            b'\r' => text.push_str("\\r"),
            0x20..=0x7E => text.push(byte as char),
            _ => text.push_str(&format!("\\x{byte:02x}")),
        }
    }
    text
}

/// The bytes `text` stands for.
pub fn unescape(text: &str) -> Result<Vec<u8>, EscapeError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte != b'\\' {
            // Control characters must be escaped; UTF-8 text stands for its bytes.
            if byte < 0x20 || byte == 0x7F {
                return Err(EscapeError {
                    at,
                    reason: "an unescaped control character",
                });
            }
            out.push(byte);
            at += 1;
            continue;
        }
        let escaped = match bytes.get(at + 1) {
            Some(b'\\') => b'\\',
            Some(b't') => b'\t',
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b'x') => {
                let digits = bytes.get(at + 2..at + 4).ok_or(EscapeError {
                    at,
                    reason: "\\x needs two hex digits",
                })?;
                let value = std::str::from_utf8(digits)
                    .ok()
                    .filter(|digits| digits.bytes().all(|digit| digit.is_ascii_hexdigit()))
                    .and_then(|digits| u8::from_str_radix(digits, 16).ok())
                    .ok_or(EscapeError {
                        at,
                        reason: "\\x needs two hex digits",
                    })?;
                out.push(value);
                at += 4;
                continue;
            }
            Some(_) => {
                return Err(EscapeError {
                    at,
                    reason: "an unknown escape (known: \\\\ \\t \\n \\r \\xHH)",
                });
            }
            None => {
                return Err(EscapeError {
                    at,
                    reason: "a lone backslash at the end",
                });
            }
        };
        out.push(escaped);
        at += 2;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value round-trips, and is written exactly as the rules say.
    #[test]
    fn every_byte_round_trips_as_specified() {
        for byte in 0..=255u8 {
            let text = escape(&[byte]);
            let expected = match byte {
                b'\\' => "\\\\".to_string(),
                b'\t' => "\\t".to_string(),
                b'\n' => "\\n".to_string(),
                b'\r' => "\\r".to_string(),
                0x20..=0x7E => (byte as char).to_string(),
                _ => format!("\\x{byte:02x}"),
            };
            assert_eq!(text, expected, "byte {byte:#04x}");
            assert_eq!(unescape(&text).unwrap(), vec![byte]);
            assert_eq!(unescape(&format!("\\x{byte:02X}")).unwrap(), vec![byte]);
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unescape(&escape(&all)).unwrap(), all);
    }

    /// Input: UTF-8 text stands for its bytes; anything else malformed is an error.
    #[test]
    fn input_rules() {
        assert_eq!(unescape("héllo").unwrap(), "héllo".as_bytes());
        for bad in ["\\", "\\q", "\\x", "\\x4", "\\xg0", "a\tb", "\u{7f}"] {
            assert!(unescape(bad).is_err(), "{bad:?}");
        }
    }
}
