//! `pixgram send FILE...`: files to a receiver, each acknowledged, with a window of frames in
//! flight.

use std::path::PathBuf;

use anyhow::{bail, Context};
use pixgram::publish::{frame_meta, Publisher};
use pixgram::{source, FrameMeta, ImageFormat};

use crate::cli::{resolve, SendArgs};
use crate::{flags, report};

pub fn run(args: SendArgs) -> anyhow::Result<()> {
    let to = resolve("--to", &args.to)?;
    let meta = flags::meta(args.meta.as_deref())?;
    let delivery = flags::delivery(&args)?;
    let transcode = flags::transcode(&args)?;
    let files = collect_files(&args)?;
    if !transcode.is_identity() {
        // Re-encoding needs images: say which file is not one before anything is sent.
        for f in &files {
            let mut head = [0u8; 8];
            let n = std::io::Read::read(&mut std::fs::File::open(f)?, &mut head).unwrap_or(0);
            if ImageFormat::detect(&head[..n]).is_none() {
                bail!(
                    "{}: not a JPEG or PNG image (--quality, --resize and --format re-encode \
                     images)",
                    f.display()
                );
            }
        }
    }
    check_sizes(&files, &meta, args.max_frame_size)?;
    let stop = crate::signals::stop_flag()?;
    let mut tx = flags::connect(&args, to, delivery)?;
    let total = files.len() as u64 * u64::from(args.repeat);
    let bar = report::progress_bar(total);
    let mut sent = Publisher::new(&mut tx, meta)
        .with_delivery(delivery)
        .with_transcode(transcode)
        .with_stop(stop)
        .send_files(&files, args.repeat, report::on_verdict(&bar, args.verbose));
    bar.finish_and_clear();
    eprintln!("{}", report::summary(&mut sent));
    report::print_path(&tx);
    let outcome = report::conclude(&mut sent, &tx, delivery, args.max_loss);
    tx.close()?;
    outcome
}

/// The files named and those in every --dir, each folder checked to hold at least one.
fn collect_files(args: &SendArgs) -> anyhow::Result<Vec<PathBuf>> {
    for d in &args.dir {
        if source::collect_files(&[], std::slice::from_ref(d))?.is_empty() {
            bail!("{} is empty (no files to send)", d.display());
        }
    }
    let files = source::collect_files(&args.files, &args.dir)?;
    if files.is_empty() {
        bail!("nothing to send: name files, or a folder with --dir");
    }
    Ok(files)
}

/// Refuses, before anything is sent, a file that would make a frame larger than `max`
/// (metadata included, as the receiver counts it).
fn check_sizes(files: &[PathBuf], meta: &FrameMeta, max: u64) -> anyhow::Result<()> {
    for f in files {
        let len = std::fs::metadata(f)
            .with_context(|| format!("{}", f.display()))?
            .len();
        let name = source::file_name(f);
        let meta_len = 4 + frame_meta(meta, FrameMeta::default(), &name).len() as u64;
        if len + meta_len > max {
            bail!(
                "{}: {len} bytes, larger than --max-frame-size {max} (metadata included); \
                 raise --max-frame-size here and on the receiver",
                f.display()
            );
        }
    }
    Ok(())
}
