//! `pixgram keygen PATH`, and reading `--key-file` for the other commands.

use anyhow::Context;
use pixgram::security;

use crate::cli::KeygenArgs;

pub fn run(args: &KeygenArgs) -> anyhow::Result<()> {
    if args.path.is_dir() {
        anyhow::bail!(
            "{} is a directory: name the key file, like {}",
            args.path.display(),
            args.path.join("pixgram.key").display()
        );
    }
    security::write_key_file(&args.path, args.force).with_context(|| {
        if args.path.exists() && !args.force {
            format!(
                "{} exists; keep it, or replace it with --force",
                args.path.display()
            )
        } else {
            format!("cannot write the key to {}", args.path.display())
        }
    })?;
    eprintln!(
        "pixgram: wrote a new key to {} (mode 0600); give both ends --key-file {} \
         (or PIXGRAM_KEY_FILE), copying it over a secure channel",
        args.path.display(),
        args.path.display()
    );
    Ok(())
}
