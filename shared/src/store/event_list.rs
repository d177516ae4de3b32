//! `GET /v1/events`'s plan on the Events table: the id range a request allows, then one
//! key-condition Query per source (all, a type, a family) and per key of the account's shard plan,
//! each with `Limit = limit + 1`, merged by id. No Scan, no filter expression: a page reads at most
//! `limit + 1` items per Query, whatever the table's size.

use futures::{StreamExt, TryStreamExt, stream};

use crate::model::event::EventJson;
use crate::model::event_type::TypeSelector;
use crate::model::ids::{EventId, Principal};
use crate::model::list::{Cursor, ListParams, Page};
use crate::store::events::QueryResult;
use crate::store::{EventStore, RangeQuery, Source, StoreError};

/// A page of events, and what reading it cost.
#[derive(Debug)]
pub struct EventPage {
    pub page: Page<EventJson>,
    /// Items DynamoDB read to answer (sum of the Queries' `ScannedCount`).
    pub items_read: u32,
}

/// The last millisecond an event id can carry (ULIDs have 48 bits of time).
const MAX_ID_MS: u64 = (1 << 48) - 1;

/// The inclusive id range a request allows, or `None` when it allows nothing.
fn id_range(p: &ListParams) -> Option<(EventId, EventId)> {
    // Ids hold 48 bits of milliseconds: a lower bound past the last one allows nothing (it must
    // not wrap around to 1970), an upper bound past it allows everything up to it.
    let mut lo = match p.created.gte {
        Some(secs) => EventId::first_at_secs(secs)?,
        None => EventId::first_at_ms(0),
    };
    let mut hi = EventId::last_at_ms(p.created.lte.map_or(MAX_ID_MS, |s| s.saturating_mul(1000).saturating_add(999).min(MAX_ID_MS)));
    match p.cursor {
        Some(Cursor::StartingAfter(id)) => hi = hi.min(id.pred()?),
        Some(Cursor::EndingBefore(id)) => lo = lo.max(id.succ()?),
        None => {}
    }
    (lo <= hi).then_some((lo, hi))
}

async fn query(store: &EventStore, q: RangeQuery) -> Result<QueryResult, StoreError> {
    store.query(&q).await
}

/// Queries of one page in flight at once.
const QUERIES_AT_ONCE: usize = 32;

/// Reads one page: one Query per source (one source unless several types were asked for) and per
/// key of the account's shard plan (one key unless its events are sharded), each with
/// `Limit = limit + 1` and every condition in the key condition, merged by id.
pub async fn list_events(store: &EventStore, principal: &Principal, p: &ListParams) -> Result<EventPage, StoreError> {
    let limit = p.limit.get();
    let Some((lo, hi)) = id_range(p) else {
        return Ok(EventPage { page: Page { data: vec![], has_more: false }, items_read: 0 });
    };
    // `ending_before` reads upwards from the cursor; everything else reads downwards from the newest.
    let ascending = matches!(p.cursor, Some(Cursor::EndingBefore(_)));
    let sources: Vec<Source> = if p.types.is_empty() {
        vec![Source::All]
    } else {
        p.types
            .iter()
            .map(|s| match *s {
                TypeSelector::Exact(t) => Source::Type(t),
                TypeSelector::Family(f) => Source::Family(f),
            })
            .collect()
    };
    // Every key the account's shard plan gives the id range (one, unless its events are sharded).
    let partitions = store.plan(principal).await?.partitions(principal, lo.created_ms(), hi.created_ms());
    let mut queries = Vec::with_capacity(sources.len() * partitions.len());
    for source in sources {
        for partition in &partitions {
            queries.push(RangeQuery { source, partition: partition.clone(), lo, hi, ascending, limit: limit as i32 + 1 });
        }
    }
    let results: Vec<QueryResult> = stream::iter(queries).map(|q| query(store, q)).buffer_unordered(QUERIES_AT_ONCE).try_collect().await?;
    let items_read = results.iter().map(|r| r.items_read).sum();
    let mut events: Vec<EventJson> = results.into_iter().flat_map(|r| r.events).collect();
    if ascending {
        events.sort_by_key(|e| e.id);
    } else {
        events.sort_by_key(|e| std::cmp::Reverse(e.id));
    }
    events.dedup_by_key(|e| e.id);
    let has_more = events.len() > limit;
    events.truncate(limit);
    if ascending {
        events.reverse();
    }
    Ok(EventPage { page: Page { data: events, has_more }, items_read })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_ranges_follow_cursors_and_created_bounds() {
        let p = ListParams::parse("created[gte]=100&created[lte]=100").unwrap();
        let (lo, hi) = id_range(&p).unwrap();
        assert_eq!(lo, EventId::first_at_ms(100_000));
        assert_eq!(hi, EventId::last_at_ms(100_999));
        let c = EventId::first_at_ms(100_500);
        let mut q = p.clone();
        q.cursor = Some(Cursor::StartingAfter(c));
        assert_eq!(id_range(&q).unwrap(), (lo, c.pred().unwrap()));
        q.cursor = Some(Cursor::EndingBefore(c));
        assert_eq!(id_range(&q).unwrap(), (c.succ().unwrap(), hi));
        q.cursor = Some(Cursor::StartingAfter(EventId::first_at_ms(100_000)));
        assert_eq!(id_range(&q), None, "nothing is older than the first id of the range");
        assert_eq!(id_range(&ListParams::parse("created[gt]=10&created[lt]=11").unwrap()), None);
        assert_eq!(id_range(&ListParams::parse("created[lt]=0").unwrap()), None);
    }

    #[test]
    fn lower_bounds_past_the_last_id_time_allow_nothing_rather_than_wrapping_to_1970() {
        let last_second = MAX_ID_MS / 1000;
        for q in [
            format!("created[gte]={}", last_second + 1),
            format!("created={}", last_second + 1),
            format!("created[gt]={last_second}"),
            "created[gte]=18446744073709551615".to_owned(),
        ] {
            assert_eq!(id_range(&ListParams::parse(&q).unwrap()), None, "{q}");
        }
        let (lo, hi) = id_range(&ListParams::parse(&format!("created[gte]={last_second}")).unwrap()).unwrap();
        assert_eq!((lo, hi), (EventId::first_at_ms(last_second * 1000), EventId::last_at_ms(MAX_ID_MS)));
        let (_, hi) = id_range(&ListParams::parse("created[lte]=18446744073709551615").unwrap()).unwrap();
        assert_eq!(hi, EventId::last_at_ms(MAX_ID_MS));
    }
}
