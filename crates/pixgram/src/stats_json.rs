//! The receiver's counters as one JSON object, derived from the counter structs: a counter
//! added to [`ReceiverStats`] appears by itself (its `counters()` lists every field), and one
//! added to [`OpenStats`] does not compile here until it is named (the destructuring below
//! has no `..`).

use pixgram_core::seal::OpenStats;
use pixgram_core::ReceiverStats;
use serde_json::{json, Value};

/// Every counter as `{"event": "stats", name: value, ...}`; a keyed receiver's authentication
/// counters are prefixed `key_`.
pub fn receiver_stats_json(stats: &ReceiverStats, key: Option<&OpenStats>) -> Value {
    let mut v = json!({ "event": "stats" });
    for (name, value) in stats.counters() {
        v[name] = json!(value);
    }
    for (name, value) in key.map(open_counters).unwrap_or_default() {
        v[format!("key_{name}")] = json!(value);
    }
    v
}

/// Every counter of an [`OpenStats`] with its name.
pub fn open_counters(s: &OpenStats) -> Vec<(&'static str, u64)> {
    let OpenStats {
        opened,
        not_sealed,
        bad_tag,
        replayed,
        salts_evicted,
        no_session_key,
        not_session_sealed,
    } = s.clone();
    vec![
        ("opened", opened),
        ("not_sealed", not_sealed),
        ("bad_tag", bad_tag),
        ("replayed", replayed),
        ("salts_evicted", salts_evicted),
        ("no_session_key", no_session_key),
        ("not_session_sealed", not_session_sealed),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_is_in_the_line() {
        let v = receiver_stats_json(&ReceiverStats::default(), Some(&OpenStats::default()));
        let n = ReceiverStats::default().counters().len() + 7;
        assert_eq!(v.as_object().unwrap().len(), n + 1, "{v}");
        assert_eq!(v["key_salts_evicted"], 0);
    }
}
