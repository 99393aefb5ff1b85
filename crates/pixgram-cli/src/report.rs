//! What `send` prints: the progress bar, one line per verdict, the summary, the path line, and
//! how a run ends (its exit code, through [`crate::exit`]).

use indicatif::{ProgressBar, ProgressStyle};
use pixgram::figures::{ms, percent, rate_line};
use pixgram::publish::{SendReport, Verdict, NAMES_KEPT};
use pixgram::{Delivery, UdpSender};

use crate::exit;
use crate::output::print_line;

pub fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames {msg}",
        )
        .expect("valid template"),
    );
    bar
}

/// What to do with each verdict: move `bar` on, show the path in its message, and with
/// `verbose` print the verdict's line.
pub fn on_verdict(bar: &ProgressBar, verbose: bool) -> impl FnMut(&Verdict, &UdpSender) + '_ {
    move |v, tx| {
        if !v.late {
            bar.inc(1);
        }
        let p = tx.core().path();
        bar.set_message(format!(
            "{:.0} Mbit/s, rtt {}, queueing {}, loss {}, {} resent",
            p.rate * 8.0 / 1e6,
            p.srtt.map_or("n/a".into(), ms),
            p.queueing_delay().map_or("n/a".into(), ms),
            loss_text(p.loss),
            tx.stats().chunks_retransmitted
        ));
        if verbose {
            bar.suspend(|| print_line(&verdict_line(v)));
        }
    }
}

pub fn verdict_line(v: &Verdict) -> String {
    match v.outcome {
        Ok(latency) if v.late => format!(
            "frame {:>5}  {:<32} {:>10} B  acked late, after {} (counted delivered)",
            v.frame,
            v.name,
            v.bytes,
            ms(latency)
        ),
        Ok(rtt) => format!(
            "frame {:>5}  {:<32} {:>10} B  acked, rtt {}",
            v.frame,
            v.name,
            v.bytes,
            ms(rtt)
        ),
        Err(why) => format!(
            "frame {:>5}  {:<32} {:>10} B  LOST ({why:?})",
            v.frame, v.name, v.bytes
        ),
    }
}

pub fn summary(r: &mut SendReport) -> String {
    let mut late = String::new();
    if r.late_acks > 0 {
        late.push_str(&format!(", {} acknowledged late", r.late_acks));
    }
    if r.retried > 0 {
        late.push_str(&format!(
            ", {} sent again after the receiver expired them",
            r.retried
        ));
    }
    format!(
        "sent {}; acked {}, lost {}; RTT {}; latency {}; delivered {} of {} ({}){late}",
        rate_line(r.acked, r.bytes_acked, r.elapsed),
        r.acked,
        r.lost,
        r.rtt.describe(),
        r.latency.describe(),
        r.acked,
        r.asked(),
        percent(r.acked, r.asked()),
    )
}

/// "not delivered: a.jpg (Rejected), ... and N more", or `None` if everything was.
pub fn not_delivered_line(r: &SendReport) -> Option<String> {
    if r.lost + r.unsent == 0 {
        return None;
    }
    let mut names: Vec<String> = r
        .not_delivered
        .values()
        .take(NAMES_KEPT)
        .map(|(name, _, why)| format!("{name} ({why:?})"))
        .collect();
    let room = NAMES_KEPT.saturating_sub(names.len());
    names.extend(
        r.unsent_names
            .iter()
            .take(room)
            .map(|n| format!("{n} (not sent)")),
    );
    let total = r.lost + r.unsent;
    if names.is_empty() {
        return Some(format!("not delivered: {total} frames (never sent)"));
    }
    let more = total.saturating_sub(names.len() as u64);
    let mut line = format!("not delivered: {}", names.join(", "));
    if more > 0 {
        line.push_str(&format!(" and {more} more"));
    }
    Some(line)
}

/// How a run ends, after its summary: `Ok` only if everything asked for was delivered (live:
/// within `max_loss`); otherwise an error with the exit code of [`crate::exit`], after a line
/// naming what was not delivered.
pub fn conclude(
    report: &mut SendReport,
    tx: &UdpSender,
    delivery: Delivery,
    max_loss: Option<f64>,
) -> anyhow::Result<()> {
    let heard = tx.heard_from_peer();
    if let Some(line) = not_delivered_line(report) {
        eprintln!("{line}");
    }
    if let Some(e) = report.error.take() {
        return Err(exit::classify(exit::from_publish(e), heard));
    }
    if report.asked() == 0 {
        return Ok(());
    }
    if !heard && report.sent > 0 && !report.interrupted {
        // (Interrupted early, silence proves nothing: a receiver answers a frame's chunks
        // only when the frame is whole or stalls.)
        return Err(exit::unreachable(no_answer(tx)));
    }
    let missing = report.asked() - report.acked;
    let interrupted = if report.interrupted {
        " (interrupted)"
    } else {
        ""
    };
    match delivery {
        Delivery::Reliable if missing > 0 => Err(exit::undelivered(format!(
            "{missing} of {} frames were not delivered{interrupted}",
            report.asked()
        ))),
        Delivery::Reliable => Ok(()),
        Delivery::Live { .. } => {
            let lost_pct = 100.0 * missing as f64 / report.asked() as f64;
            if report.acked == 0 {
                Err(exit::undelivered(format!(
                    "none of {} frames was delivered{interrupted}",
                    report.asked()
                )))
            } else if max_loss.is_some_and(|max| lost_pct > max) {
                Err(exit::undelivered(format!(
                    "{missing} of {} frames ({lost_pct:.1}%) were not delivered, more than \
                     --max-loss {}%{interrupted}",
                    report.asked(),
                    max_loss.unwrap_or_default()
                )))
            } else if report.interrupted && report.unsent > 0 {
                Err(exit::undelivered(format!(
                    "interrupted: {} of {} frames were never sent",
                    report.unsent,
                    report.asked()
                )))
            } else {
                Ok(())
            }
        }
    }
}

/// Why nothing came back: nothing listening, or a receiver that does not answer.
fn no_answer(tx: &UdpSender) -> String {
    if tx.is_refused() {
        return format!(
            "nothing is listening at {} (the kernel refused the datagrams)",
            tx.peer()
        );
    }
    let hint = if tx.open_stats().is_some() {
        " (or it has another key: a receiver drops datagrams that fail authentication)"
    } else {
        " (the receiver may require --key-file: a receiver with a key drops datagrams \
         without one, without answering)"
    };
    format!(
        "no answer from {}: is `pixgram recv` running there?{hint}",
        tx.peer()
    )
}

/// Retransmissions, rate, RTT and queueing delay as the sender sees them.
fn path_line(tx: &UdpSender) -> String {
    let s = tx.stats();
    let p = tx.core().path();
    let share = 100.0 * s.chunks_retransmitted as f64 / s.datagrams_sent.max(1) as f64;
    format!(
        "path: {} datagrams ({} parity), {} chunks retransmitted ({share:.1}%) after {} NACKs \
         and {} timeouts; rate {:.0} Mbit/s, bottleneck estimate {}; smoothed RTT {}; \
         queueing delay {}; receiver sees {} loss",
        s.datagrams_sent,
        s.parity_chunks_sent,
        s.chunks_retransmitted,
        s.nacks_received - s.progress_reports_received,
        s.rto_expirations,
        p.rate * 8.0 / 1e6,
        p.bandwidth
            .map_or("n/a".into(), |b| format!("{:.1} Mbit/s", b * 8.0 / 1e6)),
        p.srtt.map_or("n/a".into(), ms),
        p.queueing_delay().map_or("n/a".into(), ms),
        loss_text(p.loss),
    ) + &mtu_text(tx)
}

/// Prints the path line, and the live line when there is one.
pub fn print_path(tx: &UdpSender) {
    eprintln!("{}", path_line(tx));
    if let Some(line) = live_line(tx) {
        eprintln!("{line}");
    }
}

/// What a live sender did with frames it could not deliver in time, when it did anything:
/// dropped for their deadline (and how many of those before it, as hopeless at the estimated
/// rate), replaced by newer ones, rate estimates forgotten as stale, chunks lost unresent.
fn live_line(tx: &UdpSender) -> Option<String> {
    let s = tx.stats();
    let counts = [
        s.frames_past_deadline,
        s.frames_superseded,
        s.estimates_forgotten,
        s.live_chunks_lost,
    ];
    if counts.iter().all(|&n| n == 0) {
        return None;
    }
    Some(format!(
        "live: {} frames dropped for their deadline ({} of them before it passed: they could \
         not arrive in time at the estimated rate), {} replaced by newer frames; {} stale rate \
         estimates forgotten; {} chunks lost on the way and not resent",
        s.frames_past_deadline,
        s.frames_hopeless,
        s.frames_superseded,
        s.estimates_forgotten,
        s.live_chunks_lost
    ))
}

/// The datagram size path MTU discovery settled on, when it ran.
fn mtu_text(tx: &UdpSender) -> String {
    let s = tx.stats();
    if s.mtu_probes_sent == 0 {
        return String::new();
    }
    format!(
        "; datagrams of {} bytes (path MTU: {} of {} probes confirmed, {} black holes)",
        tx.core().datagram_size(),
        s.mtu_probes_confirmed,
        s.mtu_probes_sent,
        s.mtu_black_holes
    )
}

/// The loss the receiver measured, "n/a" before it reported any (never the FEC prior).
fn loss_text(loss: Option<f64>) -> String {
    loss.map_or("n/a".into(), |l| format!("{:.1}%", l * 100.0))
}
