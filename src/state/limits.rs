//! Token and request rate limits: per consumer, fixed windows of a minute, an hour and a day
//! (UTC-aligned) for tokens, and the current minute's requests, per consumer and per team.
//!
//! Input: a consumer's limits and the request's worst case (estimated prompt + output cap).
//! Decision: reserve that many tokens in all three windows and one request in the consumer's
//! and its team's minute at once, or reject naming the first limit that cannot hold it and when
//! it resets. Memory is O(1) per consumer and per team, and per-id mutexes (a consumer's, then
//! its team's, always in that order) make racing reservations exact: N requests for the last
//! tokens or requests of a window admit exactly what fits. Settlement replaces a token
//! reservation with the real usage in the windows that are still current (a window that rolled
//! over meanwhile is left alone); a request, once admitted, stays counted.

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

impl Counter {
    /// Brings the counter to window `id`, from zero when it rolled over.
    fn roll(&mut self, id: u64) {
        if self.id != id {
            *self = Counter { id, used: 0 };
        }
    }
}

/// A consumer's token windows and its requests this minute.
#[derive(Debug, Default)]
struct Counters {
    tokens: [Counter; 3],
    requests: Counter,
}

impl Counters {
    /// Brings each window to `now`, starting a fresh count when it rolled over.
    fn roll(&mut self, now: u64) {
        for (c, w) in self.tokens.iter_mut().zip(WINDOWS) {
            c.roll(w.id(now));
        }
        self.requests.roll(Window::Minute.id(now));
    }
}

/// What a consumer may use: tokens per window, and requests per minute (its own and its
/// team's; `None` is unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Minute, hour, day.
    pub tokens: [u64; 3],
    pub requests: Option<u64>,
    pub team_requests: Option<u64>,
}

impl Limits {
    /// Token limits alone, no request rate.
    pub fn tokens(tokens: [u64; 3]) -> Limits {
        Limits {
            tokens,
            requests: None,
            team_requests: None,
        }
    }
}

/// Whose request rate refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Consumer,
    Team,
}

impl Who {
    pub fn as_str(self) -> &'static str {
        match self {
            Who::Consumer => "consumer",
            Who::Team => "team",
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
    /// This minute's requests (the consumer's or its team's) are all taken.
    Requests {
        who: Who,
        limit: u64,
        retry_after: u64,
    },
}

/// Token and request counters of every consumer, and request counters of every team with a
/// request rate, keyed by id (they outlive configuration reloads).
#[derive(Debug, Default)]
pub struct Limiter {
    consumers: PerConsumer<Counters>,
    teams: PerConsumer<Counter>,
}

/// Why [`Limiter::reserve_then`] stopped: a limit, or the step it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped<E> {
    Limit(Refusal),
    Then(E),
}

impl Limiter {
    /// Reserves `tokens` in every token window of `limits` and one request in the consumer's
    /// minute and, with `team` (given when its team has a request rate), the team's, at `now`
    /// (Unix seconds), atomically: all or none.
    pub fn reserve(
        &self,
        consumer: &str,
        team: Option<&str>,
        limits: Limits,
        tokens: u64,
        now: u64,
    ) -> Result<(TokenTicket, Headroom), Refusal> {
        self.reserve_then(consumer, team, limits, tokens, now, || Ok::<(), ()>(()))
            .map(|(ticket, headroom, ())| (ticket, headroom))
            .map_err(|e| match e {
                Stopped::Limit(r) => r,
                // `then` above never refuses.
                Stopped::Then(()) => Refusal::Requests {
                    who: Who::Consumer,
                    limit: 0,
                    retry_after: 0,
                },
            })
    }

    /// As [`Limiter::reserve`], with `then` (the budget step) decided under the same locks,
    /// after the limits were checked and before anything is taken: the whole admission is one
    /// step, so a request that a budget refuses never holds a slot another request could see.
    /// Lock order: this consumer, its team (when it has a request rate), then whatever `then`
    /// takes (the spend ledger's consumer and team), the same order everywhere.
    pub fn reserve_then<T, E>(
        &self,
        consumer: &str,
        team: Option<&str>,
        limits: Limits,
        tokens: u64,
        now: u64,
        then: impl FnOnce() -> Result<T, E>,
    ) -> Result<(TokenTicket, Headroom, T), Stopped<E>> {
        self.consumers.with(consumer, |c| {
            c.roll(now);
            check(c, limits, tokens, now).map_err(Stopped::Limit)?;
            let decided = match (team, limits.team_requests) {
                (Some(team), Some(limit)) => self.teams.with(team, |t| {
                    take_request(t, Who::Team, limit, now).map_err(Stopped::Limit)?;
                    then().map_err(|e| {
                        // Given back under the same lock: nobody saw it taken.
                        t.used = t.used.saturating_sub(1);
                        Stopped::Then(e)
                    })
                })?,
                _ => then().map_err(Stopped::Then)?,
            };
            let (ticket, headroom) = commit(c, limits.tokens, tokens, now);
            Ok((ticket, headroom, decided))
        })
    }

    /// Replaces the reservation with what was actually used.
    pub fn settle(&self, consumer: &str, ticket: &TokenTicket, actual: u64, now: u64) {
        self.consumers.with(consumer, |c| {
            c.roll(now);
            for (counter, id) in c.tokens.iter_mut().zip(ticket.window_ids) {
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
            c.tokens.map(|t| t.used)
        })
    }

    /// Requests admitted in the current minute, by the consumer and by its team.
    pub fn requests(&self, consumer: &str, team: &str, now: u64) -> (u64, u64) {
        let minute = Window::Minute.id(now);
        let own = self.consumers.with(consumer, |c| {
            c.roll(now);
            c.requests.used
        });
        let team = self.teams.with(team, |t| {
            t.roll(minute);
            t.used
        });
        (own, team)
    }

    /// The current headroom without reserving anything.
    pub fn headroom(&self, consumer: &str, limits: [u64; 3], now: u64) -> Headroom {
        self.consumers.with(consumer, |c| {
            c.roll(now);
            headroom(c, limits, now)
        })
    }
}

/// Whether `tokens` and one more request fit the consumer's windows (rolled to `now`).
fn check(c: &Counters, limits: Limits, tokens: u64, now: u64) -> Result<(), Refusal> {
    let l = limits.tokens;
    for (i, w) in WINDOWS.into_iter().enumerate() {
        if tokens > l[i] {
            return Err(Refusal::TooLarge {
                window: w,
                limit: l[i],
                needed: tokens,
            });
        }
        let used = c.tokens[i].used;
        if used.saturating_add(tokens) > l[i] {
            return Err(Refusal::Full {
                window: w,
                limit: l[i],
                used,
                needed: tokens,
                retry_after: w.resets_in(now),
            });
        }
    }
    match limits.requests {
        Some(limit) if c.requests.used >= limit => Err(Refusal::Requests {
            who: Who::Consumer,
            limit,
            retry_after: Window::Minute.resets_in(now),
        }),
        _ => Ok(()),
    }
}

/// Takes one request from a minute counter holding at most `limit`.
fn take_request(t: &mut Counter, who: Who, limit: u64, now: u64) -> Result<(), Refusal> {
    t.roll(Window::Minute.id(now));
    if t.used >= limit {
        return Err(Refusal::Requests {
            who,
            limit,
            retry_after: Window::Minute.resets_in(now),
        });
    }
    t.used = t.used.saturating_add(1);
    Ok(())
}

/// Adds a checked reservation: `tokens` in every window, one request in the minute.
fn commit(c: &mut Counters, limits: [u64; 3], tokens: u64, now: u64) -> (TokenTicket, Headroom) {
    for counter in c.tokens.iter_mut() {
        counter.used = counter.used.saturating_add(tokens);
    }
    c.requests.used = c.requests.used.saturating_add(1);
    let ticket = TokenTicket {
        window_ids: c.tokens.map(|t| t.id),
        reserved: tokens,
    };
    (ticket, headroom(c, limits, now))
}

fn headroom(c: &Counters, limits: [u64; 3], now: u64) -> Headroom {
    tightest(limits, c.tokens.map(|t| t.used), now)
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
            l.reserve("c", None, Limits::tokens(LIMITS), 1_000, T0)
                .unwrap();
        }
        match l.reserve("c", None, Limits::tokens(LIMITS), 1, T0) {
            Err(Refusal::Full { window, used, .. }) => {
                assert_eq!((window, used), (Window::Minute, 10_000))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_counts_down_to_window_reset() {
        let l = Limiter::default();
        l.reserve("c", None, Limits::tokens(LIMITS), 10_000, T0)
            .unwrap();
        let Err(Refusal::Full { retry_after, .. }) =
            l.reserve("c", None, Limits::tokens(LIMITS), 1, T0)
        else {
            panic!("expected a refusal")
        };
        assert_eq!(retry_after, 20);
        let Err(Refusal::Full { retry_after, .. }) =
            l.reserve("c", None, Limits::tokens(LIMITS), 1, T0 + 15)
        else {
            panic!("expected a refusal")
        };
        assert_eq!(retry_after, 5);
        assert!(
            l.reserve("c", None, Limits::tokens(LIMITS), 1, T0 + 20)
                .is_ok(),
            "a new minute starts empty"
        );
    }

    #[test]
    fn a_request_larger_than_a_limit_can_never_fit() {
        let l = Limiter::default();
        assert!(matches!(
            l.reserve("c", None, Limits::tokens(LIMITS), 10_001, T0),
            Err(Refusal::TooLarge {
                window: Window::Minute,
                ..
            })
        ));
    }

    #[test]
    fn settlement_replaces_the_reservation_with_actual_usage() {
        let l = Limiter::default();
        let (t, _) = l
            .reserve("c", None, Limits::tokens(LIMITS), 4_000, T0)
            .unwrap();
        l.settle("c", &t, 500, T0);
        assert_eq!(l.headroom("c", LIMITS, T0).remaining, 9_500);
    }

    #[test]
    fn settlement_never_goes_negative_and_ignores_rolled_windows() {
        let l = Limiter::default();
        let (t, _) = l
            .reserve("c", None, Limits::tokens(LIMITS), 100, T0)
            .unwrap();
        l.settle("c", &t, 0, T0);
        l.settle("c", &t, 0, T0); // settled twice by mistake: saturates, never wraps
        assert_eq!(l.headroom("c", LIMITS, T0).remaining, 10_000);
        let (t, _) = l
            .reserve("c", None, Limits::tokens(LIMITS), 100, T0)
            .unwrap();
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
                std::thread::spawn(move || {
                    l.reserve("c", None, Limits::tokens(LIMITS), 1_000, T0)
                        .is_ok()
                })
            })
            .collect();
        let admitted = handles
            .into_iter()
            .map(|h| h.join())
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(admitted, 10);
    }

    const PER_MINUTE: Limits = Limits {
        tokens: LIMITS,
        requests: Some(3),
        team_requests: None,
    };

    #[test]
    fn a_consumer_gets_its_requests_per_minute_and_then_waits_for_the_next_minute() {
        let l = Limiter::default();
        for _ in 0..3 {
            l.reserve("c", None, PER_MINUTE, 10, T0).unwrap();
        }
        assert_eq!(
            l.reserve("c", None, PER_MINUTE, 10, T0).unwrap_err(),
            (Refusal::Requests {
                who: Who::Consumer,
                limit: 3,
                retry_after: 20
            })
        );
        assert_eq!(
            l.used("c", T0)[0],
            30,
            "the refused request holds no tokens"
        );
        assert!(l.reserve("c", None, PER_MINUTE, 10, T0 + 20).is_ok());
        assert_eq!(l.requests("c", "", T0 + 20), (1, 0));
    }

    #[test]
    fn a_team_rate_is_shared_by_its_consumers_and_refusals_take_nothing() {
        let l = Limiter::default();
        let team = Limits {
            tokens: LIMITS,
            requests: None,
            team_requests: Some(4),
        };
        for c in ["a", "b", "a", "b"] {
            l.reserve(c, Some("t"), team, 100, T0).unwrap();
        }
        let Err(Refusal::Requests { who, limit, .. }) = l.reserve("c", Some("t"), team, 100, T0)
        else {
            panic!("the team's minute is full")
        };
        assert_eq!((who, limit), (Who::Team, 4));
        assert_eq!(
            l.used("c", T0)[0],
            0,
            "nothing held for the refused consumer"
        );
        assert_eq!(l.requests("c", "t", T0), (0, 4));
        assert!(
            l.reserve("c", Some("other"), team, 100, T0).is_ok(),
            "another team has its own minute"
        );
    }

    #[test]
    fn a_step_that_refuses_leaves_no_token_and_no_request_taken() {
        let l = Limiter::default();
        let team = Limits {
            tokens: LIMITS,
            requests: Some(1),
            team_requests: Some(1),
        };
        let refused = l.reserve_then("a", Some("t"), team, 100, T0, || Err::<(), _>("budget"));
        assert_eq!(refused.unwrap_err(), Stopped::Then("budget"));
        assert_eq!(l.requests("a", "t", T0), (0, 0));
        assert_eq!(l.used("a", T0), [0, 0, 0]);
        let (_, _, v) = l
            .reserve_then("a", Some("t"), team, 100, T0, || Ok::<_, ()>(7))
            .unwrap();
        assert_eq!(v, 7);
        assert_eq!(l.requests("a", "t", T0), (1, 1));
    }

    #[test]
    fn racing_consumers_whose_budget_step_refuses_admit_exactly_the_teams_rate() {
        // A refusing step's slot is given back under the team's lock, so the one slot goes to a
        // paying consumer and to exactly one.
        let l = Arc::new(Limiter::default());
        let team = Limits {
            tokens: LIMITS,
            requests: None,
            team_requests: Some(1),
        };
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let l = Arc::clone(&l);
                std::thread::spawn(move || {
                    let who = if i % 2 == 0 { "broke" } else { "paying" };
                    l.reserve_then(who, Some("t"), team, 1, T0, || {
                        if who == "broke" {
                            Err(())
                        } else {
                            Ok(())
                        }
                    })
                    .is_ok()
                })
            })
            .collect();
        let admitted = handles
            .into_iter()
            .map(|h| h.join())
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(
            admitted, 1,
            "exactly the team's one request, always a paying one"
        );
    }

    #[test]
    fn racing_requests_of_one_team_admit_exactly_its_rate() {
        let l = Arc::new(Limiter::default());
        let team = Limits {
            tokens: LIMITS,
            requests: None,
            team_requests: Some(7),
        };
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let l = Arc::clone(&l);
                let consumer = if i % 2 == 0 { "a" } else { "b" };
                std::thread::spawn(move || l.reserve(consumer, Some("t"), team, 1, T0).is_ok())
            })
            .collect();
        let admitted = handles
            .into_iter()
            .map(|h| h.join())
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(admitted, 7);
    }

    #[test]
    fn consumers_do_not_share_windows() {
        let l = Limiter::default();
        l.reserve("a", None, Limits::tokens(LIMITS), 10_000, T0)
            .unwrap();
        assert!(l
            .reserve("b", None, Limits::tokens(LIMITS), 10_000, T0)
            .is_ok());
    }
}
