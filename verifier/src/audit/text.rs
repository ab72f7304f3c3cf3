//! Lexical helpers shared by the log and submission.json readers. Neither
//! has a schema, so every figure is found by its key and parsed by hand,
//! and nothing here trusts a length or a number it is given.

/// A decimal figure as printed, with the number of digits after the point:
/// comparisons between a claim and a log allow for the rounding those
/// digits imply.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Printed {
    pub value: f64,
    pub decimals: u32,
}

/// Slack for f64 arithmetic on top of a rounding allowance.
pub const FLOAT_SLACK: f64 = 1e-12;

/// Beyond this many decimals, rounding is below f64 resolution anyway.
const MAX_DECIMALS: u32 = 17;

impl std::fmt::Display for Printed {
    /// With the digits it was printed with: `2.77115720`, not `2.7711572`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.*}", self.decimals as usize, self.value)
    }
}

impl Printed {
    /// Parses `1.08664424`, `-2`, `3.2e-3`; rejects anything that is not a
    /// finite decimal.
    pub fn parse(token: &str) -> Option<Printed> {
        let value: f64 = token.parse().ok()?;
        if !value.is_finite() {
            return None;
        }
        let (mantissa, exponent) = match token.find(['e', 'E']) {
            Some(at) => (&token[..at], token[at + 1..].parse::<i64>().ok()?),
            None => (token, 0),
        };
        let fraction_digits = mantissa.split_once('.').map_or(0, |(_, f)| f.len());
        let decimals = i64::try_from(fraction_digits)
            .unwrap_or(i64::MAX)
            .saturating_sub(exponent)
            .clamp(0, i64::from(MAX_DECIMALS));
        Some(Printed {
            value,
            decimals: u32::try_from(decimals).unwrap_or(MAX_DECIMALS),
        })
    }

    /// A JSON number: its digits are those of the shortest representation
    /// that reads back as the same f64 (a trailing zero in the file, as in
    /// `2.80170`, is lost; the tolerance is then wider, never narrower).
    pub fn from_f64(value: f64) -> Option<Printed> {
        Printed::parse(&value.to_string())
    }

    /// Half a unit in the last printed place: how far rounding to these
    /// digits can have moved the figure.
    pub fn half_unit(&self) -> f64 {
        0.5 * 10f64.powi(-i32::try_from(self.decimals).unwrap_or(0))
    }
}

/// A byte count as printed, and its value when it is a whole number that
/// fits 64 bits (`15988983`, `15,988,983`).
#[derive(Debug, Clone, PartialEq)]
pub struct ByteCount {
    pub printed: String,
    pub value: Option<u64>,
}

impl ByteCount {
    pub fn parse(token: &str) -> ByteCount {
        ByteCount {
            printed: excerpt(token, 40),
            value: parse_count(token),
        }
    }

    /// Digits only, but too many for 64 bits: certainly over any cap.
    pub fn is_overflowing_digits(&self) -> bool {
        self.value.is_none() && digits_of(&self.printed).is_some()
    }
}

/// The digits of a count written with optional thousands separators.
fn digits_of(token: &str) -> Option<String> {
    let digits: String = token
        .chars()
        .filter(|c| !matches!(c, ',' | '_' | '\''))
        .collect();
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

pub fn parse_count(token: &str) -> Option<u64> {
    digits_of(token)?.parse().ok()
}

/// The token after `key` (which includes its colon, e.g. `val_bpb:`) where
/// `key` starts a word: `eval_time:` does not match inside
/// `total_eval_time:`. Spaces after the colon are skipped
/// (`train_time: 588136ms` and `train_time:600038ms` both occur).
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(found) = line.get(from..)?.find(key) {
        let at = from + found;
        let starts_word = line[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after = &line[at + key.len()..];
        if starts_word {
            let value = after.trim_start();
            let end = value
                .find(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '(' | ')' | '|'))
                .unwrap_or(value.len());
            if end > 0 {
                return Some(&value[..end]);
            }
        }
        from = at + key.len();
    }
    None
}

/// A duration such as `600038ms`, `329.0s` or `8.8m`, in milliseconds
/// (the unit most logs print, so sums of them stay exact).
pub fn duration_ms(token: &str) -> Option<f64> {
    let split = token
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(token.len());
    let amount: f64 = token[..split].parse().ok()?;
    let scale = match &token[split..] {
        "ms" => 1.0,
        "s" | "sec" => 1e3,
        "m" | "min" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    let ms = amount * scale;
    ms.is_finite().then_some(ms)
}

/// Where `phrase` occurs in `line`, ignoring ASCII case. The first byte
/// is tested alone before the rest is compared: most positions of a log
/// line fail there.
pub fn find_ignoring_case(line: &str, phrase: &str) -> Option<usize> {
    let (hay, needle) = (line.as_bytes(), phrase.as_bytes());
    let (&first, rest) = needle.split_first()?;
    if hay.len() < needle.len() {
        return None;
    }
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    (0..=hay.len() - needle.len()).find(|&at| {
        let b = hay[at];
        (b == lower || b == upper) && hay[at + 1..at + needle.len()].eq_ignore_ascii_case(rest)
    })
}

/// A piece of input safe to quote in a one-line detail: control characters
/// replaced, at most `max_chars` characters.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let trimmed = text.trim();
    let mut out: String = trimmed
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if trimmed.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// A name made safe for a check id: `seed.<this>.cap`.
pub fn id_part(name: &str) -> String {
    let part: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if part.is_empty() {
        "_".into()
    } else {
        part
    }
}

pub use crate::format::thousands;

/// A claim against a logged figure: pass ("agrees with") within the
/// tolerance, fail ("disagrees with") beyond it.
pub fn agreement(difference: f64, tolerance: f64) -> (crate::report::Status, &'static str) {
    if difference <= tolerance {
        (crate::report::Status::Pass, "agrees with")
    } else {
        (crate::report::Status::Fail, "disagrees with")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_keeps_its_digits() {
        assert_eq!(
            Printed::parse("1.08664424"),
            Some(Printed {
                value: 1.08664424,
                decimals: 8
            })
        );
        assert_eq!(Printed::parse("2").map(|p| p.decimals), Some(0));
        assert_eq!(Printed::parse("3.25e-3").map(|p| p.decimals), Some(5));
        assert_eq!(Printed::parse("1e400"), None);
        assert_eq!(Printed::parse("NaN"), None);
        assert_eq!(Printed::parse("1.2.3"), None);
        assert_eq!(Printed::from_f64(2.8017).map(|p| p.decimals), Some(4));
        assert!((Printed::parse("1.0856").unwrap().half_unit() - 0.00005).abs() < 1e-15);
        assert_eq!(
            Printed::parse("2.77115720").unwrap().to_string(),
            "2.77115720"
        );
    }

    #[test]
    fn counts_accept_separators_and_refuse_overflow() {
        assert_eq!(parse_count("15,988,983"), Some(15_988_983));
        assert_eq!(parse_count("15988983"), Some(15_988_983));
        assert_eq!(parse_count("15.9"), None);
        assert_eq!(parse_count(""), None);
        let huge = ByteCount::parse("999999999999999999999999");
        assert_eq!(huge.value, None);
        assert!(huge.is_overflowing_digits());
        assert!(!ByteCount::parse("n/a").is_overflowing_digits());
    }

    #[test]
    fn fields_start_words_and_skip_spaces() {
        let line = "quantized_ttt_phased val_loss:2.77 val_bpb:1.07 eval_time:329031ms";
        assert_eq!(field(line, "val_bpb:"), Some("1.07"));
        assert_eq!(field(line, "eval_time:"), Some("329031ms"));
        assert_eq!(field("total_eval_time:329.0s", "eval_time:"), None);
        assert_eq!(
            field("total_eval_time:329.0s", "total_eval_time:"),
            Some("329.0s")
        );
        assert_eq!(
            field("train_time: 588136ms step: 4986/20000", "step:"),
            Some("4986/20000")
        );
        assert_eq!(field("step_avg:43.54ms", "step:"), None);
        assert_eq!(field("val_bpb:", "val_bpb:"), None);
    }

    #[test]
    fn durations_have_units() {
        assert_eq!(duration_ms("600038ms"), Some(600_038.0));
        assert_eq!(duration_ms("329.0s"), Some(329_000.0));
        assert_eq!(duration_ms("8.8m"), Some(8.8 * 60e3));
        assert_eq!(duration_ms("12"), None);
        assert_eq!(duration_ms("ms"), None);
    }

    #[test]
    fn helpers_are_safe_on_odd_text() {
        assert_eq!(
            find_ignoring_case("x TOTAL Submission size: 1", "total submission size"),
            Some(2)
        );
        assert_eq!(find_ignoring_case("é", "total"), None);
        assert_eq!(excerpt("a\u{7}b", 10), "a b");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        assert_eq!(id_part("train seed/42"), "train_seed_42");
        assert_eq!(id_part(""), "_");
        assert_eq!(thousands(16_054_963), "16,054,963");
        assert_eq!(thousands(999), "999");
    }
}
