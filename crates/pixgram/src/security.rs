//! Pre-shared keys for the drivers: key files, and the [`Envelope`] that seals every datagram
//! a socket sends and opens every one it receives (the format is in
//! [`pixgram_core::seal`] and docs/PROTOCOL.md §7).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
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
}

impl Envelope {
    /// An envelope for `psk` with a fresh random salt for what this socket sends.
    pub fn new(psk: &Psk) -> Result<Self, DriverError> {
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| DriverError::Random)?;
        Ok(Envelope {
            sealer: Sealer::new(psk, salt),
            opener: Opener::new(psk),
            buf: vec![0; 65_536 + SEAL_OVERHEAD],
        })
    }

    /// `inner`, sealed.
    pub fn seal(&mut self, inner: &[u8]) -> &[u8] {
        let n = self.sealer.seal(inner, &mut self.buf);
        &self.buf[..n]
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

/// Reads a key file: 64 hexadecimal characters, readable by its owner only.
pub fn read_key_file(path: &Path) -> Result<Psk, DriverError> {
    let bad = |reason: String| DriverError::Key {
        path: path.to_path_buf(),
        reason,
    };
    let meta = fs::metadata(path).map_err(|source| DriverError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(bad(format!(
            "it is readable by others (mode {mode:o}); run: chmod 600 {}",
            path.display()
        )));
    }
    let text = fs::read_to_string(path).map_err(|source| DriverError::File {
        path: path.to_path_buf(),
        source,
    })?;
    Psk::from_hex(&text).map_err(|e| bad(e.to_string()))
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
