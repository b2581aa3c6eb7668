//! Account passwords: Argon2id hashes (RustCrypto `argon2`) with OWASP's parameters, computed
//! off the async threads and at most [`Passwords::new`]'s `concurrency` at a time.
//!
//! Argon2id with 19 MiB of memory, 2 passes and 1 lane is the first of OWASP's equivalent
//! settings (Password Storage Cheat Sheet); one hash takes tens of milliseconds of one core
//! and 19 MiB. A flood of sign-ins would otherwise take every core and a lot of memory, so
//! the hashes run on tokio's blocking threads behind a semaphore of a few permits, and a
//! request that cannot get one within [`QUEUE_WAIT`] is answered 429 `sign_in_busy`.
//!
//! A sign-in for a user name that does not exist verifies against a dummy hash made at start
//! with the same parameters, so the answer takes as long as for a wrong password and does not
//! tell which names exist. Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$...`): the
//! parameters travel with each hash, so raising them later needs no migration.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// The shortest password accepted, in characters (NIST SP 800-63B asks at least 8; 10 leaves
/// room for pass phrases and keeps the demo's generated passwords well above it).
pub const MIN_CHARS: usize = 10;

/// The longest password accepted, in bytes: enough for any pass phrase, and a bound on the
/// work one request can ask of Argon2's first hash.
pub const MAX_BYTES: usize = 256;

/// How long a sign-in waits for a hashing permit before it is told to come back.
pub const QUEUE_WAIT: Duration = Duration::from_secs(3);

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every permit stayed taken for [`QUEUE_WAIT`].
    #[error("too many sign-ins are being checked; retry shortly")]
    Busy,
    /// Argon2 refused its input or the stored hash is not a PHC string it reads.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The blocking task did not finish (the runtime is shutting down).
    #[error("password hashing was interrupted")]
    Interrupted,
}

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("a password has at least 10 characters")]
    TooShort,
    /// More than [`MAX_BYTES`] bytes.
    #[error("a password has at most 256 bytes")]
    TooLong,
    /// Control characters (a pasted line break, NUL): nobody types those, and they would
    /// differ between the form and a script.
    #[error("a password holds no control characters")]
    ControlCharacter,
}

/// Checks a new password's shape (not its strength beyond length: NIST advises against
/// composition rules).
pub fn check_new(password: &str) -> Result<(), WeakPassword> {
    if password.len() > MAX_BYTES {
        return Err(WeakPassword::TooLong);
    }
    if password.chars().count() < MIN_CHARS {
        return Err(WeakPassword::TooShort);
    }
    if password.chars().any(char::is_control) {
        return Err(WeakPassword::ControlCharacter);
    }
    Ok(())
}

/// OWASP's first Argon2id setting: m = 19 MiB, t = 2, p = 1.
fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes and verifies passwords with a bounded number at a time.
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified for names that do not exist.
    dummy: String,
}

impl Passwords {
    /// At most `concurrency` hashes at a time (at least 1).
    pub fn new(concurrency: usize) -> Result<Self, PasswordError> {
        let mut random = Zeroizing::new([0u8; 32]);
        getrandom::fill(random.as_mut()).map_err(|e| PasswordError::Hash(e.to_string()))?;
        let dummy = hasher()?
            .hash_password(random.as_ref())
            .map_err(|e| PasswordError::Hash(e.to_string()))?
            .to_string();
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy,
        })
    }

    /// The default number of hashes at a time: half the cores (at least one), so sign-ins
    /// never take the whole machine.
    pub fn default_concurrency() -> usize {
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(QUEUE_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Interrupted)?;
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|_| PasswordError::Interrupted)?
    }

    /// The PHC string of `password` under a fresh random salt.
    pub async fn hash(&self, password: Zeroizing<String>) -> Result<String, PasswordError> {
        self.blocking(move || {
            Ok(hasher()?
                .hash_password(password.as_bytes())
                .map_err(|e| PasswordError::Hash(e.to_string()))?
                .to_string())
        })
        .await
    }

    /// Whether `password` matches `stored`; with no stored hash (an unknown name), verifies
    /// against the dummy hash and answers `false`, taking the same time.
    pub async fn verify(
        &self,
        password: Zeroizing<String>,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy.clone());
        let matches = self
            .blocking(move || {
                // The hash's own parameters are used, whatever `hasher()` says today.
                Ok(hasher()?
                    .verify_password(password.as_bytes(), phc.as_str())
                    .is_ok())
            })
            .await?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only_and_names_argon2id_with_owasp_parameters() {
        let p = Passwords::new(1).unwrap();
        let h = p
            .hash(Zeroizing::new("正确的密码 horse".to_owned()))
            .await
            .unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            p.verify(
                Zeroizing::new("正确的密码 horse".to_owned()),
                Some(h.clone())
            )
            .await
            .unwrap()
        );
        assert!(
            !p.verify(Zeroizing::new("wrong".to_owned()), Some(h))
                .await
                .unwrap()
        );
        // An unknown name never matches, even with the dummy's own password unknown to all.
        assert!(
            !p.verify(Zeroizing::new("anything".to_owned()), None)
                .await
                .unwrap()
        );
    }

    #[test]
    fn new_passwords_are_checked_for_length_and_control_characters() {
        assert_eq!(check_new("short"), Err(WeakPassword::TooShort));
        assert_eq!(check_new("十个汉字十个汉字十个"), Ok(()));
        assert_eq!(check_new(&"a".repeat(257)), Err(WeakPassword::TooLong));
        assert_eq!(
            check_new("line\nbreak pw"),
            Err(WeakPassword::ControlCharacter)
        );
    }
}
