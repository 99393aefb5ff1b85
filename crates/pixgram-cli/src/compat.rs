//! `--compat seed` for send, recv and msg: the original Python scripts' wire format.

use anyhow::bail;

use crate::cli::{MsgArgs, RecvArgs, SendArgs};

pub fn recv(_args: &RecvArgs) -> anyhow::Result<()> {
    bail!("--compat seed is being written")
}

pub fn send(_args: &SendArgs) -> anyhow::Result<()> {
    bail!("--compat seed is being written")
}

pub fn msg(_args: &MsgArgs) -> anyhow::Result<()> {
    bail!("--compat seed is being written")
}
