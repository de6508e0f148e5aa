//! Polling waits, written once: look, and until the deadline pass a beat and look again.
//! Every wait on a page (an element to show, a URL, the network to go quiet, a tab to
//! open, a document to load, a list to settle) is a `while ticks.next().await { look }`
//! over [`Ticks`].

use std::time::Duration;

use tokio::time::Instant;

/// The beats of one wait: the first at once, then one every `every` until `timeout` has
/// passed (the look after the deadline is the last).
#[derive(Debug)]
pub(crate) struct Ticks {
    until: Instant,
    every: Duration,
    first: bool,
}

impl Ticks {
    pub(crate) fn new(timeout: Duration, every: Duration) -> Self {
        Self {
            until: Instant::now() + timeout,
            every,
            first: true,
        }
    }

    /// Waits for the next look: `true` to look (again), `false` once the deadline has
    /// passed.
    pub(crate) async fn next(&mut self) -> bool {
        if std::mem::take(&mut self.first) {
            return true;
        }
        if Instant::now() >= self.until {
            return false;
        }
        tokio::time::sleep(self.every).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_come_at_once_then_every_beat_until_the_deadline() {
        let (timeout, every) = (Duration::from_millis(45), Duration::from_millis(10));
        let start = Instant::now();
        let mut ticks = Ticks::new(timeout, every);
        let mut at = Vec::new();
        while ticks.next().await {
            at.push(start.elapsed());
        }
        // At 0, 10, 20, 30, 40, 50 ms, or fewer when a sleep overruns; never more. The
        // wait ends only once the deadline has passed, and its last look came within a
        // beat of it (under load the look itself may be a moment before the check that
        // ends the wait, so it is not compared with the deadline to the microsecond).
        let ended = start.elapsed();
        assert!(at[0] < every, "the first look is at once: {at:?}");
        assert!((2..=6).contains(&at.len()), "{at:?}");
        assert!(at.windows(2).all(|w| w[1] - w[0] >= every), "{at:?}");
        assert!(ended >= timeout, "{ended:?}");
        assert!(
            at.last().is_some_and(|last| *last + every >= timeout),
            "{at:?}"
        );

        let mut none = Ticks::new(Duration::ZERO, every);
        assert!(none.next().await, "one look even with no time");
        assert!(!none.next().await);
    }
}
