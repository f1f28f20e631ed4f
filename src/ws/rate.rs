//! Per-connection frame rate limit: a token bucket of 50 frames per second with bursts of 2,000
//! (docs/protocol.md §4). A client that keeps flooding for 10 s is closed.
//!
//! Subscriptions have a bucket of their own, because one `subscribe` frame can cost the node a
//! whole team's snapshot: a client that unsubscribes and subscribes again in a loop would
//! otherwise turn 50 small frames a second into 25 snapshots a second. A socket may start 20
//! subscriptions at once, then one every 5 s; a client subscribes once per topic per connection.

use std::time::{Duration, Instant};

pub const RATE_PER_SEC: f64 = 50.0;
pub const BURST: f64 = 2000.0;
pub const FLOOD_CLOSE_AFTER: Duration = Duration::from_secs(10);
pub const SUBSCRIBES_PER_SEC: f64 = 0.2;
pub const SUBSCRIBE_BURST: f64 = 20.0;

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse this frame with a `rate_limited` error.
    Limit,
    /// The client has been flooding for too long: close with 1008.
    Close,
}

pub struct RateLimiter {
    tokens: f64,
    /// The subscriptions bucket's tokens (refilled with the frames' bucket).
    subscribes: f64,
    refilled_at: Instant,
    /// Since when the client has been over its rate without pause.
    flooding_since: Option<Instant>,
}

impl RateLimiter {
    pub fn new(now: Instant) -> Self {
        RateLimiter {
            tokens: BURST,
            subscribes: SUBSCRIBE_BURST,
            refilled_at: now,
            flooding_since: None,
        }
    }

    /// Takes one subscription start from its bucket; `false` if there is none left. Called for
    /// a frame [`check`](Self::check) allowed, which refilled both buckets.
    pub fn take_subscribe(&mut self) -> bool {
        let allowed = self.subscribes >= 1.0;
        if allowed {
            self.subscribes -= 1.0;
        }
        allowed
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * RATE_PER_SEC).min(BURST);
        self.subscribes = (self.subscribes + elapsed * SUBSCRIBES_PER_SEC).min(SUBSCRIBE_BURST);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            // Flooding ends once the bucket has recovered half its burst.
            if self.tokens >= BURST / 2.0 {
                self.flooding_since = None;
            }
            return Verdict::Allow;
        }
        let since = *self.flooding_since.get_or_insert(now);
        if now.saturating_duration_since(since) >= FLOOD_CLOSE_AFTER {
            Verdict::Close
        } else {
            Verdict::Limit
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_then_close() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(start);
        for _ in 0..2000 {
            assert_eq!(limiter.check(start), Verdict::Allow);
        }
        assert_eq!(limiter.check(start), Verdict::Limit);
        // A second later, 50 more are allowed.
        let later = start + Duration::from_secs(1);
        for _ in 0..50 {
            assert_eq!(limiter.check(later), Verdict::Allow);
        }
        assert_eq!(limiter.check(later), Verdict::Limit);
        // Still flooding 10 s after the first refusal: close.
        let much_later = start + Duration::from_millis(10_000);
        let mut verdict = Verdict::Allow;
        for _ in 0..1000 {
            verdict = limiter.check(much_later);
            if verdict == Verdict::Close {
                break;
            }
        }
        assert_eq!(verdict, Verdict::Close);
    }

    #[test]
    fn subscriptions_burst_then_one_every_five_seconds() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(start);
        for _ in 0..20 {
            assert_eq!(limiter.check(start), Verdict::Allow);
            assert!(limiter.take_subscribe());
        }
        assert_eq!(limiter.check(start), Verdict::Allow);
        assert!(!limiter.take_subscribe(), "the 21st at once");
        let later = start + Duration::from_secs(5);
        assert_eq!(limiter.check(later), Verdict::Allow);
        assert!(limiter.take_subscribe());
        assert!(!limiter.take_subscribe());
    }

    #[test]
    fn a_calm_client_is_never_limited() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(start);
        for i in 0..10_000u64 {
            let now = start + Duration::from_millis(i * 25); // 40 frames per second
            assert_eq!(limiter.check(now), Verdict::Allow);
        }
    }
}
