//! Small text-formatting helpers shared by the commands' human output.

pub use pgq_verifier::format::{shape_text as shape, thousands};

/// A plain left/right-aligned table: the first row is the header; columns
/// whose header starts with '>' are right-aligned (the '>' is dropped).
pub fn table(rows: &[Vec<String>]) -> String {
    let Some(header) = rows.first() else {
        return String::new();
    };
    let right: Vec<bool> = header.iter().map(|h| h.starts_with('>')).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| c.strip_prefix('>').unwrap_or(c).to_string())
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (ri, r) in cells.iter().enumerate() {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if right[i] {
                    format!("{c:>w$}", w = widths[i])
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        out += line.join("  ").trim_end();
        out.push('\n');
        if ri == 0 {
            out += &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  ");
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(16_000_000), "16,000,000");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&[
            vec!["name".into(), ">bytes".into()],
            vec!["a".into(), "10".into()],
            vec!["long".into(), "5".into()],
        ]);
        assert_eq!(t, "name  bytes\n----  -----\na        10\nlong      5\n");
    }
}
