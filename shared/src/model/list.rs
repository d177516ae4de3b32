//! Lists, Stripe's way: a page size, one cursor, `has_more`; and `GET /v1/events`'s typed
//! parameters. Parsing them from a query string is `http::list_params` (its grammar
//! `http::params`); the Queries a page takes are `store::event_list`.

use crate::model::event_type::TypeSelector;
use crate::model::ids::EventId;

pub const DEFAULT_LIMIT: u8 = 10;
pub const MAX_LIMIT: u8 = 100;

/// Page size, 1–100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u8);

impl Limit {
    pub fn new(n: u8) -> Option<Self> {
        (1..=MAX_LIMIT).contains(&n).then_some(Limit(n))
    }
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl Default for Limit {
    fn default() -> Self {
        Limit(DEFAULT_LIMIT)
    }
}

/// Where a page starts, by the id of an object of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor<Id = EventId> {
    /// The page of objects older than this one.
    StartingAfter(Id),
    /// The page of objects immediately newer than this one (still returned newest first).
    EndingBefore(Id),
}

/// `limit` and the cursor of any list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageQuery<Id> {
    pub limit: Limit,
    pub cursor: Option<Cursor<Id>>,
}

impl<Id> Default for PageQuery<Id> {
    fn default() -> Self {
        PageQuery { limit: Limit::default(), cursor: None }
    }
}

/// One page of a list, newest first.
#[derive(Debug)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> Page<T> {
    /// The page `query` asks for of a whole list held in memory, newest (largest id) first.
    pub fn of<Id: Ord>(all: Vec<T>, id: impl Fn(&T) -> &Id, query: &PageQuery<Id>) -> Page<T> {
        let limit = query.limit.get();
        match &query.cursor {
            Some(Cursor::StartingAfter(a)) => {
                let mut rest: Vec<T> = all.into_iter().filter(|e| id(e) < a).collect();
                let has_more = rest.len() > limit;
                rest.truncate(limit);
                Page { data: rest, has_more }
            }
            Some(Cursor::EndingBefore(b)) => {
                let mut newer: Vec<T> = all.into_iter().filter(|e| id(e) > b).collect();
                let start = newer.len().saturating_sub(limit);
                Page { data: newer.split_off(start), has_more: start > 0 }
            }
            None => {
                let has_more = all.len() > limit;
                Page { data: all.into_iter().take(limit).collect(), has_more }
            }
        }
    }
}

/// Inclusive bounds on `created_at`, in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreatedRange {
    pub gte: Option<u64>,
    pub lte: Option<u64>,
}

/// `GET /v1/events`'s parameters, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListParams {
    pub limit: Limit,
    pub cursor: Option<Cursor>,
    /// Empty: every type. Otherwise the union of these selectors (already free of overlaps).
    pub types: Vec<TypeSelector>,
    pub created: CreatedRange,
}
