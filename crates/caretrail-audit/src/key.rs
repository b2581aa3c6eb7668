//! Where the checkpoint signing key comes from: a key file outside the database (created on
//! first use, owner-only permissions) or the key text itself (from an environment variable).
//!
//! The key never goes into the database: whoever can rewrite the database must not also be able
//! to sign a checkpoint over the rewritten log.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::note::NoteSigner;
use crate::{AuditError, Result};

/// The signing key's source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A key file, created with mode 0600 if it does not exist.
    File(PathBuf),
    /// The `PRIVATE+KEY+...` text itself.
    Text(String),
}

impl KeySource {
    /// The default key file for a database URL: beside the SQLite file (`<file>.audit-key`),
    /// or `caretrail-audit.key` in the working directory for PostgreSQL.
    pub fn default_for(db_url: &str) -> PathBuf {
        if db_url.starts_with("postgres://") || db_url.starts_with("postgresql://") {
            return PathBuf::from("caretrail-audit.key");
        }
        let path = db_url
            .strip_prefix("sqlite://")
            .or_else(|| db_url.strip_prefix("sqlite:"))
            .unwrap_or(db_url);
        let path = path.split('?').next().unwrap_or(path);
        PathBuf::from(format!("{path}.audit-key"))
    }

    /// Loads the signer, creating the key file on first use.
    pub fn load(&self, name: &str) -> Result<NoteSigner> {
        match self {
            Self::Text(t) => Ok(NoteSigner::parse(t)?),
            Self::File(path) => load_or_create(path, name),
        }
    }

    /// Loads the signer only if it exists (never creates a key file).
    pub fn load_existing(&self) -> Result<Option<NoteSigner>> {
        match self {
            Self::Text(t) => Ok(Some(NoteSigner::parse(t)?)),
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(t) => Ok(Some(NoteSigner::parse(&t)?)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(AuditError::KeyFile {
                    path: path.clone(),
                    source,
                }),
            },
        }
    }
}

fn load_or_create(path: &Path, name: &str) -> Result<NoteSigner> {
    let io = |source| AuditError::KeyFile {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(NoteSigner::parse(&text)?),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(_) => {}
    }
    let signer = NoteSigner::generate(name)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(signer.to_private_string().as_bytes())
                .and_then(|()| f.write_all(b"\n"))
                .and_then(|()| f.sync_all())
                .map_err(io)?;
            tracing::info!(path = %path.display(), "created the audit signing key");
            Ok(signer)
        }
        // Another process created it first: use theirs, so there is one key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(io)?;
            Ok(NoteSigner::parse(&text)?)
        }
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_key_file_sits_beside_the_sqlite_file() {
        assert_eq!(
            KeySource::default_for("sqlite:///tmp/x/care.db"),
            PathBuf::from("/tmp/x/care.db.audit-key")
        );
        assert_eq!(
            KeySource::default_for("care.db"),
            PathBuf::from("care.db.audit-key")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_new_key_file_is_owner_only_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = KeySource::File(path.clone())
            .load("caretrail/test")
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = KeySource::File(path).load("caretrail/test").unwrap();
        assert_eq!(a.verifier(), b.verifier());
    }
}
