//! The configuration a run printed before training started, as `key:value`
//! pairs: the hyperparameter dump (`  num_layers: 11`) and the inline
//! lines of the stock script (`world_size:8 grad_accum_steps:1`,
//! `train_loader:dataset:fineweb10B_sp1024 train_shards:25`).
//!
//! Lines with code punctuation are not configuration (many logs start with
//! a copy of the script: `log0(f"world_size:{world_size}")`,
//! `seed = int(...)`), nor are tables (`|`), so what is kept is what the
//! run printed.

/// Keys kept per log, at most: real dumps print about 150.
const MAX_ENTRIES: usize = 512;
const MAX_KEY_CHARS: usize = 64;
const MAX_VALUE_CHARS: usize = 80;
/// Configuration lines are short; a longer line is something else.
const MAX_LINE_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigEntry {
    pub key: String,
    pub value: String,
    /// The 1-based line it was printed on.
    pub line: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    entries: Vec<ConfigEntry>,
}

impl Config {
    pub fn entries(&self) -> &[ConfigEntry] {
        &self.entries
    }

    pub fn entry(&self, key: &str) -> Option<&ConfigEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    #[cfg(test)]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entry(key).map(|e| e.value.as_str())
    }

    pub fn read_line(&mut self, line: &str, number: usize) {
        const CODE: &[u8] = b"(){}\"'=;#|`";
        let trimmed = line.trim();
        if trimmed.is_empty()
            || trimmed.len() > MAX_LINE_BYTES
            || trimmed.bytes().any(|b| CODE.contains(&b))
            || trimmed.starts_with("warmup")
        {
            return;
        }
        // `key: value`, the dump's form, with a one-token value (a
        // docstring's `lr: learning rate` is prose, not a setting).
        if let Some((key, value)) = trimmed.split_once(": ") {
            let value = value.trim();
            if is_key(key) && !value.is_empty() && !value.contains(char::is_whitespace) {
                self.insert(key, value, number);
            }
            return;
        }
        for token in trimmed.split_whitespace() {
            if let Some((key, value)) = token.split_once(':') {
                if is_key(key) && !value.is_empty() && !value.starts_with("//") {
                    self.insert(key, value, number);
                }
            }
        }
    }

    fn insert(&mut self, key: &str, value: &str, line: usize) {
        let value: String = value.chars().take(MAX_VALUE_CHARS).collect();
        if let Some(entry) = self.entries.iter_mut().find(|e| e.key == key) {
            entry.value = value;
            entry.line = line;
        } else if self.entries.len() < MAX_ENTRIES {
            self.entries.push(ConfigEntry {
                key: key.to_string(),
                value,
                line,
            });
        }
    }
}

/// An identifier: a letter or `_`, then letters, digits and `_`.
fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= MAX_KEY_CHARS
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let mut config = Config::default();
        for (i, line) in text.lines().enumerate() {
            config.read_line(line, i + 1);
        }
        config
    }

    #[test]
    fn reads_dumps_and_inline_pairs_but_not_code() {
        let c = config(
            "Hyperparameters:
  num_layers: 11
  data_dir: /workspace/data
train_loader:dataset:fineweb10B_sp1024 train_shards:25
world_size:8 grad_accum_steps:1
    log0(f\"world_size:{world_size}\")
    seed: int = 1337
    lr: learning rate of the matrices
see https://example.org/x
|  0  NVIDIA H100 80GB HBM3  On  |
W0426 20:47:57.175000 888385 torch/distributed/run.py:803] warn
warmup_step:1/20",
        );
        assert_eq!(c.get("num_layers"), Some("11"));
        assert_eq!(c.entry("num_layers").unwrap().line, 2);
        assert_eq!(c.get("data_dir"), Some("/workspace/data"));
        assert_eq!(c.get("train_loader"), Some("dataset:fineweb10B_sp1024"));
        assert_eq!(c.get("train_shards"), Some("25"));
        assert_eq!(c.get("world_size"), Some("8"));
        assert_eq!(c.get("seed"), None);
        assert_eq!(c.get("warmup_step"), None);
        assert_eq!(c.entries().len(), 6);
    }
}
