//! The spend report: the ledger summed over a range of UTC days, grouped by consumer, team,
//! model, day or key (`GET /spend`, `tollgate spend`).
//!
//! Input: the first and last UTC day (inclusive) and the grouping. The range is matched against
//! the day each request's cost counts on — the day it was admitted, as the budgets count — so a
//! day's total equals that day's spend in `/costs`, also for a request that settled after
//! midnight. Output: one line per group with its requests, tokens by type and cost (integers:
//! nano-dollars), and the total.

use super::store::{int, unsigned, Store, StoreError};
use super::utc_date;
use rusqlite::Connection;

/// What the report's lines are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Consumer,
    Team,
    Model,
    Day,
    Key,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<GroupBy> {
        Some(match s {
            "consumer" => GroupBy::Consumer,
            "team" => GroupBy::Team,
            "model" => GroupBy::Model,
            "day" => GroupBy::Day,
            "key" => GroupBy::Key,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Consumer => "consumer",
            GroupBy::Team => "team",
            GroupBy::Model => "model",
            GroupBy::Day => "day",
            GroupBy::Key => "key",
        }
    }

    /// The ledger column (fixed names only: never text from the request).
    fn column(self) -> &'static str {
        match self {
            GroupBy::Consumer => "consumer",
            GroupBy::Team => "team",
            GroupBy::Model => "model",
            GroupBy::Day => "day",
            GroupBy::Key => "key_id",
        }
    }
}

/// One group's sums.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpendLine {
    /// The consumer, team, model, key id, or the day as `YYYY-MM-DD`.
    pub group: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_nanos: u64,
    /// Requests settled on an estimate.
    pub estimated: u64,
}

impl SpendLine {
    fn add(&mut self, o: &SpendLine) {
        self.requests = self.requests.saturating_add(o.requests);
        self.input_tokens = self.input_tokens.saturating_add(o.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(o.output_tokens);
        self.cached_tokens = self.cached_tokens.saturating_add(o.cached_tokens);
        self.cache_write_tokens = self.cache_write_tokens.saturating_add(o.cache_write_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(o.reasoning_tokens);
        self.cost_nanos = self.cost_nanos.saturating_add(o.cost_nanos);
        self.estimated = self.estimated.saturating_add(o.estimated);
    }
}

/// The report: its lines in group order and their total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendReport {
    pub from_day: u64,
    pub to_day: u64,
    pub group_by: GroupBy,
    pub lines: Vec<SpendLine>,
    pub total: SpendLine,
}

impl Store {
    /// Sums the ledger over days `from_day..=to_day`, grouped by `group_by`.
    pub async fn spend_report(
        &self,
        from_day: u64,
        to_day: u64,
        group_by: GroupBy,
    ) -> Result<SpendReport, StoreError> {
        let lines = self
            .read(move |c| query(c, from_day, to_day, group_by))
            .await?;
        let mut total = SpendLine {
            group: "total".into(),
            ..SpendLine::default()
        };
        for l in &lines {
            total.add(l);
        }
        Ok(SpendReport {
            from_day,
            to_day,
            group_by,
            lines,
            total,
        })
    }
}

fn query(
    c: &Connection,
    from_day: u64,
    to_day: u64,
    group_by: GroupBy,
) -> rusqlite::Result<Vec<SpendLine>> {
    let sql = format!(
        "SELECT {col}, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens),
                SUM(cache_write_tokens), SUM(reasoning_tokens), SUM(cost_nanos), SUM(estimated)
         FROM ledger WHERE day >= ?1 AND day <= ?2 GROUP BY {col} ORDER BY {col}",
        col = group_by.column()
    );
    let mut q = c.prepare(&sql)?;
    let rows = q.query_map([int(from_day), int(to_day)], |r| {
        let group = match group_by {
            GroupBy::Day => utc_date(unsigned(r.get(0)?)),
            _ => r.get(0)?,
        };
        let n = |i: usize| -> rusqlite::Result<u64> { Ok(unsigned(r.get(i)?)) };
        Ok(SpendLine {
            group,
            requests: n(1)?,
            input_tokens: n(2)?,
            output_tokens: n(3)?,
            cached_tokens: n(4)?,
            cache_write_tokens: n(5)?,
            reasoning_tokens: n(6)?,
            cost_nanos: n(7)?,
            estimated: n(8)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::store::{Durability, LedgerRow};
    use crate::usage::Usage;

    fn row(consumer: &str, team: &str, model: &str, day: u64, cost: u64) -> LedgerRow {
        LedgerRow {
            at: day * 86_400 + 60,
            day,
            request_id: "r".into(),
            consumer: consumer.into(),
            team: team.into(),
            key_id: format!("key-{consumer}"),
            model: model.into(),
            backend: "b".into(),
            usage: Usage {
                input: 10,
                output: 4,
                cached: 2,
                ..Usage::default()
            },
            cost_nanos: cost,
            status: 200,
            outcome: "ok",
        }
    }

    #[tokio::test]
    async fn the_ledger_sums_by_every_grouping_over_the_days_asked() {
        let dir = std::env::temp_dir().join(format!(
            "tollgate-spend-report-{}-{}",
            std::process::id(),
            crate::state::unix_now()
        ));
        let s = Store::open(&dir.join("t.db"), Durability::Process, true).unwrap();
        for r in [
            row("a", "red", "m1", 100, 5),
            row("a", "red", "m2", 101, 7),
            row("b", "red", "m1", 101, 11),
            row("c", "blue", "m1", 101, 13),
            row("c", "blue", "m1", 102, 17),
        ] {
            s.record(r).await.unwrap();
        }
        let by_team = s.spend_report(101, 101, GroupBy::Team).await.unwrap();
        let teams: Vec<(&str, u64, u64)> = by_team
            .lines
            .iter()
            .map(|l| (l.group.as_str(), l.requests, l.cost_nanos))
            .collect();
        assert_eq!(teams, [("blue", 1, 13), ("red", 2, 18)]);
        assert_eq!(by_team.total.cost_nanos, 31);
        assert_eq!(by_team.total.input_tokens, 30);
        assert_eq!(by_team.total.cached_tokens, 6);
        let by_day = s.spend_report(100, 102, GroupBy::Day).await.unwrap();
        let days: Vec<&str> = by_day.lines.iter().map(|l| l.group.as_str()).collect();
        assert_eq!(days, ["1970-04-11", "1970-04-12", "1970-04-13"]);
        assert_eq!(by_day.total.cost_nanos, 53);
        let by_key = s.spend_report(0, 200, GroupBy::Key).await.unwrap();
        assert_eq!(by_key.lines[0].group, "key-a");
        assert_eq!(by_key.lines[0].cost_nanos, 12);
        let by_model = s.spend_report(102, 102, GroupBy::Model).await.unwrap();
        assert_eq!(by_model.lines.len(), 1);
        assert!(s
            .spend_report(300, 400, GroupBy::Consumer)
            .await
            .unwrap()
            .lines
            .is_empty());
    }

    #[test]
    fn groupings_parse_from_their_names_only() {
        for g in ["consumer", "team", "model", "day", "key"] {
            assert_eq!(GroupBy::parse(g).map(GroupBy::as_str), Some(g));
        }
        assert_eq!(GroupBy::parse("consumer; DROP TABLE ledger"), None);
    }
}
