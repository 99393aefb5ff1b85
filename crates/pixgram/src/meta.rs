//! [`FrameMeta`]: the metadata convention, read and written here and nowhere else.
//!
//! A frame's metadata is one JSON object. pixgram's own keys are `"file"` (the name the
//! receiver saves it under), `"frame"` (a live source's frame number), `"sent_us"` (capture
//! time, Unix microseconds: the receiver's latency), `"encode_us"` (encoding time, µs) and
//! `"width"` / `"height"`; any other key is the application's and travels untouched.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// The metadata of one frame.
///
/// ```
/// use pixgram::FrameMeta;
/// let meta = FrameMeta::named("photo.jpg").with("camera", "front");
/// let back = FrameMeta::parse(&meta.to_bytes()).unwrap();
/// assert_eq!(back.file.as_deref(), Some("photo.jpg"));
/// assert_eq!(back.extra["camera"], "front");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameMeta {
    /// `"file"`: the sender's name for the frame.
    pub file: Option<String>,
    /// `"frame"`: the frame's number in its live source.
    pub frame: Option<u64>,
    /// `"sent_us"`: when it was captured, microseconds since the Unix epoch.
    pub sent_us: Option<u64>,
    /// `"encode_us"`: how long encoding it took, in microseconds.
    pub encode_us: Option<u64>,
    /// `"width"`: in pixels.
    pub width: Option<u64>,
    /// `"height"`: in pixels.
    pub height: Option<u64>,
    /// Every other key: the application's own.
    pub extra: Map<String, Value>,
}

/// Latencies longer than this mean the clocks are not comparable, not a slow network.
const COMPARABLE_CLOCKS: Duration = Duration::from_secs(60);

impl FrameMeta {
    /// Metadata naming the frame `file`.
    pub fn named(file: impl Into<String>) -> Self {
        FrameMeta {
            file: Some(file.into()),
            ..Self::default()
        }
    }

    /// The application's `extra` keys, parsed from a JSON object (pixgram's own keys in it are
    /// taken as such).
    pub fn from_object(object: Map<String, Value>) -> Self {
        let mut meta = FrameMeta {
            extra: object,
            ..Self::default()
        };
        meta.file = take(&mut meta.extra, "file", |v| v.as_str().map(String::from));
        meta.frame = take(&mut meta.extra, "frame", Value::as_u64);
        meta.sent_us = take(&mut meta.extra, "sent_us", Value::as_u64);
        meta.encode_us = take(&mut meta.extra, "encode_us", Value::as_u64);
        meta.width = take(&mut meta.extra, "width", Value::as_u64);
        meta.height = take(&mut meta.extra, "height", Value::as_u64);
        meta
    }

    /// The metadata in `bytes`, if they are a JSON object.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        match serde_json::from_slice(bytes) {
            Ok(Value::Object(m)) => Some(Self::from_object(m)),
            _ => None,
        }
    }

    /// Adds (or replaces) one of the application's keys.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(key.into(), value.into());
        self
    }

    /// `self` with every key `other` sets taken from `other`.
    pub fn overridden_by(mut self, other: FrameMeta) -> Self {
        self.extra.extend(other.extra);
        self.file = other.file.or(self.file);
        self.frame = other.frame.or(self.frame);
        self.sent_us = other.sent_us.or(self.sent_us);
        self.encode_us = other.encode_us.or(self.encode_us);
        self.width = other.width.or(self.width);
        self.height = other.height.or(self.height);
        self
    }

    /// Stamps the capture time: now.
    pub fn captured_now(mut self) -> Self {
        self.sent_us = Some(unix_micros());
        self
    }

    /// The whole object: the application's keys, then pixgram's (which win).
    pub fn to_object(&self) -> Map<String, Value> {
        let mut m = self.extra.clone();
        let own = [
            ("frame", self.frame),
            ("sent_us", self.sent_us),
            ("encode_us", self.encode_us),
            ("width", self.width),
            ("height", self.height),
        ];
        for (key, value) in own {
            if let Some(v) = value {
                m.insert(key.into(), v.into());
            }
        }
        if let Some(f) = &self.file {
            m.insert("file".into(), Value::String(f.clone()));
        }
        m
    }

    /// The bytes sent: the object as compact JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.to_object()).expect("a JSON object encodes")
    }

    /// Time from capture (`sent_us`) to now, when the sender stamped it and the clocks look
    /// comparable (less than a minute apart).
    pub fn latency(&self) -> Option<Duration> {
        let d = unix_micros().checked_sub(self.sent_us?)?;
        let d = Duration::from_micros(d);
        (d < COMPARABLE_CLOCKS).then_some(d)
    }

    /// Encoding time, if the sender measured it.
    pub fn encode_time(&self) -> Option<Duration> {
        self.encode_us.map(Duration::from_micros)
    }
}

/// Metadata bytes as a JSON value for display: the JSON they hold, or their text as a string.
pub fn display_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::from(String::from_utf8_lossy(bytes)))
}

/// Now, in microseconds since the Unix epoch (what `sent_us` carries).
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Removes `key` from `m` if `read` accepts its value.
fn take<T>(m: &mut Map<String, Value>, key: &str, read: impl Fn(&Value) -> Option<T>) -> Option<T> {
    let v = read(m.get(key)?)?;
    m.remove(key);
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixgram_keys_win_and_foreign_ones_travel() {
        let user = FrameMeta::parse(br#"{"camera":"front","frame":"x"}"#).unwrap();
        assert_eq!(
            user.frame, None,
            "a string is not a frame number: kept as the user's"
        );
        let source = FrameMeta {
            frame: Some(7),
            sent_us: Some(1),
            ..FrameMeta::default()
        };
        let meta = user
            .overridden_by(source)
            .overridden_by(FrameMeta::named("a.jpg"));
        assert_eq!(
            String::from_utf8(meta.to_bytes()).unwrap(),
            r#"{"camera":"front","file":"a.jpg","frame":7,"sent_us":1}"#
        );
        assert!(FrameMeta::parse(b"[1]").is_none());
        assert_eq!(display_value(b"not json"), Value::from("not json"));
    }

    #[test]
    fn latency_needs_comparable_clocks() {
        let now = FrameMeta::default().captured_now();
        assert!(now.latency().is_some_and(|d| d < Duration::from_secs(5)));
        let old = FrameMeta {
            sent_us: Some(1),
            ..FrameMeta::default()
        };
        assert_eq!(old.latency(), None);
    }
}
