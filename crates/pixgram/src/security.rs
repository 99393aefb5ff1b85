//! Pre-shared keys and secrets for the drivers: key files, and fresh random salts and
//! address-validation secrets (the envelope that seals datagrams is in [`crate::envelope`]).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use pixgram_core::seal::Psk;

use crate::error::DriverError;

/// Fills `bytes` from the operating system's random source (getrandom(2)). Not aws-lc's
/// generator: seeding it runs a jitter-entropy collector, about 30 ms of CPU in every
/// process that asks for one random byte.
pub(crate) fn fill_random(bytes: &mut [u8]) -> Result<(), DriverError> {
    getrandom::fill(bytes).map_err(|_| DriverError::Random)
}

/// Fresh random salt bytes.
pub(crate) fn fresh_salt() -> Result<[u8; 16], DriverError> {
    let mut salt = [0u8; 16];
    fill_random(&mut salt)?;
    Ok(salt)
}

/// 32 fresh random bytes for a receiver's address-validation secret.
pub fn fresh_secret() -> Result<pixgram_core::Secret, DriverError> {
    let mut secret = [0u8; 32];
    fill_random(&mut secret)?;
    Ok(pixgram_core::Secret(secret))
}

/// Writes a new random key to `path` (64 hexadecimal characters and a newline, mode 0600).
/// Refuses to replace an existing file unless `force`.
pub fn write_key_file(path: &Path, force: bool) -> Result<Psk, DriverError> {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes)?;
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
}
