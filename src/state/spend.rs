//! Budgets in the embedded store: per consumer, spend in integer nano-dollars for the current
//! UTC day and UTC calendar month, and the same for each team listed under `teams:`.
//!
//! Input: the budgets a request is held to ([`Budgets`]: the consumer's daily budget, and any of
//! its monthly budget and its team's daily and monthly budgets) and the request's worst-case
//! cost. Decision: reserve it against every one of them if spent + reserved + cost fits each,
//! all or nothing under the consumer's lock and then the team's (always in that order), else
//! refuse naming the first budget that cannot hold it ([`OverBudget`]; 429 until the period
//! ends). At 80 % of the consumer's daily budget a warning rides along. Settlement moves the
//! reservation to the real cost in the day and month it was made in, and reports how each
//! budget's settled spend moved (for threshold alerts). Spend is not persisted here: every
//! settlement is also a row of the embedded database's ledger (`state::store`), and at start-up
//! [`Ledger::restore_totals`] and [`Ledger::restore_days`] rebuild all-time totals and the day's
//! and the month's spend from it. The last requests per consumer are kept for `/costs`.

use super::budget::{Budgets, Moves, Scope, Tally};
pub use super::budget::{OverBudget, Standing, WARN_PERCENT};
use super::{utc_month, PerConsumer};
pub use crate::config::money::usd;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Nano-dollars per dollar.
pub const NANOS_PER_USD: u64 = 1_000_000_000;
/// Requests remembered per consumer for `/costs`.
const RECENT: usize = 20;

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
    day: Tally,
    month: Tally,
    total: u64,
    recent: VecDeque<Recent>,
}

/// A team's day and month.
#[derive(Debug, Default)]
struct TeamAccount {
    day: Tally,
    month: Tally,
}

/// Brings a day and a month tally to `day` (and its month).
fn roll(d: &mut Tally, m: &mut Tally, day: u64) {
    d.roll(day);
    m.roll(utc_month(day));
}

/// A cost reservation held by one request until it is settled.
#[derive(Debug, Clone)]
pub struct SpendTicket {
    pub reserved: u64,
    /// The UTC day it was made on: the cost is that day's (and that day's month's), whenever
    /// the request settles.
    pub day: u64,
}

/// Settled spend of one consumer in one team on one UTC day: what the spend store keeps, and
/// what [`Ledger::restore_days`] rebuilds the ledger from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySpend {
    pub day: u64,
    pub consumer: String,
    pub team: String,
    pub cost_nanos: u64,
}

/// Spend of every consumer and team, keyed by id (it outlives configuration reloads).
#[derive(Debug, Default)]
pub struct Ledger {
    accounts: PerConsumer<Account>,
    teams: PerConsumer<TeamAccount>,
}

impl Ledger {
    /// Reserves `cost` against every budget in `budgets` for `day` (days since the Unix epoch,
    /// UTC) and its month, all or none; `team` names the consumer's team when `teams:` lists it
    /// (its spend is then counted, and its budgets in `budgets` apply). The standing returned
    /// is the consumer's day.
    pub fn reserve(
        &self,
        consumer: &str,
        team: Option<&str>,
        budgets: &Budgets,
        cost: u64,
        day: u64,
    ) -> Result<(SpendTicket, Standing), OverBudget> {
        self.accounts.with(consumer, |a| {
            roll(&mut a.day, &mut a.month, day);
            check(&a.day, &a.month, budgets, Scope::ConsumerDaily, cost)?;
            if let Some(team) = team {
                // Under the consumer's lock: the order is always consumer, then team.
                self.teams.with(team, |t| {
                    roll(&mut t.day, &mut t.month, day);
                    check(&t.day, &t.month, budgets, Scope::TeamDaily, cost)?;
                    t.day.reserved = t.day.reserved.saturating_add(cost);
                    t.month.reserved = t.month.reserved.saturating_add(cost);
                    Ok(())
                })?;
            }
            a.day.reserved = a.day.reserved.saturating_add(cost);
            a.month.reserved = a.month.reserved.saturating_add(cost);
            Ok((
                SpendTicket {
                    reserved: cost,
                    day,
                },
                a.day.standing(budgets.consumer_daily),
            ))
        })
    }

    /// Moves the reservation to the real cost and remembers the request. The cost counts
    /// against the day (and month) the reservation was made on: a request admitted before
    /// midnight and settled after it adds nothing to the new day's spend (its all-time total
    /// still counts it). `team` as given to [`Ledger::reserve`]. Returns how each budget's
    /// settled spend moved.
    pub fn settle(
        &self,
        consumer: &str,
        team: Option<&str>,
        ticket: &SpendTicket,
        record: Recent,
        day: u64,
    ) -> Moves {
        let mut moves = Moves::default();
        let month = utc_month(ticket.day);
        let cost = record.cost_nanos;
        self.accounts.with(consumer, |a| {
            roll(&mut a.day, &mut a.month, day);
            let (b, f) = a.day.settle(ticket.reserved, cost, ticket.day);
            moves.set(Scope::ConsumerDaily, b, f);
            let (b, f) = a.month.settle(ticket.reserved, cost, month);
            moves.set(Scope::ConsumerMonthly, b, f);
            a.total = a.total.saturating_add(cost);
            if a.recent.len() == RECENT {
                a.recent.pop_front();
            }
            a.recent.push_back(record);
        });
        if let Some(team) = team {
            self.teams.with(team, |t| {
                roll(&mut t.day, &mut t.month, day);
                let (b, f) = t.day.settle(ticket.reserved, cost, ticket.day);
                moves.set(Scope::TeamDaily, b, f);
                let (b, f) = t.month.settle(ticket.reserved, cost, month);
                moves.set(Scope::TeamMonthly, b, f);
            });
        }
        moves
    }

    /// Where a consumer stands today, without reserving.
    pub fn standing(&self, consumer: &str, budget: u64, day: u64) -> Standing {
        self.accounts.with(consumer, |a| {
            roll(&mut a.day, &mut a.month, day);
            a.day.standing(budget)
        })
    }

    /// A consumer's tally for the month of `day`.
    pub fn month(&self, consumer: &str, day: u64) -> Tally {
        self.accounts.with(consumer, |a| {
            roll(&mut a.day, &mut a.month, day);
            a.month
        })
    }

    /// A team's tallies for `day` and its month.
    pub fn team(&self, team: &str, day: u64) -> (Tally, Tally) {
        self.teams.with(team, |t| {
            roll(&mut t.day, &mut t.month, day);
            (t.day, t.month)
        })
    }

    /// Today's spend, all-time spend and recent requests of a consumer.
    pub fn report(&self, consumer: &str, day: u64) -> (u64, u64, Vec<Recent>) {
        self.accounts.with(consumer, |a| {
            roll(&mut a.day, &mut a.month, day);
            (a.day.spent, a.total, a.recent.iter().cloned().collect())
        })
    }

    /// Rebuilds the spend of `today` and of its month, for consumers and teams, from settled
    /// rows (one per day × consumer × team; rows of other months are ignored). What the rows
    /// do not mention spent nothing this month; all-time totals and recent requests are kept
    /// (a total is raised to the month's spend if it was lower). Called at start-up, before
    /// any request: reservations are not touched.
    pub fn restore_days(&self, rows: &[DaySpend], today: u64) {
        let month = utc_month(today);
        let mut consumers: HashMap<&str, (u64, u64)> = HashMap::new();
        let mut teams: HashMap<&str, (u64, u64)> = HashMap::new();
        for r in rows
            .iter()
            .filter(|r| utc_month(r.day) == month && r.day <= today)
        {
            let today_cost = if r.day == today { r.cost_nanos } else { 0 };
            let add = |e: &mut (u64, u64)| {
                e.0 = e.0.saturating_add(today_cost);
                e.1 = e.1.saturating_add(r.cost_nanos);
            };
            add(consumers.entry(r.consumer.as_str()).or_default());
            if !r.team.is_empty() {
                add(teams.entry(r.team.as_str()).or_default());
            }
        }
        let fresh = |spent: u64, period: u64| Tally {
            period,
            spent,
            reserved: 0,
        };
        restore_each(&self.accounts, &consumers, |a, day_spent, month_spent| {
            a.day = fresh(day_spent, today);
            a.month = fresh(month_spent, month);
            a.total = a.total.max(month_spent);
        });
        restore_each(&self.teams, &teams, |t, day_spent, month_spent| {
            t.day = fresh(day_spent, today);
            t.month = fresh(month_spent, month);
        });
    }

    /// Restores every consumer's all-time spend (at start-up, before any request).
    pub fn restore_totals(&self, totals: BTreeMap<String, u64>) {
        for (id, total) in totals {
            self.accounts.with(&id, |a| a.total = a.total.max(total));
        }
    }
}

/// Sets every entry of `map`, and one for every id in `sums`, from its (day, month) spend in
/// `sums` (none: nothing spent).
fn restore_each<T: Default>(
    map: &PerConsumer<T>,
    sums: &HashMap<&str, (u64, u64)>,
    set: impl Fn(&mut T, u64, u64),
) {
    let mut known = Vec::new();
    map.for_each(|id, _| known.push(id.to_string()));
    for id in known.iter().map(String::as_str).chain(sums.keys().copied()) {
        let (day_spent, month_spent) = sums.get(id).copied().unwrap_or_default();
        map.with(id, |e| set(e, day_spent, month_spent));
    }
}

/// Whether `cost` fits the daily and monthly budget of `daily`'s side (consumer or team).
fn check(
    day: &Tally,
    month: &Tally,
    budgets: &Budgets,
    daily: Scope,
    cost: u64,
) -> Result<(), OverBudget> {
    let monthly = match daily {
        Scope::TeamDaily => Scope::TeamMonthly,
        _ => Scope::ConsumerMonthly,
    };
    for (scope, tally) in [(daily, day), (monthly, month)] {
        if let Some(budget) = budgets.get(scope) {
            if !tally.fits(cost, budget) {
                return Err(OverBudget {
                    scope,
                    standing: tally.standing(budget),
                    needed: cost,
                });
            }
        }
    }
    Ok(())
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
            l.reserve("c", None, &Budgets::daily(BUDGET), COST, DAY)
                .unwrap();
        }
        let err = l
            .reserve("c", None, &Budgets::daily(BUDGET), COST, DAY)
            .unwrap_err();
        assert_eq!(err.standing.reserved, 3 * COST);
    }

    #[test]
    fn settlement_frees_what_was_not_spent() {
        let l = Ledger::default();
        let (t, _) = l
            .reserve("c", None, &Budgets::daily(BUDGET), COST, DAY)
            .unwrap();
        l.settle("c", None, &t, record(COST / 3), DAY);
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
        let (t, _) = l
            .reserve("c", None, &Budgets::daily(BUDGET), COST, DAY)
            .unwrap();
        l.settle("c", None, &t, record(COST), DAY);
        assert_eq!(l.report("c", DAY + 1).0, 0);
        assert_eq!(l.report("c", DAY + 1).1, COST);
    }

    #[test]
    fn racing_reservations_never_exceed_the_budget() {
        let l = Arc::new(Ledger::default());
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let l = Arc::clone(&l);
                std::thread::spawn(move || {
                    l.reserve("c", None, &Budgets::daily(BUDGET), COST, DAY)
                        .is_ok()
                })
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
    fn totals_and_days_are_restored_from_settled_spend() {
        let l = Ledger::default();
        l.restore_totals(BTreeMap::from([("c".to_string(), 5 * COST)]));
        let row = |day| DaySpend {
            day,
            consumer: "c".into(),
            team: "t".into(),
            cost_nanos: COST,
        };
        l.restore_days(&[row(DAY - 1), row(DAY)], DAY);
        assert_eq!(l.report("c", DAY).0, COST, "today's spend");
        assert_eq!(l.report("c", DAY).1, 5 * COST, "the all-time total");
    }

    #[test]
    fn dollars_are_formatted_from_integers() {
        assert_eq!(usd(123_456_789, 6), "0.123457");
        assert_eq!(usd(100 * NANOS_PER_USD, 2), "100.00");
        assert_eq!(usd(5, 4), "0.0000");
    }

    /// The first day of the month after the one `DAY` is in.
    fn next_month() -> u64 {
        crate::state::utc_month_start(utc_month(DAY) + 1)
    }

    #[test]
    fn a_new_month_starts_from_zero_and_a_new_day_inside_it_keeps_the_month() {
        let l = Ledger::default();
        let budgets = Budgets {
            consumer_monthly: Some(BUDGET * 10),
            ..Budgets::daily(BUDGET)
        };
        let first = crate::state::utc_month_start(utc_month(DAY));
        let (t, _) = l.reserve("c", None, &budgets, COST, first).unwrap();
        l.settle("c", None, &t, record(COST), first);
        let (t, _) = l.reserve("c", None, &budgets, COST, first + 1).unwrap();
        l.settle("c", None, &t, record(COST), first + 1);
        assert_eq!(l.report("c", first + 1).0, COST, "the day restarted");
        assert_eq!(l.month("c", first + 1).spent, 2 * COST, "the month did not");
        let last = next_month() - 1;
        assert_eq!(l.month("c", last).spent, 2 * COST);
        let m = l.month("c", next_month());
        assert_eq!(
            (m.spent, m.reserved),
            (0, 0),
            "a new month starts from zero"
        );
        assert_eq!(m.period, utc_month(next_month()));
    }

    #[test]
    fn a_monthly_budget_refuses_across_days_and_names_its_scope() {
        let l = Ledger::default();
        let budgets = Budgets {
            consumer_monthly: Some(2 * COST),
            ..Budgets::daily(BUDGET)
        };
        let first = crate::state::utc_month_start(utc_month(DAY));
        for day in [first, first + 1] {
            let (t, _) = l.reserve("c", None, &budgets, COST, day).unwrap();
            l.settle("c", None, &t, record(COST), day);
        }
        let over = l.reserve("c", None, &budgets, COST, first + 2).unwrap_err();
        assert_eq!(over.scope, Scope::ConsumerMonthly);
        assert_eq!(over.standing.spent, 2 * COST);
        assert!(
            l.reserve("c", None, &budgets, COST, next_month()).is_ok(),
            "and the next month admits again"
        );
    }

    const TEAM: Budgets = Budgets {
        consumer_daily: u64::MAX,
        consumer_monthly: None,
        team_daily: Some(BUDGET),
        team_monthly: None,
    };

    #[test]
    fn a_team_budget_is_shared_and_a_refusal_holds_nothing() {
        let l = Ledger::default();
        let (t, _) = l.reserve("a", Some("t"), &TEAM, COST, DAY).unwrap();
        l.reserve("b", Some("t"), &TEAM, COST, DAY).unwrap();
        l.reserve("b", Some("t"), &TEAM, COST, DAY).unwrap();
        let over = l.reserve("a", Some("t"), &TEAM, COST, DAY).unwrap_err();
        assert_eq!(over.scope, Scope::TeamDaily);
        assert_eq!(over.standing.reserved, 3 * COST);
        assert_eq!(
            l.standing("a", BUDGET, DAY).reserved,
            COST,
            "the refused request reserved nothing for its consumer"
        );
        let moves = l.settle("a", Some("t"), &t, record(COST / 2), DAY);
        assert_eq!(moves.get(Scope::TeamDaily), (0, COST / 2));
        assert_eq!(moves.get(Scope::ConsumerDaily), (0, COST / 2));
        let (day, month) = l.team("t", DAY);
        assert_eq!((day.spent, day.reserved), (COST / 2, 2 * COST));
        assert_eq!(month.spent, COST / 2);
    }

    #[test]
    fn racing_consumers_of_one_team_never_exceed_its_budget() {
        let l = Arc::new(Ledger::default());
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let l = Arc::clone(&l);
                let consumer = ["a", "b", "c", "d"][i % 4];
                std::thread::spawn(move || l.reserve(consumer, Some("t"), &TEAM, COST, DAY).is_ok())
            })
            .collect();
        let admitted = handles
            .into_iter()
            .map(|h| h.join())
            .filter(|r| matches!(r, Ok(true)))
            .count();
        assert_eq!(admitted, 3, "$0.10 holds three $0.03 reservations");
        assert_eq!(l.team("t", DAY).0.reserved, 3 * COST);
    }

    #[test]
    fn restored_days_rebuild_the_day_and_the_month_of_consumers_and_teams() {
        let l = Ledger::default();
        // Something this instance counted before the store was read is replaced by the rows.
        let (t, _) = l
            .reserve("stale", None, &Budgets::daily(BUDGET), COST, DAY)
            .unwrap();
        l.settle("stale", None, &t, record(COST), DAY);
        let first = crate::state::utc_month_start(utc_month(DAY));
        let today = first + 3;
        let row = |day: u64, consumer: &str, team: &str, cost: u64| DaySpend {
            day,
            consumer: consumer.into(),
            team: team.into(),
            cost_nanos: cost,
        };
        let rows = [
            row(first - 1, "a", "t", 1_000), // last month: ignored
            row(first, "a", "t", 10),
            row(first + 2, "a", "t", 20),
            row(today, "a", "t", 300),
            row(today, "b", "t", 4_000),
            row(today, "c", "", 50_000),
        ];
        l.restore_days(&rows, today);
        assert_eq!(l.report("a", today).0, 300);
        assert_eq!(l.month("a", today).spent, 330);
        assert_eq!(
            l.report("a", today).1,
            330,
            "the total is at least the month"
        );
        assert_eq!(l.month("b", today).spent, 4_000);
        assert_eq!(l.month("c", today).spent, 50_000);
        let (day, month) = l.team("t", today);
        assert_eq!((day.spent, month.spent), (4_300, 4_330));
        assert_eq!(l.report("stale", today).0, 0);
        assert_eq!(
            l.report("stale", today).1,
            COST,
            "its all-time total is kept"
        );
        // And the budgets bind on the restored spend.
        let team = Budgets {
            team_daily: Some(4_400),
            ..TEAM
        };
        assert_eq!(
            l.reserve("c", Some("t"), &team, 101, today)
                .unwrap_err()
                .scope,
            Scope::TeamDaily
        );
        assert!(l.reserve("c", Some("t"), &team, 100, today).is_ok());
    }

    #[test]
    fn a_request_settled_after_midnight_is_charged_to_the_day_it_was_admitted_on() {
        let l = Ledger::default();
        let (t, _) = l
            .reserve("c", None, &Budgets::daily(BUDGET), COST, DAY)
            .unwrap();
        l.settle("c", None, &t, record(COST), DAY + 1);
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
