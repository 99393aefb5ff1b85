//! Pre-shared keys for the drivers: key files, and the [`Envelope`] that seals every datagram
//! a socket sends and opens every one it receives (the format is in
//! [`pixgram_core::seal`] and docs/PROTOCOL.md §7).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use pixgram_core::seal::{OpenStats, Opener, Psk, Sealer, SEAL_OVERHEAD};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::DriverError;

/// Seals outgoing and opens incoming datagrams of one socket.
#[derive(Debug)]
pub struct Envelope {
    sealer: Sealer,
    opener: Opener,
    buf: Vec<u8>,
    psk: Psk,
    rekeys: u64,
}

/// Fresh random salt bytes.
fn fresh_salt() -> Result<[u8; 16], DriverError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| DriverError::Random)?;
    Ok(salt)
}

impl Envelope {
    /// An envelope for `psk` with a fresh random salt for what this socket sends.
    pub fn new(psk: &Psk) -> Result<Self, DriverError> {
        Ok(Envelope {
            sealer: Sealer::new(psk, fresh_salt()?),
            opener: Opener::new(psk),
            buf: vec![0; 65_536 + SEAL_OVERHEAD],
            psk: psk.clone(),
            rekeys: 0,
        })
    }

    /// `inner`, sealed; under a new random salt (a new key) every
    /// [`pixgram_core::seal::REKEY_AFTER`] datagrams, within AES-GCM's usage limit.
    pub fn seal(&mut self, inner: &[u8]) -> &[u8] {
        let mut buf = std::mem::take(&mut self.buf);
        let n = self.seal_into(inner, &mut buf);
        self.buf = buf;
        &self.buf[..n]
    }

    /// Like [`Envelope::seal`], into `out` (at least `inner.len() + SEAL_OVERHEAD` bytes, e.g.
    /// a slot of a send batch); returns the sealed length.
    pub fn seal_into(&mut self, inner: &[u8], out: &mut [u8]) -> usize {
        if self.sealer.needs_rekey() {
            // A failing system RNG keeps the old key a little longer rather than stop
            // sending; the next datagram tries again.
            if let Ok(salt) = fresh_salt() {
                self.sealer.rekey(&self.psk, salt);
                self.rekeys += 1;
            }
        }
        self.sealer.seal(inner, out)
    }

    /// Times the sending key was replaced.
    pub fn rekeys(&self) -> u64 {
        self.rekeys
    }

    /// The inner datagram, or `None` if `datagram` does not authenticate (it is counted and
    /// must be dropped unanswered).
    pub fn open<'a>(&mut self, datagram: &'a mut [u8]) -> Option<&'a [u8]> {
        self.opener.open(datagram).ok()
    }

    /// What was opened and refused.
    pub fn stats(&self) -> &OpenStats {
        self.opener.stats()
    }
}

/// Writes a new random key to `path` (64 hexadecimal characters and a newline, mode 0600).
/// Refuses to replace an existing file unless `force`.
pub fn write_key_file(path: &Path, force: bool) -> Result<Psk, DriverError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| DriverError::Random)?;
    let key = Psk::from_bytes(bytes);
    let err = |source| DriverError::File {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp-keygen");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    let written = f
        .write_all(format!("{}\n", key.to_hex()).as_bytes())
        .and_then(|_| f.sync_all());
    drop(f);
    let placed = written.and_then(|_| {
        if force {
            fs::rename(&tmp, path)
        } else {
            // Link, not rename: fails if the key file exists, never overwrites it.
            fs::hard_link(&tmp, path).and_then(|_| fs::remove_file(&tmp))
        }
    });
    if let Err(e) = placed {
        let _ = fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(key)
}

/// Reads a key file: 64 hexadecimal characters in a regular file that is not a symbolic link,
/// owned by the user running pixgram, readable by that user only, in a folder nobody else can
/// swap it in (owned by that user or root, and not writable by others unless sticky like
/// `/tmp`). The file is opened once and every check is made on what was opened, so it cannot
/// be replaced between the checks and the read.
pub fn read_key_file(path: &Path) -> Result<Psk, DriverError> {
    let bad = |reason: String| DriverError::Key {
        path: path.to_path_buf(),
        reason,
    };
    let io = |source| DriverError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                bad("it is a symbolic link; name the key file itself".into())
            } else {
                io(e)
            }
        })?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(bad("it is not a regular file".into()));
    }
    let me = current_uid().map_err(io)?;
    if meta.uid() != me {
        return Err(bad(format!(
            "it belongs to user {}, not to the user running pixgram ({me}); run: chown {me} {}",
            meta.uid(),
            path.display()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "it is readable by others (mode {mode:o}); run: chmod 600 {}",
            path.display()
        )));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = fs::metadata(folder).map_err(io)?;
    let dir_mode = dir.permissions().mode();
    let sticky = dir_mode & 0o1000 != 0;
    if dir.uid() != me && dir.uid() != 0 {
        return Err(bad(format!(
            "its folder {} belongs to user {}: another user could replace the key",
            folder.display(),
            dir.uid()
        )));
    }
    if dir_mode & 0o022 != 0 && !sticky {
        return Err(bad(format!(
            "its folder {} is writable by others (mode {:o}): they could replace the key",
            folder.display(),
            dir_mode & 0o777
        )));
    }
    let mut text = String::new();
    Read::by_ref(&mut file)
        .take(1024)
        .read_to_string(&mut text)
        .map_err(io)?;
    Psk::from_hex(&text).map_err(|e| bad(e.to_string()))
}

/// The effective user id of this process (the owner of `/proc/self`, so no `unsafe` call).
fn current_uid() -> std::io::Result<u32> {
    Ok(fs::metadata("/proc/self")?.uid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_private_and_round_trip() {
        let dir = std::env::temp_dir().join(format!("pixgram-key-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        let key = write_key_file(&path, false).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_to_string(&path).unwrap().trim().len(), 64);
        assert_eq!(read_key_file(&path).unwrap(), key);
        assert!(write_key_file(&path, false).is_err(), "overwrote a key");
        assert_ne!(write_key_file(&path, true).unwrap(), key);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_key_file(&path)
            .unwrap_err()
            .to_string()
            .contains("chmod 600"));
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 11: a symlink is not followed, a key owned by another user is refused, and so is
    /// a key in a folder others can write to.
    #[test]
    fn key_files_are_checked_as_opened() {
        let dir = std::env::temp_dir().join(format!("pixgram-keychk-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.join("k");
        let key = write_key_file(&path, false).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let e = read_key_file(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        // A folder writable by others.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let e = read_key_file(&path).unwrap_err().to_string();
        assert!(e.contains("writable by others"), "{e}");
        // The same, sticky like /tmp: nobody else can replace the file.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(read_key_file(&path).unwrap(), key);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        // Owned by somebody else (only root can arrange that here).
        if current_uid().unwrap() == 0 {
            let other = dir.join("nobody");
            fs::copy(&path, &other).unwrap();
            fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
            std::process::Command::new("chown")
                .args(["65534", other.to_str().unwrap()])
                .status()
                .unwrap();
            let e = read_key_file(&other).unwrap_err().to_string();
            assert!(e.contains("belongs to user 65534"), "{e}");
        }
        // A folder is not a key.
        let e = read_key_file(&dir).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn envelopes_with_the_same_key_talk() {
        let psk = Psk::from_bytes([3; 32]);
        let (mut a, mut b) = (Envelope::new(&psk).unwrap(), Envelope::new(&psk).unwrap());
        let mut d = a.seal(b"PG hello").to_vec();
        assert_eq!(b.open(&mut d), Some(&b"PG hello"[..]));
        let mut other = Envelope::new(&Psk::from_bytes([4; 32])).unwrap();
        let mut d = a.seal(b"PG hello").to_vec();
        assert_eq!(other.open(&mut d), None);
        assert_eq!(other.stats().bad_tag, 1);
    }
}
