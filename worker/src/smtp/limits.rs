//! Connection caps: overall and per client IP.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts open connections; hands out a guard per accepted connection.
pub(crate) struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    counts: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Global,
    PerIp,
}

/// Releases the connection's slots when dropped.
pub(crate) struct ConnectionGuard {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl ConnectionLimits {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Self {
        Self {
            max_total,
            max_per_ip,
            counts: Arc::default(),
        }
    }

    /// Takes a slot for a connection from `ip`, or says which cap is reached.
    pub(crate) fn acquire(&self, ip: IpAddr) -> Result<ConnectionGuard, Refusal> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.max_total {
            return Err(Refusal::Global);
        }
        let per_ip = counts.per_ip.entry(ip).or_default();
        if *per_ip >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *per_ip += 1;
        counts.total += 1;
        Ok(ConnectionGuard {
            ip,
            counts: Arc::clone(&self.counts),
        })
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(count) = counts.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_ip_and_total() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = limits.acquire(a).unwrap();
        let _a2 = limits.acquire(a).unwrap();
        assert_eq!(limits.acquire(a).err(), Some(Refusal::PerIp));
        let _b1 = limits.acquire(b).unwrap();
        assert_eq!(limits.acquire(b).err(), Some(Refusal::Global));
        drop(a1);
        assert!(limits.acquire(a).is_ok());
    }
}
