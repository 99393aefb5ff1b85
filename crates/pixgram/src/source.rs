//! Where frames to send come from: files and folders.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::DriverError;

/// The files to send: `files` as given, then the regular, non-hidden files of each folder in
/// `dirs` in name order (not recursive). Every path is checked to be readable now, so a typo
/// fails before anything is sent.
pub fn collect_files(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Vec<PathBuf>, DriverError> {
    let mut out = Vec::new();
    for f in files {
        check_readable(f)?;
        out.push(f.clone());
    }
    for d in dirs {
        let err = |source| DriverError::File {
            path: d.clone(),
            source,
        };
        let mut found: Vec<PathBuf> = fs::read_dir(d)
            .map_err(err)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

fn check_readable(path: &Path) -> Result<(), DriverError> {
    let meta = fs::metadata(path).map_err(|source| DriverError::File {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(DriverError::File {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        });
    }
    fs::File::open(path).map_err(|source| DriverError::File {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, DriverError> {
    fs::read(path).map_err(|source| DriverError::File {
        path: path.to_path_buf(),
        source,
    })
}
