//! Where frames to send come from: files, folders and glob patterns.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::DriverError;

/// The files to send: `files` as given (a name with `*`, `?` or `[...]` in its last part that
/// is not itself a file is a glob pattern, expanded in name order, and must match something),
/// then the regular, non-hidden files of each folder in `dirs` in name order (not recursive).
/// Every path is checked to be readable now, so a typo fails before anything is sent.
pub fn collect_files(files: &[PathBuf], dirs: &[PathBuf]) -> Result<Vec<PathBuf>, DriverError> {
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        let is_pattern = name.as_deref().is_some_and(|n| n.contains(['*', '?', '[']));
        if is_pattern && !f.exists() {
            let dir = f
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let pattern = name.unwrap_or_default();
            let mut found: Vec<PathBuf> = fs::read_dir(dir)
                .map_err(|source| DriverError::File {
                    path: dir.to_path_buf(),
                    source,
                })?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter(|e| glob_match(&pattern, &e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect();
            if found.is_empty() {
                return Err(DriverError::File {
                    path: f.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "the pattern matches no file",
                    ),
                });
            }
            found.sort();
            out.extend(found);
            continue;
        }
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

/// Shell-style matching of one file name: `*` any run, `?` one character, `[abc]` / `[a-z]` one
/// of a set. Hidden files match only a pattern that starts with a dot.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(&c) = n.first() else { return false };
                let set = &p[1..end];
                let hit = set
                    .windows(3)
                    .any(|w| w[1] == '-' && w[0] <= c && c <= w[2])
                    || set.contains(&c);
                hit && go(&p[end + 1..], &n[1..])
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_the_shell() {
        assert!(glob_match("*.jpg", "a.jpg"));
        assert!(!glob_match("*.jpg", "a.png"));
        assert!(glob_match("frame-??.jpg", "frame-07.jpg"));
        assert!(glob_match("img[0-9].png", "img3.png"));
        assert!(!glob_match("img[0-9].png", "imgx.png"));
        assert!(!glob_match("*", ".hidden"));
    }

    #[test]
    fn a_pattern_expands_in_name_order_and_must_match() {
        let dir = std::env::temp_dir().join(format!("pixgram-glob-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for n in ["b.jpg", "a.jpg", "c.png"] {
            fs::write(dir.join(n), b"x").unwrap();
        }
        let got = collect_files(&[dir.join("*.jpg")], &[]).unwrap();
        assert_eq!(got, vec![dir.join("a.jpg"), dir.join("b.jpg")]);
        assert!(collect_files(&[dir.join("*.gif")], &[]).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
