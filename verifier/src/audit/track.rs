//! Which track a record is in, and so which limits apply. The 10-minute
//! track (`records/track_10min_16mb`) holds runs to 600 s of training and
//! 600 s of evaluation on 8xH100; the non-record track
//! (`records/track_non_record_16mb`: unlimited compute, other hardware,
//! ideas that do not beat the best) keeps only the 16,000,000-byte cap.
//!
//! The track is read from submission.json's `track` (`10min_16mb`,
//! `non-record-16mb`, `non-record-unlimited-compute-16mb`), else from the
//! folder's path (`track_non_record_16mb/...`), else the 10-minute track
//! is assumed and the report says so.

use std::path::Path;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// The 10-minute, 16 MB track: every limit applies.
    TenMinute,
    /// The non-record track: the cap applies, the time limits do not.
    NonRecord,
}

/// The track and where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackOf {
    pub track: Track,
    pub source: String,
}

impl TrackOf {
    pub fn time_limits_apply(&self) -> bool {
        self.track == Track::TenMinute
    }

    pub fn name(&self) -> &'static str {
        match self.track {
            Track::TenMinute => "10-minute record track",
            Track::NonRecord => "non-record track",
        }
    }
}

pub fn track_of(submission: Option<&Value>, dir: &Path) -> TrackOf {
    if let Some(declared) = submission
        .and_then(|s| s.get("track"))
        .and_then(Value::as_str)
    {
        if let Some(track) = classify(declared, true) {
            return TrackOf {
                track,
                source: format!("submission.json's track {declared:?}"),
            };
        }
    }
    // The folder and its parent (`track_non_record_16mb/<folder>`): the
    // names above those are the reviewer's, not the record's.
    let absolute = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    for component in absolute.components().rev().take(2) {
        let name = component.as_os_str().to_string_lossy();
        if let Some(track) = classify(&name, false) {
            return TrackOf {
                track,
                source: format!("the folder's path ({})", super::folder::safe_name(&name)),
            };
        }
    }
    TrackOf {
        track: Track::TenMinute,
        source: "assumed: neither submission.json nor the path names a track".into(),
    }
}

/// `non-record`, `non_record` (and, in a declared track, `unlimited`) →
/// non-record; `10min`, `track_10min_16mb` → the 10-minute track. A folder
/// name is read more strictly: a record may well be named "unlimited...".
fn classify(text: &str, declared: bool) -> Option<Track> {
    let lower = text.to_ascii_lowercase().replace(['_', ' '], "-");
    if lower.contains("non-record")
        || lower.contains("nonrecord")
        || (declared && lower.contains("unlimited"))
    {
        Some(Track::NonRecord)
    } else if lower.contains("10min") || lower.contains("10-min") {
        Some(Track::TenMinute)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_submission_then_path() {
        let here = Path::new("/nowhere/records/track_non_record_16mb/2026-03-30_X");
        assert_eq!(track_of(None, here).track, Track::NonRecord);
        let declared = json!({"track": "10min_16mb"});
        assert_eq!(track_of(Some(&declared), here).track, Track::TenMinute);
        let unlimited = json!({"track": "non-record-unlimited-compute-16mb"});
        assert_eq!(
            track_of(Some(&unlimited), Path::new("/x")).track,
            Track::NonRecord
        );
        let t = track_of(Some(&json!({"track": 7})), Path::new("/nowhere/x"));
        assert_eq!(t.track, Track::TenMinute);
        assert!(t.source.starts_with("assumed"));
    }
}
