//! `GET /v1/events`'s parameters from its query string ([`ListParams::parse`]): the page, one of
//! `type` or `types[]` (at most [`MAX_TYPES`], overlaps dropped) and the `created` bounds, each a
//! typed value or a 400 naming its parameter.

use std::collections::BTreeSet;

use crate::error::{ApiError, Code, shorten};
use crate::http::params::{Params, exclusive, parse_time};
use crate::model::event_type::TypeSelector;
use crate::model::ids::{EventId, Timestamp};
use crate::model::list::{CreatedRange, ListParams, PageQuery};

pub const MAX_TYPES: usize = 20;

const CREATED_KEYS: [&str; 5] = ["created", "created[gte]", "created[gt]", "created[lte]", "created[lt]"];

impl ListParams {
    /// Parses a raw query string (`limit=3&types[]=payment.*&created[gte]=…`).
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let mut params = Params::from_query(query)?;
        let list = Self::take(&mut params)?;
        params.done()?;
        Ok(list)
    }

    /// Takes the list's parameters out of `p`.
    pub fn take(p: &mut Params) -> Result<Self, ApiError> {
        let PageQuery { limit, cursor } = p.page::<EventId>("an event id (evt_…)")?;
        let selectors = match (p.string("type")?, p.list("types")?) {
            (Some(_), Some(_)) => return Err(exclusive("types", &["type", "types"])),
            (Some(t), None) => vec![parse_selector("type", &t)?],
            (None, Some(types)) => {
                if types.len() > MAX_TYPES {
                    return Err(ApiError::invalid(
                        Code::ParameterInvalid,
                        "types",
                        format!("You may pass at most {MAX_TYPES} types; {} were given.", types.len()),
                    ));
                }
                types.iter().map(|t| parse_selector("types", t)).collect::<Result<_, _>>()?
            }
            (None, None) => vec![],
        };
        let mut created = [None; 5];
        for (slot, key) in created.iter_mut().zip(CREATED_KEYS) {
            *slot = p.string(key)?.map(|v| parse_time(key, &v).map(Timestamp::unix_seconds)).transpose()?;
        }
        Ok(ListParams { limit, cursor, types: normalize(selectors), created: created_range(created)? })
    }
}

fn parse_selector(param: &str, v: &str) -> Result<TypeSelector, ApiError> {
    v.parse().map_err(|_| {
        ApiError::invalid(
            Code::ParameterInvalid,
            param,
            format!("Invalid {param}: '{}' is not an event type or a family wildcard such as payment.*", shorten(v)),
        )
    })
}

/// Drops selectors that another selector already covers, and duplicates; keeps a stable order.
fn normalize(selectors: Vec<TypeSelector>) -> Vec<TypeSelector> {
    let families: BTreeSet<_> = selectors
        .iter()
        .filter_map(|s| match s {
            TypeSelector::Family(f) => Some(*f),
            TypeSelector::Exact(_) => None,
        })
        .collect();
    let kept: BTreeSet<TypeSelector> = selectors
        .into_iter()
        .filter(|s| match s {
            TypeSelector::Exact(t) => !families.contains(&t.family()),
            TypeSelector::Family(_) => true,
        })
        .collect();
    kept.into_iter().collect()
}

/// `created`, `created[gte]`, `created[gt]`, `created[lte]`, `created[lt]` → inclusive bounds.
fn created_range([exact, gte, gt, lte, lt]: [Option<u64>; 5]) -> Result<CreatedRange, ApiError> {
    // The user's own lower bounds must not exceed their upper bounds.
    let lowers = [exact, gte, gt].into_iter().flatten();
    let uppers: Vec<u64> = [exact, lte, lt].into_iter().flatten().collect();
    for lo in lowers {
        if uppers.iter().any(|&hi| lo > hi) {
            return Err(ApiError::invalid(Code::ParameterInvalid, "created", "Invalid created range: the lower bound is after the upper bound."));
        }
    }
    if lt == Some(0) {
        // Nothing is older than the epoch: an upper bound below any lower bound.
        return Ok(CreatedRange { gte: Some(1), lte: Some(0) });
    }
    let gte = [exact, gte, gt.map(|v| v.saturating_add(1))].into_iter().flatten().max();
    let lte = [exact, lte, lt.map(|v| v - 1)].into_iter().flatten().min();
    Ok(CreatedRange { gte, lte })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event_type::{EventType, Family};
    use crate::model::list::Cursor;

    fn err(q: &str) -> (String, String) {
        let e = ListParams::parse(q).unwrap_err();
        assert_eq!(e.status(), 400, "{q}");
        let b = e.body();
        (b["error"]["code"].as_str().unwrap().to_owned(), b["error"]["param"].as_str().unwrap().to_owned())
    }

    #[test]
    fn defaults() {
        let p = ListParams::parse("").unwrap();
        assert_eq!(p.limit.get(), 10);
        assert_eq!(p, ListParams::default());
    }

    #[test]
    fn parses_every_parameter() {
        let id = EventId::generate();
        let p = ListParams::parse(&format!("limit=100&starting_after={id}&type=payment.succeeded&created[gte]=1700000000&created[lte]=2024-01-15T10:30:00.9Z"))
            .unwrap();
        assert_eq!(p.limit.get(), 100);
        assert_eq!(p.cursor, Some(Cursor::StartingAfter(id)));
        assert_eq!(p.types, vec![TypeSelector::Exact(EventType::PaymentSucceeded)]);
        assert_eq!(p.created, CreatedRange { gte: Some(1_700_000_000), lte: Some(1_705_314_600) });
        let p = ListParams::parse("types[]=payment.*&types[]=payment.failed&types%5B1%5D=refund.failed&types[2]=payment.*").unwrap();
        assert_eq!(
            p.types,
            vec![TypeSelector::Exact(EventType::RefundFailed), TypeSelector::Family(Family::Payment)]
                .into_iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        );
        let p = ListParams::parse("created[gt]=10&created[lt]=20").unwrap();
        assert_eq!(p.created, CreatedRange { gte: Some(11), lte: Some(19) });
        let p = ListParams::parse("created=10").unwrap();
        assert_eq!(p.created, CreatedRange { gte: Some(10), lte: Some(10) });
    }

    #[test]
    fn every_bad_input_is_a_400_naming_its_parameter() {
        let id = EventId::generate();
        assert_eq!(err("limit=abc"), ("parameter_invalid_integer".into(), "limit".into()));
        assert_eq!(err("limit=0"), ("parameter_invalid_integer".into(), "limit".into()));
        assert_eq!(err("limit=101"), ("parameter_invalid_integer".into(), "limit".into()));
        assert_eq!(err("limit=-1"), ("parameter_invalid_integer".into(), "limit".into()));
        assert_eq!(err("limit=1.5"), ("parameter_invalid_integer".into(), "limit".into()));
        assert_eq!(err("limit="), ("parameter_invalid_integer".into(), "limit".into()));
        assert_eq!(err(&format!("starting_after={id}&ending_before={id}")).0, "parameters_exclusive");
        assert_eq!(err("starting_after=evt_nope"), ("resource_missing".into(), "starting_after".into()));
        assert_eq!(err("ending_before=pay_123"), ("resource_missing".into(), "ending_before".into()));
        assert_eq!(err("type=payment.exploded"), ("parameter_invalid".into(), "type".into()));
        assert_eq!(err("type=*"), ("parameter_invalid".into(), "type".into()));
        assert_eq!(err("types[]=nope"), ("parameter_invalid".into(), "types".into()));
        assert_eq!(err("type=payment.failed&types[]=payment.created"), ("parameters_exclusive".into(), "types".into()));
        let many: Vec<String> = EventType::ALL.iter().take(21).map(|t| format!("types[]={t}")).collect();
        assert_eq!(err(&many.join("&")), ("parameter_invalid".into(), "types".into()));
        assert_eq!(err("created[gte]=yesterday"), ("parameter_invalid".into(), "created[gte]".into()));
        assert_eq!(err("created[gte]=20&created[lte]=10"), ("parameter_invalid".into(), "created".into()));
        assert_eq!(err("created[gt]=-5"), ("parameter_invalid".into(), "created[gt]".into()));
        assert_eq!(err("expand[]=data"), ("parameter_unknown".into(), "expand[]".into()));
        assert_eq!(err("types[x]=payment.created"), ("parameter_unknown".into(), "types[x]".into()));
        assert_eq!(err("limit=1&limit=2"), ("parameter_duplicated".into(), "limit".into()));
    }
}
