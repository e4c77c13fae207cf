//! Daily budgets: per consumer, spend in integer nano-dollars for the current UTC day.
//!
//! Input: a consumer's budget and the request's worst-case cost. Decision: reserve it if
//! spent + reserved + cost fits the budget, else refuse (429 until UTC midnight). At 80 % of the
//! budget (spent + reserved) a warning rides along. Settlement moves the reservation to the real
//! cost. Spend (today's and all-time) is exported as a snapshot for the state file so a restart
//! keeps it; the last requests per consumer are kept for `/costs`.

use super::PerConsumer;
pub use crate::config::money::usd;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};

/// Nano-dollars per dollar.
pub const NANOS_PER_USD: u64 = 1_000_000_000;
/// Requests remembered per consumer for `/costs`.
const RECENT: usize = 20;
/// Warn from this share of the budget on (percent).
pub const WARN_PERCENT: u64 = 80;

/// One settled request, as `/costs` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    pub timestamp: u64,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_nanos: u64,
    pub estimated: bool,
}

#[derive(Debug, Default)]
struct Account {
    day: u64,
    spent: u64,
    reserved: u64,
    total: u64,
    recent: VecDeque<Recent>,
}

impl Account {
    fn roll(&mut self, day: u64) {
        if self.day != day {
            self.day = day;
            self.spent = 0;
        }
    }
}

/// A cost reservation held by one request until it is settled.
#[derive(Debug, Clone)]
pub struct SpendTicket {
    pub reserved: u64,
    /// The UTC day it was made on: the cost is that day's, whenever the request settles.
    pub day: u64,
}

/// Where a consumer stands after an admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub spent: u64,
    pub reserved: u64,
    pub budget: u64,
}

impl Standing {
    /// At or above the warning threshold of what is already spent today (the seed's rule;
    /// reservations of requests still running do not count).
    pub fn warn(&self) -> bool {
        self.budget > 0
            && u128::from(self.spent) * 100 >= u128::from(self.budget) * u128::from(WARN_PERCENT)
    }

    /// Spent today, as a whole percentage of the budget.
    pub fn percent_used(&self) -> u64 {
        if self.budget == 0 {
            return 100;
        }
        (u128::from(self.spent) * 100 / u128::from(self.budget)) as u64
    }
}

/// The request's worst case does not fit in what is left today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    pub standing: Standing,
    pub needed: u64,
}

/// Persisted per consumer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedAccount {
    pub day: u64,
    pub spent_nanos: u64,
    pub total_nanos: u64,
}

/// Spend of every consumer, keyed by consumer id (it outlives configuration reloads).
#[derive(Debug, Default)]
pub struct Ledger {
    accounts: PerConsumer<Account>,
    dirty: AtomicBool,
}

impl Ledger {
    /// Reserves `cost` against `budget` for `day` (days since the Unix epoch, UTC).
    pub fn reserve(
        &self,
        consumer: &str,
        budget: u64,
        cost: u64,
        day: u64,
    ) -> Result<(SpendTicket, Standing), OverBudget> {
        self.accounts.with(consumer, |a| {
            a.roll(day);
            let committed = a.spent.saturating_add(a.reserved);
            if committed.saturating_add(cost) > budget {
                return Err(OverBudget {
                    standing: Standing {
                        spent: a.spent,
                        reserved: a.reserved,
                        budget,
                    },
                    needed: cost,
                });
            }
            a.reserved += cost;
            Ok((
                SpendTicket {
                    reserved: cost,
                    day,
                },
                Standing {
                    spent: a.spent,
                    reserved: a.reserved,
                    budget,
                },
            ))
        })
    }

    /// Moves the reservation to the real cost and remembers the request. The cost counts
    /// against the day the reservation was made on: a request admitted before midnight and
    /// settled after it adds nothing to the new day's spend (its all-time total still counts it).
    pub fn settle(&self, consumer: &str, ticket: &SpendTicket, record: Recent, day: u64) {
        self.accounts.with(consumer, |a| {
            a.roll(day);
            a.reserved = a.reserved.saturating_sub(ticket.reserved);
            if ticket.day == a.day {
                a.spent = a.spent.saturating_add(record.cost_nanos);
            }
            a.total = a.total.saturating_add(record.cost_nanos);
            if a.recent.len() == RECENT {
                a.recent.pop_front();
            }
            a.recent.push_back(record);
        });
        self.dirty.store(true, Ordering::Release);
    }

    /// Where a consumer stands today, without reserving.
    pub fn standing(&self, consumer: &str, budget: u64, day: u64) -> Standing {
        self.accounts.with(consumer, |a| {
            a.roll(day);
            Standing {
                spent: a.spent,
                reserved: a.reserved,
                budget,
            }
        })
    }

    /// Today's spend, all-time spend and recent requests of a consumer.
    pub fn report(&self, consumer: &str, day: u64) -> (u64, u64, Vec<Recent>) {
        self.accounts.with(consumer, |a| {
            a.roll(day);
            (a.spent, a.total, a.recent.iter().cloned().collect())
        })
    }

    /// Marks the spend as changed (a failed write is retried).
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// The persisted form, and whether anything changed since the last call.
    pub fn snapshot_if_dirty(&self) -> Option<BTreeMap<String, SavedAccount>> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return None;
        }
        Some(self.snapshot())
    }

    pub fn snapshot(&self) -> BTreeMap<String, SavedAccount> {
        let mut out = BTreeMap::new();
        self.accounts.for_each(|id, a| {
            out.insert(
                id.to_string(),
                SavedAccount {
                    day: a.day,
                    spent_nanos: a.spent,
                    total_nanos: a.total,
                },
            );
        });
        out
    }

    /// Restores persisted spend (at start-up, before any request).
    pub fn restore(&self, saved: BTreeMap<String, SavedAccount>) {
        for (id, s) in saved {
            self.accounts.insert(
                id,
                Account {
                    day: s.day,
                    spent: s.spent_nanos,
                    reserved: 0,
                    total: s.total_nanos,
                    recent: VecDeque::new(),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const DAY: u64 = 19_000;
    const BUDGET: u64 = NANOS_PER_USD / 10; // $0.10
    const COST: u64 = 3 * NANOS_PER_USD / 100; // $0.03

    fn record(cost: u64) -> Recent {
        Recent {
            timestamp: 0,
            model: "m".into(),
            input_tokens: 1,
            output_tokens: 1,
            cost_nanos: cost,
            estimated: false,
        }
    }

    #[test]
    fn reservations_stop_at_the_budget() {
        let l = Ledger::default();
        for _ in 0..3 {
            l.reserve("c", BUDGET, COST, DAY).unwrap();
        }
        let err = l.reserve("c", BUDGET, COST, DAY).unwrap_err();
        assert_eq!(err.standing.reserved, 3 * COST);
    }

    #[test]
    fn settlement_frees_what_was_not_spent() {
        let l = Ledger::default();
        let (t, _) = l.reserve("c", BUDGET, COST, DAY).unwrap();
        l.settle("c", &t, record(COST / 3), DAY);
        let s = l.standing("c", BUDGET, DAY);
        assert_eq!((s.spent, s.reserved), (COST / 3, 0));
    }

    #[test]
    fn warns_from_eighty_percent() {
        let s = Standing {
            spent: 79,
            reserved: 20,
            budget: 100,
        };
        assert!(!s.warn(), "reservations of running requests do not count");
        let s = Standing {
            spent: 80,
            reserved: 0,
            budget: 100,
        };
        assert!(s.warn());
    }

    #[test]
    fn a_new_utc_day_starts_from_zero_but_keeps_the_total() {
        let l = Ledger::default();
        let (t, _) = l.reserve("c", BUDGET, COST, DAY).unwrap();
        l.settle("c", &t, record(COST), DAY);
        assert_eq!(l.report("c", DAY + 1).0, 0);
        assert_eq!(l.report("c", DAY + 1).1, COST);
    }

    #[test]
    fn racing_reservations_never_exceed_the_budget() {
        let l = Arc::new(Ledger::default());
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let l = Arc::clone(&l);
                std::thread::spawn(move || l.reserve("c", BUDGET, COST, DAY).is_ok())
            })
            .collect();
        let admitted = handles
            .into_iter()
            .map(|h| h.join())
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(admitted, 3);
    }

    #[test]
    fn snapshot_round_trips_and_reports_only_changes() {
        let l = Ledger::default();
        assert!(l.snapshot_if_dirty().is_none());
        let (t, _) = l.reserve("c", BUDGET, COST, DAY).unwrap();
        l.settle("c", &t, record(COST), DAY);
        let snap = l.snapshot_if_dirty().unwrap();
        assert!(l.snapshot_if_dirty().is_none());
        let restored = Ledger::default();
        restored.restore(snap);
        assert_eq!(restored.report("c", DAY).0, COST);
    }

    #[test]
    fn dollars_are_formatted_from_integers() {
        assert_eq!(usd(123_456_789, 6), "0.123457");
        assert_eq!(usd(100 * NANOS_PER_USD, 2), "100.00");
        assert_eq!(usd(5, 4), "0.0000");
    }

    #[test]
    fn a_request_settled_after_midnight_is_charged_to_the_day_it_was_admitted_on() {
        let l = Ledger::default();
        let (t, _) = l.reserve("c", BUDGET, COST, DAY).unwrap();
        l.settle("c", &t, record(COST), DAY + 1);
        let s = l.standing("c", BUDGET, DAY + 1);
        assert_eq!((s.spent, s.reserved), (0, 0), "the new day starts clean");
        let (_, total, recent) = l.report("c", DAY + 1);
        assert_eq!(
            (total, recent.len()),
            (COST, 1),
            "and the request is still counted"
        );
    }
}
