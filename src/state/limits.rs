//! Token rate limits: per consumer, fixed windows of a minute, an hour and a day (UTC-aligned).
//!
//! Input: a consumer's limits and the request's worst case (estimated prompt + output cap).
//! Decision: reserve that many tokens in all three windows at once, or reject naming the first
//! window that cannot hold it and when it resets. Memory is O(1) per consumer (three counters),
//! and a per-consumer mutex makes racing reservations exact: N requests for the last tokens of a
//! window admit exactly what fits. Settlement replaces a reservation with the real usage in the
//! windows that are still current; a window that rolled over meanwhile is left alone.

use super::PerConsumer;

/// The three windows, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Minute,
    Hour,
    Day,
}

pub const WINDOWS: [Window; 3] = [Window::Minute, Window::Hour, Window::Day];

impl Window {
    pub fn seconds(self) -> u64 {
        match self {
            Window::Minute => 60,
            Window::Hour => 3_600,
            Window::Day => 86_400,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    /// The window's number since the epoch (its key).
    pub fn id(self, now: u64) -> u64 {
        now / self.seconds()
    }

    /// Seconds until the window rolls over.
    pub fn resets_in(self, now: u64) -> u64 {
        self.seconds() - now % self.seconds()
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    id: u64,
    used: u64,
}

#[derive(Debug, Default)]
struct Counters([Counter; 3]);

impl Counters {
    /// Brings each window to `now`, starting a fresh count when it rolled over.
    fn roll(&mut self, now: u64) {
        for (c, w) in self.0.iter_mut().zip(WINDOWS) {
            let id = w.id(now);
            if c.id != id {
                *c = Counter { id, used: 0 };
            }
        }
    }
}

/// A reservation held by one request until it is settled.
#[derive(Debug, Clone)]
pub struct TokenTicket {
    window_ids: [u64; 3],
    pub reserved: u64,
}

impl TokenTicket {
    /// `reserved` tokens held in the windows numbered `window_ids` (minute, hour, day).
    pub fn new(window_ids: [u64; 3], reserved: u64) -> TokenTicket {
        TokenTicket {
            window_ids,
            reserved,
        }
    }

    pub fn window_ids(&self) -> [u64; 3] {
        self.window_ids
    }
}

/// The tightest window after an admission: what the `x-ratelimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headroom {
    pub window: Window,
    pub limit: u64,
    pub remaining: u64,
    pub resets_in: u64,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The window is too full now; retry after it resets.
    Full {
        window: Window,
        limit: u64,
        used: u64,
        needed: u64,
        retry_after: u64,
    },
    /// The request alone is larger than the window's limit: it can never fit.
    TooLarge {
        window: Window,
        limit: u64,
        needed: u64,
    },
}

/// Token counters of every consumer, keyed by consumer id (they outlive configuration reloads).
#[derive(Debug, Default)]
pub struct Limiter {
    consumers: PerConsumer<Counters>,
}

impl Limiter {
    /// Reserves `tokens` in every window of `limits` ([minute, hour, day]) at `now` (Unix
    /// seconds), atomically: all three or none.
    pub fn reserve(
        &self,
        consumer: &str,
        limits: [u64; 3],
        tokens: u64,
        now: u64,
    ) -> Result<(TokenTicket, Headroom), Refusal> {
        self.consumers
            .with(consumer, |c| reserve(c, limits, tokens, now))
    }

    /// Replaces the reservation with what was actually used.
    pub fn settle(&self, consumer: &str, ticket: &TokenTicket, actual: u64, now: u64) {
        self.consumers.with(consumer, |c| {
            c.roll(now);
            for (counter, id) in c.0.iter_mut().zip(ticket.window_ids) {
                if counter.id == id {
                    counter.used = counter
                        .used
                        .saturating_sub(ticket.reserved)
                        .saturating_add(actual);
                }
            }
        })
    }

    /// Tokens used (settled plus reserved) in the current minute, hour and day.
    pub fn used(&self, consumer: &str, now: u64) -> [u64; 3] {
        self.consumers.with(consumer, |c| {
            c.roll(now);
            [c.0[0].used, c.0[1].used, c.0[2].used]
        })
    }

    /// The current headroom without reserving anything.
    pub fn headroom(&self, consumer: &str, limits: [u64; 3], now: u64) -> Headroom {
        self.consumers.with(consumer, |c| {
            c.roll(now);
            headroom(c, limits, now)
        })
    }
}

fn reserve(
    c: &mut Counters,
    limits: [u64; 3],
    tokens: u64,
    now: u64,
) -> Result<(TokenTicket, Headroom), Refusal> {
    c.roll(now);
    for (i, w) in WINDOWS.into_iter().enumerate() {
        if tokens > limits[i] {
            return Err(Refusal::TooLarge {
                window: w,
                limit: limits[i],
                needed: tokens,
            });
        }
        let used = c.0[i].used;
        if used.saturating_add(tokens) > limits[i] {
            return Err(Refusal::Full {
                window: w,
                limit: limits[i],
                used,
                needed: tokens,
                retry_after: w.resets_in(now),
            });
        }
    }
    for counter in c.0.iter_mut() {
        counter.used += tokens;
    }
    let ticket = TokenTicket {
        window_ids: [c.0[0].id, c.0[1].id, c.0[2].id],
        reserved: tokens,
    };
    Ok((ticket, headroom(c, limits, now)))
}

fn headroom(c: &Counters, limits: [u64; 3], now: u64) -> Headroom {
    tightest(limits, [c.0[0].used, c.0[1].used, c.0[2].used], now)
}

/// The tightest window (least remaining; the shorter one on a tie) given each window's use.
pub fn tightest(limits: [u64; 3], used: [u64; 3], now: u64) -> Headroom {
    let window = |i: usize, w: Window| Headroom {
        window: w,
        limit: limits[i],
        remaining: limits[i].saturating_sub(used[i]),
        resets_in: w.resets_in(now),
    };
    let mut best = window(0, Window::Minute);
    for (i, w) in WINDOWS.into_iter().enumerate().skip(1) {
        let h = window(i, w);
        if h.remaining < best.remaining {
            best = h;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const LIMITS: [u64; 3] = [10_000, 100_000, 500_000];
    const T0: u64 = 1_700_000_020; // 40 s into a minute

    #[test]
    fn the_test_clock_starts_forty_seconds_into_a_minute() {
        assert_eq!(T0 % 60, 40);
    }

    #[test]
    fn rejects_when_minute_window_is_full() {
        let l = Limiter::default();
        for _ in 0..10 {
            l.reserve("c", LIMITS, 1_000, T0).unwrap();
        }
        match l.reserve("c", LIMITS, 1, T0) {
            Err(Refusal::Full { window, used, .. }) => {
                assert_eq!((window, used), (Window::Minute, 10_000))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_counts_down_to_window_reset() {
        let l = Limiter::default();
        l.reserve("c", LIMITS, 10_000, T0).unwrap();
        let Err(Refusal::Full { retry_after, .. }) = l.reserve("c", LIMITS, 1, T0) else {
            panic!("expected a refusal")
        };
        assert_eq!(retry_after, 20);
        let Err(Refusal::Full { retry_after, .. }) = l.reserve("c", LIMITS, 1, T0 + 15) else {
            panic!("expected a refusal")
        };
        assert_eq!(retry_after, 5);
        assert!(
            l.reserve("c", LIMITS, 1, T0 + 20).is_ok(),
            "a new minute starts empty"
        );
    }

    #[test]
    fn a_request_larger_than_a_limit_can_never_fit() {
        let l = Limiter::default();
        assert!(matches!(
            l.reserve("c", LIMITS, 10_001, T0),
            Err(Refusal::TooLarge {
                window: Window::Minute,
                ..
            })
        ));
    }

    #[test]
    fn settlement_replaces_the_reservation_with_actual_usage() {
        let l = Limiter::default();
        let (t, _) = l.reserve("c", LIMITS, 4_000, T0).unwrap();
        l.settle("c", &t, 500, T0);
        assert_eq!(l.headroom("c", LIMITS, T0).remaining, 9_500);
    }

    #[test]
    fn settlement_never_goes_negative_and_ignores_rolled_windows() {
        let l = Limiter::default();
        let (t, _) = l.reserve("c", LIMITS, 100, T0).unwrap();
        l.settle("c", &t, 0, T0);
        l.settle("c", &t, 0, T0); // settled twice by mistake: saturates, never wraps
        assert_eq!(l.headroom("c", LIMITS, T0).remaining, 10_000);
        let (t, _) = l.reserve("c", LIMITS, 100, T0).unwrap();
        l.settle("c", &t, 50, T0 + 60); // the minute rolled; hour and day are adjusted
        let h = l.headroom("c", [1_000_000, 1_000, 1_000_000], T0 + 60);
        assert_eq!((h.window, h.remaining), (Window::Hour, 950));
    }

    #[test]
    fn racing_reservations_admit_exactly_what_fits() {
        let l = Arc::new(Limiter::default());
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let l = Arc::clone(&l);
                std::thread::spawn(move || l.reserve("c", LIMITS, 1_000, T0).is_ok())
            })
            .collect();
        let admitted = handles
            .into_iter()
            .map(|h| h.join())
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn consumers_do_not_share_windows() {
        let l = Limiter::default();
        l.reserve("a", LIMITS, 10_000, T0).unwrap();
        assert!(l.reserve("b", LIMITS, 10_000, T0).is_ok());
    }
}
