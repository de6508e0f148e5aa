//! Bounds on open event streams: at most so many per client and so many in all, so one
//! client that opens streams in a loop cannot hold the server's memory and tasks. A client
//! is its address until API keys name clients. A slot is held for as long as its stream
//! lives and given back when the stream ends (the client went away, or shutdown).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
};

/// Why a stream could not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamsFull {
    #[error("this client has {0} event streams open, the most one client may have")]
    Client(usize),
    #[error("the server has {0} event streams open, the most it keeps")]
    Server(usize),
}

#[derive(Debug)]
pub struct StreamSlots {
    per_client: usize,
    total: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    all: usize,
    by_client: HashMap<Option<IpAddr>, usize>,
}

/// One open stream's place; dropping it frees the place.
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    client: Option<IpAddr>,
}

impl StreamSlots {
    pub fn new(per_client: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            per_client,
            total,
            open: Mutex::new(Open::default()),
        })
    }

    /// A place for one more stream of `client`, if there is one.
    pub fn take(self: &Arc<Self>, client: Option<IpAddr>) -> Result<StreamSlot, StreamsFull> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.all >= self.total {
            return Err(StreamsFull::Server(open.all));
        }
        let mine = open.by_client.entry(client).or_default();
        if *mine >= self.per_client {
            return Err(StreamsFull::Client(*mine));
        }
        *mine += 1;
        open.all += 1;
        Ok(StreamSlot {
            slots: self.clone(),
            client,
        })
    }

    /// Streams open now (of `client`, or in all).
    #[cfg(test)]
    pub fn open(&self, client: Option<Option<IpAddr>>) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match client {
            Some(c) => open.by_client.get(&c).copied().unwrap_or(0),
            None => open.all,
        }
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        open.all = open.all.saturating_sub(1);
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_per_client_and_in_all_and_given_back() {
        let slots = StreamSlots::new(2, 3);
        let a: Option<IpAddr> = Some([10, 0, 0, 1].into());
        let b: Option<IpAddr> = Some([10, 0, 0, 2].into());
        let a1 = slots.take(a).expect("a 1");
        let _a2 = slots.take(a).expect("a 2");
        assert_eq!(slots.take(a).err(), Some(StreamsFull::Client(2)));
        let _b1 = slots.take(b).expect("b 1");
        assert_eq!(slots.take(b).err(), Some(StreamsFull::Server(3)));
        drop(a1);
        assert_eq!(slots.open(Some(a)), 1);
        let _a3 = slots.take(a).expect("a place was given back");
        assert_eq!(slots.open(None), 3);
    }
}
