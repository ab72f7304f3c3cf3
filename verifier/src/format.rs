//! How figures are written for people, shared by the CLI's tables, the
//! verifier's and audit's messages, and the browser viewer, so that the
//! same number reads the same everywhere.

/// `16054963` as `16,054,963`, the way the field's READMEs print sizes.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Text safe to print on a terminal or in a report: control characters (a
/// newline, an escape sequence, a carriage return that would overwrite a
/// line) are written as `\u{..}` escapes, so input quoted in a report or an
/// error (a file name, a pickle global, a tensor name) cannot forge a line
/// or drive the terminal. Text without them is returned as it is.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A tensor's shape as `pgq inspect` prints it: `[2048, 512]` ->
/// "2048x512"; rank 0 -> "scalar".
pub fn shape_text(shape: &[u64]) -> String {
    if shape.is_empty() {
        return "scalar".into();
    }
    shape
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("x")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(15_988_983), "15,988,983");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn shapes_read_as_the_cli_prints_them() {
        assert_eq!(shape_text(&[2048, 512]), "2048x512");
        assert_eq!(shape_text(&[512]), "512");
        assert_eq!(shape_text(&[]), "scalar");
    }
}
