//! The digits JSON numbers were written with. serde_json keeps only the f64,
//! so `1.0700` and `1.07` read the same; but a claim printed to four
//! decimals promises more than one printed to two, and the comparison with
//! the logs allows only the rounding the claim's own digits imply. The
//! document's number tokens are lexed once, here, and looked up by value.

use std::collections::HashMap;

use super::text::Printed;

/// Printed decimals by f64 value (as bits).
pub struct JsonDigits(HashMap<u64, u32>);

impl JsonDigits {
    /// Lexes every number outside strings. A value written twice with
    /// different digits keeps the most: the stricter comparison.
    pub fn lex(source: &[u8]) -> JsonDigits {
        let mut digits: HashMap<u64, u32> = HashMap::new();
        let mut at = 0;
        while let Some(&byte) = source.get(at) {
            if byte == b'"' {
                at = end_of_string(source, at + 1);
            } else if byte == b'-' || byte.is_ascii_digit() {
                let len = source[at..]
                    .iter()
                    .take_while(|b| {
                        b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
                    })
                    .count();
                let printed = std::str::from_utf8(&source[at..at + len])
                    .ok()
                    .and_then(Printed::parse);
                if let Some(printed) = printed {
                    let entry = digits.entry(printed.value.to_bits()).or_insert(0);
                    *entry = (*entry).max(printed.decimals);
                }
                at += len;
            } else {
                at += 1;
            }
        }
        JsonDigits(digits)
    }

    /// `value` with the digits it was written with, or, for a value not
    /// found in the text, those of its shortest representation.
    pub fn printed(&self, value: f64) -> Option<Printed> {
        match self.0.get(&value.to_bits()) {
            Some(&decimals) if value.is_finite() => Some(Printed { value, decimals }),
            _ => Printed::from_f64(value),
        }
    }
}

/// The index after the closing quote of a string starting at `from`.
fn end_of_string(source: &[u8], mut from: usize) -> usize {
    while let Some(&byte) = source.get(from) {
        match byte {
            b'\\' => from += 2,
            b'"' => return from + 1,
            _ => from += 1,
        }
    }
    source.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_trailing_zeros_and_skips_strings() {
        let digits =
            JsonDigits::lex(br#"{"a": 1.0700, "b": "2.5000", "c\"": [2.80170, -3e-2, 1.07]}"#);
        assert_eq!(digits.printed(1.07).map(|p| p.decimals), Some(4));
        assert_eq!(digits.printed(2.8017).map(|p| p.decimals), Some(5));
        assert_eq!(digits.printed(2.5).map(|p| p.decimals), Some(1));
        assert_eq!(digits.printed(-0.03).map(|p| p.decimals), Some(2));
        assert_eq!(digits.printed(f64::INFINITY), None);
    }

    #[test]
    fn survives_garbage() {
        let digits = JsonDigits::lex(b"\"\\");
        assert_eq!(digits.printed(1.5).map(|p| p.decimals), Some(1));
        JsonDigits::lex(b"--1e--.5 \xff 9999999999999999999999e99999");
    }
}
