//! Argon2id password hashing on a small pool of dedicated threads.
//!
//! Each hash costs ~19 MiB of memory and tens of milliseconds of CPU by design. Run on tokio's
//! blocking pool, every new blocking thread got its own malloc arena that kept its 19 MiB after
//! the hash was done: a few rounds of sign-ups grew the process by hundreds of MiB. A fixed
//! pool of long-lived workers reuses the same memory, bounds it to workers × 19 MiB, and caps
//! the CPU that password hashing can take from presence traffic.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

type Job = Box<dyn FnOnce() + Send>;

/// The worker pool, started on first use with one worker per core (at most 4).
fn pool() -> &'static mpsc::Sender<Job> {
    static POOL: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 4);
        for i in 0..workers {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })
                .expect("spawn an argon2 worker");
        }
        tx
    })
}

/// Runs `work` on the pool and waits for its result without blocking the async runtime.
async fn on_pool<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
    });
    pool().send(job).ok()?;
    rx.await.ok()
}

pub async fn hash(password: String) -> Result<String, HashError> {
    on_pool(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| HashError(e.to_string()))
    })
    .await
    .unwrap_or_else(|| Err(HashError("the hashing pool is gone".into())))
}

/// `true` if `password` matches `phc_hash`. A malformed stored hash counts as a mismatch.
/// Without a hash (an unknown account) the password is checked against a decoy, so that the
/// answer takes as long as for a known account, and is `false`.
pub async fn verify(password: String, phc_hash: Option<String>) -> bool {
    on_pool(move || {
        let known = phc_hash.is_some();
        let hash = phc_hash.unwrap_or_else(|| decoy_hash().to_string());
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        known && matches
    })
    .await
    .unwrap_or(false)
}

/// A valid hash of a random password (see [`verify`]).
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let password = hex::encode(super::random_bytes::<16>());
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .expect("hashing a random password succeeds")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(h.clone())).await);
        assert!(!verify("wrong".into(), Some(h)).await);
        assert!(!verify("x".into(), Some("not a hash".into())).await);
        assert!(!verify("anything".into(), None).await);
    }
}
