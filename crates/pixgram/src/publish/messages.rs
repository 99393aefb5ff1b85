//! JSON messages through a [`UdpSender`], in order, every verdict collected.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pixgram_core::{FrameId, OutgoingFrame, SendFailure, SenderEvent, StreamId};

use crate::error::DriverError;
use crate::sender::UdpSender;

/// What became of a run of messages.
#[derive(Debug, Default)]
pub struct MessageReport {
    /// Messages handed to the sender (fewer than asked if stopped or ended by an error).
    pub sent: usize,
    /// Acknowledged, in the order the acknowledgements came: id, latency, and whether it was
    /// first reported lost.
    pub delivered: Vec<(FrameId, Duration, bool)>,
    /// Not acknowledged, and why.
    pub not_delivered: BTreeMap<FrameId, SendFailure>,
    /// What ended the run early.
    pub error: Option<DriverError>,
}

/// Sends `messages` in order until `stop`, then waits for their acknowledgements for as long
/// as the receiver keeps answering (`quiet`: how long a silence is waited out); every message
/// sent ends with a verdict.
pub fn send_messages(
    tx: &mut UdpSender,
    messages: Vec<Vec<u8>>,
    quiet: Duration,
    stop: &AtomicBool,
) -> MessageReport {
    let mut report = MessageReport::default();
    let stopped = || stop.load(Ordering::Relaxed);
    let result = (|| {
        for m in messages {
            if stopped() {
                break;
            }
            tx.send(OutgoingFrame::message(StreamId::MESSAGES, m))?;
            report.sent += 1;
        }
        tx.flush_until(quiet, stopped)
    })();
    tx.abandon();
    report.error = result.err();
    while let Some(e) = tx.poll_event() {
        match e {
            SenderEvent::Acked { frame, latency, .. } => {
                report.delivered.push((frame, latency, false))
            }
            SenderEvent::Lost { frame, reason, .. } => {
                report.not_delivered.insert(frame, reason);
            }
            SenderEvent::LateAck { frame, latency, .. } => {
                if report.not_delivered.remove(&frame).is_some() {
                    report.delivered.push((frame, latency, true));
                }
            }
            SenderEvent::PeerGone => {}
        }
    }
    report
}
