//! A reservation held in Redis ([`Held`]: everything needed to settle or release it, on any
//! attempt, from any instance) and what the store's calls answer.

use super::RESERVATION_TTL;
use crate::config::Team;
use crate::state::budget::{Budgets, Moves, OverBudget, Scope, Standing};
use crate::state::limits::{Headroom, Refusal, TokenTicket, WINDOWS};
use crate::state::spend::SpendTicket;
use crate::state::utc_month;
use std::sync::Arc;

/// Which budgets beside the consumer's day a reservation holds (the member's `scopes`).
const CONSUMER_MONTH: u8 = 1;
const TEAM_DAY: u8 = 2;
const TEAM_MONTH: u8 = 4;

/// A reservation held in Redis: everything needed to settle or release it, on any attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub consumer: String,
    /// The consumer's team when `teams:` lists it (its budgets and request rate apply).
    pub team: Option<Arc<Team>>,
    /// Random, unique per admission.
    pub id: String,
    pub window_ids: [u64; 3],
    pub tokens: u64,
    /// The UTC day it was made on (budgets count in it, and in its month).
    pub day: u64,
    pub cost: u64,
    /// When it expires on its own (Unix seconds).
    pub expires: u64,
    /// The budgets it holds beside the consumer's day ([`CONSUMER_MONTH`], [`TEAM_DAY`],
    /// [`TEAM_MONTH`]).
    scopes: u8,
}

impl Held {
    /// A new reservation of `tokens` and `cost` for `consumer`, made at `now`, against its
    /// daily budget alone.
    pub fn new(consumer: &str, tokens: u64, cost: u64, now: u64) -> Held {
        Held::against(consumer, None, &Budgets::default(), tokens, cost, now)
    }

    /// A new reservation against every budget `budgets` sets (the team's with `team`).
    pub fn against(
        consumer: &str,
        team: Option<&Arc<Team>>,
        budgets: &Budgets,
        tokens: u64,
        cost: u64,
        now: u64,
    ) -> Held {
        let mut id = [0u8; 12];
        let _ = getrandom::getrandom(&mut id);
        let team = team.cloned();
        let on = |scope: Scope, bit: u8| {
            let applies = budgets.get(scope).is_some() && (!scope.is_team() || team.is_some());
            if applies {
                bit
            } else {
                0
            }
        };
        Held {
            consumer: consumer.to_string(),
            id: crate::digest::to_hex(&id),
            window_ids: WINDOWS.map(|w| w.id(now)),
            tokens,
            day: crate::state::utc_day(now),
            cost,
            expires: now.saturating_add(RESERVATION_TTL),
            scopes: on(Scope::ConsumerMonthly, CONSUMER_MONTH)
                | on(Scope::TeamDaily, TEAM_DAY)
                | on(Scope::TeamMonthly, TEAM_MONTH),
            team,
        }
    }

    /// The budgets it holds, in the scripts' order (the consumer's day first).
    pub(super) fn scopes(&self) -> impl Iterator<Item = Scope> + '_ {
        Scope::ALL.into_iter().filter(|s| match s {
            Scope::ConsumerDaily => true,
            Scope::ConsumerMonthly => self.scopes & CONSUMER_MONTH != 0,
            Scope::TeamDaily => self.scopes & TEAM_DAY != 0,
            Scope::TeamMonthly => self.scopes & TEAM_MONTH != 0,
        })
    }

    pub(super) fn month(&self) -> u64 {
        utc_month(self.day)
    }

    /// Its member of the consumer's reservations set.
    pub(super) fn member(&self) -> String {
        let [m, h, d] = self.window_ids;
        let team = self.team.as_deref().map_or("", |t| t.name.as_str());
        format!(
            "{}|{}|{m}|{h}|{d}|{}|{}|{}|{}|{team}",
            self.id,
            self.tokens,
            self.day,
            self.cost,
            self.month(),
            self.scopes
        )
    }
}

/// What an admission holds and reports.
#[derive(Debug)]
pub struct Admission {
    pub tokens: TokenTicket,
    pub headroom: Headroom,
    pub spend: SpendTicket,
    pub standing: Standing,
}

/// A consumer's standing today, as Redis holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Today {
    /// Nano-dollars spent today.
    pub spent: u64,
    /// Spent plus reserved.
    pub committed: u64,
    /// Tokens used (settled plus reserved) in the current minute, hour and day.
    pub tokens: [u64; 3],
    /// Spent and committed this month (counted only while the consumer has a monthly budget).
    pub month_spent: u64,
    pub month_committed: u64,
}

/// A team's standing today and this month, as Redis holds it (each counted only while the
/// team has that budget).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TeamToday {
    pub spent: u64,
    pub committed: u64,
    pub month_spent: u64,
    pub month_committed: u64,
}

/// What a settlement did: the windows' use after it, and how each budget's spent moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    pub used: [u64; 3],
    pub moves: Moves,
}

/// Why an admission was refused.
#[derive(Debug)]
pub enum Refused {
    Tokens(Refusal),
    Budget(OverBudget),
}

/// Redis could not be asked (unreachable, too slow, or an error reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);
