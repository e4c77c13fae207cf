//! What a budget is: its scope (a consumer's or its team's, per UTC day or UTC calendar month),
//! one period's tally (settled and reserved nano-dollars) and the refusal that names it.
//! Shared by the embedded ledger ([`super::spend`]) and the Redis store ([`super::redis`]), so
//! both refuse, report and alert alike.

use super::{secs_to_day_end, secs_to_month_end, utc_date, utc_month, utc_month_label};
use crate::config::Consumer;

/// One of the four budgets a request may be held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    ConsumerDaily,
    ConsumerMonthly,
    TeamDaily,
    TeamMonthly,
}

impl Scope {
    /// Every scope, in the order admission checks them (and the index of [`Moves`]).
    pub const ALL: [Scope; 4] = [
        Scope::ConsumerDaily,
        Scope::ConsumerMonthly,
        Scope::TeamDaily,
        Scope::TeamMonthly,
    ];

    /// As errors, logs and webhooks name it: `team daily`, `consumer monthly`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ConsumerDaily => "consumer daily",
            Scope::ConsumerMonthly => "consumer monthly",
            Scope::TeamDaily => "team daily",
            Scope::TeamMonthly => "team monthly",
        }
    }

    /// As a metric label: `consumer_daily`, …
    pub fn label(self) -> &'static str {
        match self {
            Scope::ConsumerDaily => "consumer_daily",
            Scope::ConsumerMonthly => "consumer_monthly",
            Scope::TeamDaily => "team_daily",
            Scope::TeamMonthly => "team_monthly",
        }
    }

    pub fn is_team(self) -> bool {
        matches!(self, Scope::TeamDaily | Scope::TeamMonthly)
    }

    pub fn is_monthly(self) -> bool {
        matches!(self, Scope::ConsumerMonthly | Scope::TeamMonthly)
    }

    /// Seconds from `now` until the period ends and the budget starts again: the next UTC
    /// midnight, or the first of the next month at 00:00 UTC.
    pub fn retry_after(self, now: u64) -> u64 {
        if self.is_monthly() {
            secs_to_month_end(now)
        } else {
            secs_to_day_end(now)
        }
    }

    /// The period a request admitted on `day` counts in, as reports name it: `2026-03-14` or
    /// `2026-03`.
    pub fn period_label(self, day: u64) -> String {
        if self.is_monthly() {
            utc_month_label(utc_month(day))
        } else {
            utc_date(day)
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The budgets one admission is held to, in nano-dollars; `None` is no such budget. The
/// consumer's daily budget always applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budgets {
    pub consumer_daily: u64,
    pub consumer_monthly: Option<u64>,
    pub team_daily: Option<u64>,
    pub team_monthly: Option<u64>,
}

impl Budgets {
    /// A consumer's budgets, and its team's when `teams:` lists its team.
    pub fn of(consumer: &Consumer) -> Budgets {
        let nanos = |micros: u64| micros.saturating_mul(1_000);
        let team = consumer.team_limits.as_deref();
        Budgets {
            consumer_daily: nanos(consumer.daily_budget_micros),
            consumer_monthly: consumer.monthly_budget_micros.map(nanos),
            team_daily: team.and_then(|t| t.daily_budget_micros).map(nanos),
            team_monthly: team.and_then(|t| t.monthly_budget_micros).map(nanos),
        }
    }

    /// Only the consumer's daily budget.
    pub fn daily(consumer_daily: u64) -> Budgets {
        Budgets {
            consumer_daily,
            ..Budgets::default()
        }
    }

    pub fn get(&self, scope: Scope) -> Option<u64> {
        match scope {
            Scope::ConsumerDaily => Some(self.consumer_daily),
            Scope::ConsumerMonthly => self.consumer_monthly,
            Scope::TeamDaily => self.team_daily,
            Scope::TeamMonthly => self.team_monthly,
        }
    }

    /// Whether a team budget applies (the team's spend is then reserved and settled too).
    pub fn has_team(&self) -> bool {
        self.team_daily.is_some() || self.team_monthly.is_some()
    }
}

/// One period's money: settled, and reserved by requests still running.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// The day or month number it counts.
    pub period: u64,
    pub spent: u64,
    pub reserved: u64,
}

impl Tally {
    /// Brings the tally to `period`: a new period starts with nothing spent. Reservations are
    /// kept: requests still running hold them until they settle (against their own period).
    pub fn roll(&mut self, period: u64) {
        if self.period != period {
            self.period = period;
            self.spent = 0;
        }
    }

    /// Whether `cost` more fits `budget` (spent + reserved + cost ≤ budget).
    pub fn fits(&self, cost: u64, budget: u64) -> bool {
        self.spent
            .saturating_add(self.reserved)
            .saturating_add(cost)
            <= budget
    }

    pub fn standing(&self, budget: u64) -> Standing {
        Standing {
            spent: self.spent,
            reserved: self.reserved,
            budget,
        }
    }

    /// Takes back `reserved` and, when the reservation was made in this tally's period, adds
    /// `cost`; returns the spent total before and after.
    pub fn settle(&mut self, reserved: u64, cost: u64, period: u64) -> (u64, u64) {
        let before = self.spent;
        self.reserved = self.reserved.saturating_sub(reserved);
        if period == self.period {
            self.spent = self.spent.saturating_add(cost);
        }
        (before, self.spent)
    }
}

/// Where a budget stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub spent: u64,
    pub reserved: u64,
    pub budget: u64,
}

/// Warn from this share of the consumer's daily budget on (percent).
pub const WARN_PERCENT: u64 = 80;

impl Standing {
    /// At or above the warning threshold of what is already spent today (the seed's rule;
    /// reservations of requests still running do not count).
    pub fn warn(&self) -> bool {
        self.budget > 0
            && u128::from(self.spent) * 100 >= u128::from(self.budget) * u128::from(WARN_PERCENT)
    }

    /// Spent, as a whole percentage of the budget.
    pub fn percent_used(&self) -> u64 {
        if self.budget == 0 {
            return 100;
        }
        (u128::from(self.spent) * 100 / u128::from(self.budget)) as u64
    }
}

/// The request's worst case does not fit in what is left of the `scope` budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    pub scope: Scope,
    pub standing: Standing,
    pub needed: u64,
}

/// What one settlement did to the settled spend of each budget it counted against: before and
/// after, by [`Scope::ALL`]'s order (equal when it did not count there).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moves([(u64, u64); 4]);

impl Moves {
    pub fn set(&mut self, scope: Scope, before: u64, after: u64) {
        self.0[scope.index()] = (before, after);
    }

    pub fn get(&self, scope: Scope) -> (u64, u64) {
        self.0[scope.index()]
    }
}

/// The thresholds (percent of `budget`) that settled spend crossed going from `before` to
/// `after`: those with `before < mark ≤ after`, where the mark is the threshold's share of the
/// budget rounded up. Spend only grows within a period, so each is crossed once per period.
pub fn crossed(
    thresholds: &[u64],
    budget: u64,
    before: u64,
    after: u64,
) -> impl Iterator<Item = u64> + '_ {
    thresholds.iter().copied().filter(move |t| {
        if budget == 0 || after <= before {
            return false;
        }
        let mark = (u128::from(budget) * u128::from(*t)).div_ceil(100);
        u128::from(before) < mark && mark <= u128::from(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threshold_is_crossed_by_the_settlement_that_reaches_its_mark() {
        let t = [50, 80, 100];
        let all = |b, a| crossed(&t, 1_000, b, a).collect::<Vec<_>>();
        assert_eq!(all(0, 499), Vec::<u64>::new());
        assert_eq!(all(499, 500), vec![50]);
        assert_eq!(all(500, 900), vec![80], "50 was crossed before");
        assert_eq!(
            all(0, 1_000),
            vec![50, 80, 100],
            "one settlement may cross several"
        );
        assert_eq!(all(1_000, 2_000), Vec::<u64>::new());
        assert_eq!(
            crossed(&t, 0, 0, 5).count(),
            0,
            "a zero budget never alerts"
        );
        assert_eq!(
            crossed(&[33], 10, 3, 4).collect::<Vec<_>>(),
            vec![33],
            "marks round up: 33 % of 10 is reached at 4"
        );
    }

    #[test]
    fn periods_end_where_their_retry_after_says() {
        let now = 20_000 * 86_400 + 3_600;
        assert_eq!(Scope::TeamDaily.retry_after(now), 86_400 - 3_600);
        assert!(Scope::ConsumerMonthly.retry_after(now) >= Scope::TeamDaily.retry_after(now));
        assert_eq!(Scope::TeamMonthly.period_label(20_000), "2024-10");
        assert_eq!(Scope::ConsumerDaily.period_label(20_000), "2024-10-04");
    }

    #[test]
    fn a_settlement_from_an_earlier_period_gives_back_its_reservation_only() {
        let mut t = Tally {
            period: 7,
            spent: 10,
            reserved: 5,
        };
        assert_eq!(t.settle(5, 3, 6), (10, 10));
        assert_eq!(t.reserved, 0);
        assert_eq!(t.settle(0, 3, 7), (10, 13));
    }
}
