//! Throttling by token bucket: how API Gateway limits a stage's rate, and
//! how the lab paces the creation of new execution environments.

use std::time::Instant;

/// A token bucket: `rate` tokens a second, at most `burst` saved up. This
/// is how API Gateway throttles a stage or a route.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32) -> Self {
        TokenBucket {
            rate,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: Instant::now(),
        }
    }

    /// Takes one token at `now`, if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_bucket_allows_the_burst_then_the_rate() {
        let mut bucket = TokenBucket::new(10.0, 5);
        let start = Instant::now();
        let allowed = (0..20).filter(|_| bucket.take(start)).count();
        assert_eq!(allowed, 5, "a burst of 5 at one instant");
        let later = start + Duration::from_millis(500);
        let allowed = (0..20).filter(|_| bucket.take(later)).count();
        assert_eq!(allowed, 5, "half a second at 10/s refills 5");
        let much_later = later + Duration::from_secs(60);
        let allowed = (0..20).filter(|_| bucket.take(much_later)).count();
        assert_eq!(allowed, 5, "never more than the burst");
    }
}
