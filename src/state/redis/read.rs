//! Reading where consumers and teams stand, for `/costs`: one `MGET` each, never on a
//! request's path.

use super::held::{TeamToday, Today, Unavailable};
use super::RedisStore;
use crate::state::limits::WINDOWS;
use crate::state::{utc_day, utc_month};

impl RedisStore {
    /// Where each consumer stands now, as every instance sees it, in one round trip: spent and
    /// committed (spent + reserved) today and this month, and the tokens used in the current
    /// minute, hour and day.
    pub async fn standing_now(
        &self,
        consumers: &[&str],
        now: u64,
    ) -> Result<Vec<Today>, Unavailable> {
        if consumers.is_empty() {
            return Ok(Vec::new());
        }
        let ids = WINDOWS.map(|w| w.id(now));
        let day = utc_day(now);
        let month = utc_month(day);
        let keys: Vec<String> = consumers
            .iter()
            .flat_map(|c| {
                let p = self.consumer_prefix(c);
                let [m, h, d] = RedisStore::window_keys(&p, ids);
                [
                    format!("{p}b:{day}"),
                    format!("{p}s:{day}"),
                    m,
                    h,
                    d,
                    format!("{p}bm:{month}"),
                    format!("{p}sm:{month}"),
                ]
            })
            .collect();
        let values = self.mget(keys).await?;
        Ok(values
            .chunks(7)
            .map(|v| {
                let at = |i: usize| v.get(i).copied().flatten().unwrap_or(0);
                Today {
                    committed: at(0),
                    spent: at(1),
                    tokens: [at(2), at(3), at(4)],
                    month_committed: at(5),
                    month_spent: at(6),
                }
            })
            .collect())
    }

    /// Where each team stands today and this month, as every instance sees it (one round
    /// trip).
    pub async fn teams_now(&self, teams: &[&str], now: u64) -> Result<Vec<TeamToday>, Unavailable> {
        if teams.is_empty() {
            return Ok(Vec::new());
        }
        let day = utc_day(now);
        let month = utc_month(day);
        let keys: Vec<String> = teams
            .iter()
            .flat_map(|t| {
                let p = self.team_prefix(t);
                [
                    format!("{p}b:{day}"),
                    format!("{p}s:{day}"),
                    format!("{p}bm:{month}"),
                    format!("{p}sm:{month}"),
                ]
            })
            .collect();
        let values = self.mget(keys).await?;
        Ok(values
            .chunks(4)
            .map(|v| {
                let at = |i: usize| v.get(i).copied().flatten().unwrap_or(0);
                TeamToday {
                    committed: at(0),
                    spent: at(1),
                    month_committed: at(2),
                    month_spent: at(3),
                }
            })
            .collect())
    }

    async fn mget(&self, keys: Vec<String>) -> Result<Vec<Option<u64>>, Unavailable> {
        self.call("read_spend", |mut conn| async move {
            redis::cmd("MGET").arg(&keys).query_async(&mut conn).await
        })
        .await
    }
}
