//! Failed sign-ins counted per client address: an address that sent more wrong
//! credentials than the budget in one window is answered `429 TOO_MANY_AUTH_FAILURES`
//! until the window ends, before its credentials are looked at (so guessing is slowed and
//! the database is not asked). Requests without an address (in-process) are not counted.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Most addresses remembered; past it, ended windows are dropped first.
const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug)]
pub struct AuthFailures {
    limit: u32,
    window: Duration,
    by_addr: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl AuthFailures {
    /// At most `limit` failures per address per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            by_addr: Mutex::new(HashMap::new()),
        }
    }

    /// How long the address must wait, if it is over its budget.
    pub fn blocked(&self, addr: Option<IpAddr>) -> Option<Duration> {
        let addr = addr?;
        let by_addr = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = by_addr.get(&addr)?;
        let left = self.window.checked_sub(start.elapsed())?;
        (*count >= self.limit).then_some(left)
    }

    /// Counts one failure of the address.
    pub fn record(&self, addr: Option<IpAddr>) {
        let Some(addr) = addr else { return };
        let mut by_addr = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        if by_addr.len() >= MAX_ADDRESSES {
            let window = self.window;
            by_addr.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = by_addr.entry(addr).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_budget_waits_out_the_window_and_others_do_not() {
        let failures = AuthFailures::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().expect("address");
        let b: IpAddr = "10.0.0.2".parse().expect("address");
        for _ in 0..3 {
            assert_eq!(failures.blocked(Some(a)), None);
            failures.record(Some(a));
        }
        let wait = failures.blocked(Some(a)).expect("blocked");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert_eq!(failures.blocked(Some(b)), None);
        failures.record(None);
        assert_eq!(failures.blocked(None), None);

        let short = AuthFailures::new(1, Duration::from_millis(1));
        short.record(Some(a));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(short.blocked(Some(a)), None, "a new window starts afresh");
    }
}
