//! The write and read units DynamoDB reports for every request of a client: an SDK interceptor
//! that asks each request for `ReturnConsumedCapacity=INDEXES` and files the answer under the
//! current phase, per table and per index, with the partition keys the request named (so that the
//! units of the Deliveries table's per-endpoint items are told from its per-event ones).
//!
//! Installed on a benchmark stack's client only ([`Recorder::install`]): the Lambdas never carry it.
//!
//! DynamoDB Local under-reports transactions: per table (and index) it reports twice the sum of the
//! *distinct* per-item unit values, so ten 1 KB puts in one `TransactWriteItems` report 2 units,
//! not 20 (a single put, a batch write and a batch get report exactly; probed on DynamoDB Local
//! 3.x). The recorder corrects a transaction ([`transaction_units`]): a put's item is in the request,
//! so its units are computed from its size; the updates' one unknown size class is what the
//! report leaves over once the puts' distinct classes are taken out; each item counts once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The partition keys a request named, by table.
type TableKeys = HashMap<String, Vec<String>>;
/// The items a transaction wrote or read, by table: sort key, and the item's size class if known.
type TableItems = HashMap<String, Vec<(String, Option<u32>)>>;

use aws_sdk_dynamodb::config::interceptors::{AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::{
    batch_get_item::{BatchGetItemInput, BatchGetItemOutput},
    batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput},
    delete_item::{DeleteItemInput, DeleteItemOutput},
    get_item::{GetItemInput, GetItemOutput},
    put_item::{PutItemInput, PutItemOutput},
    query::{QueryInput, QueryOutput},
    transact_get_items::{TransactGetItemsInput, TransactGetItemsOutput},
    transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput},
    update_item::{UpdateItemInput, UpdateItemOutput},
};
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::client::interceptors::context::{Input, Output};
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use paygate_cli::stack::Stack;

/// One request's units: a table's own, or one of its indexes'.
#[derive(Debug, Clone, PartialEq)]
pub struct Units {
    pub phase: String,
    pub operation: &'static str,
    /// Physical table name.
    pub table: String,
    pub index: Option<String>,
    pub write: bool,
    pub units: f64,
    /// The partition keys (`pk`) of the table's items that the request named, when it named them
    /// (not for a Query); a table's units are shared equally between them.
    pub keys: Vec<String>,
}

/// What the recorder saw, shared with the interceptor.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    phase: String,
    units: Vec<Units>,
}

/// The request's operation and the keys it named per table, from before it was sent to after.
#[derive(Debug, Clone)]
struct Named {
    operation: &'static str,
    write: bool,
    keys: HashMap<String, Vec<String>>,
    /// For a transaction: each of its items, per table: its sort key (or "") and, for a put, its
    /// size in 1 KB write units.
    items: HashMap<String, Vec<(String, Option<u32>)>>,
}

impl Storable for Named {
    type Storer = StoreReplace<Self>;
}

fn pk(item: &HashMap<String, AttributeValue>) -> Option<String> {
    item.get("pk").and_then(|v| v.as_s().ok()).cloned()
}

/// The sort key (`sk`, else `id`), or "".
fn sk(item: &HashMap<String, AttributeValue>) -> String {
    item.get("sk").or_else(|| item.get("id")).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default()
}

/// An attribute value's size as DynamoDB counts it (approximately, for numbers).
fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value_size(v) + 1).sum::<usize>(),
        AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        _ => 0,
    }
}

/// An item's write units outside a transaction: its size in whole KB, at least 1.
fn write_units(item: &HashMap<String, AttributeValue>) -> u32 {
    let size: usize = item.iter().map(|(k, v)| k.len() + value_size(v)).sum();
    u32::try_from(size.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

/// The units a transaction really took on a table or index, from what DynamoDB Local reported
/// (`reported` = 2 × the sum of the distinct per-item values) and the items that touch it: the
/// puts' units known, every other item of the one class the report leaves over (at least 1).
/// Index entries of a put are taken as its item's size for `ALL` projections, 1 unit otherwise.
pub fn transaction_units(reported: f64, index: Option<&str>, items: &[(String, Option<u32>)]) -> f64 {
    let touching: Vec<Option<u32>> = items
        .iter()
        .filter(|(sk, _)| touches(index, sk))
        .map(|(_, units)| if matches!(index, Some("ByEndpoint" | "ByFailed")) { units.map(|_| 1) } else { *units })
        .collect();
    if touching.is_empty() || reported <= 0.0 {
        return reported;
    }
    let mut distinct: Vec<u32> = touching.iter().flatten().copied().collect();
    let known: u32 = distinct.iter().sum();
    distinct.sort_unstable();
    distinct.dedup();
    let others = touching.iter().filter(|u| u.is_none()).count() as f64;
    let other_class = (reported / 2.0 - f64::from(distinct.iter().sum::<u32>())).max(1.0);
    2.0 * (f64::from(known) + others * other_class)
}

/// Whether an item with this sort key has an entry in `index` (or, with `None`, is in its table):
/// delivery states (`…#state`) in `ByDue` and `ByFailed`, attempts (`…#attempt#…`) in
/// `ByEndpoint`, and every item of any other index.
pub fn touches(index: Option<&str>, sk: &str) -> bool {
    match index {
        Some("ByDue" | "ByFailed") => sk.ends_with("#state"),
        Some("ByEndpoint") => sk.contains("#attempt#"),
        _ => true,
    }
}

impl Recorder {
    /// Makes the stack's DynamoDB client report and record its units. Stores built afterwards share it.
    pub fn install(stack: &mut Stack) -> Recorder {
        let recorder = Recorder::default();
        crate::intercept(stack, recorder.clone());
        recorder
    }

    /// Files what follows under `phase`.
    pub fn phase(&self, phase: &str) {
        self.0.lock().expect("recorder lock").phase = phase.to_owned();
    }

    /// Everything recorded so far, and nothing again.
    pub fn take(&self) -> Vec<Units> {
        std::mem::take(&mut self.0.lock().expect("recorder lock").units)
    }
}

/// Sets `ReturnConsumedCapacity=INDEXES` on the input if it is of one of the types listed, and
/// returns what it names.
macro_rules! ask {
    ($input:expr, $( $ty:ty => $op:literal, $write:literal, |$i:ident| $keys:expr );* $(;)?) => {{
        $(
            if let Some($i) = $input.downcast_mut::<$ty>() {
                $i.return_consumed_capacity = Some(ReturnConsumedCapacity::Indexes);
                let (keys, items): (HashMap<String, Vec<String>>, HashMap<String, Vec<(String, Option<u32>)>>) = $keys;
                return Some(Named { operation: $op, write: $write, keys, items });
            }
        )*
        None
    }};
}

fn one(table: &Option<String>, key: Option<String>) -> HashMap<String, Vec<String>> {
    table.iter().map(|t| (t.clone(), key.iter().cloned().collect())).collect()
}

fn name(input: &mut Input) -> Option<Named> {
    ask!(input,
        PutItemInput => "PutItem", true, |i| (one(&i.table_name, i.item.as_ref().and_then(pk)), HashMap::new());
        UpdateItemInput => "UpdateItem", true, |i| (one(&i.table_name, i.key.as_ref().and_then(pk)), HashMap::new());
        DeleteItemInput => "DeleteItem", true, |i| (one(&i.table_name, i.key.as_ref().and_then(pk)), HashMap::new());
        GetItemInput => "GetItem", false, |i| (one(&i.table_name, i.key.as_ref().and_then(pk)), HashMap::new());
        QueryInput => "Query", false, |i| (one(&i.table_name, None), HashMap::new());
        BatchGetItemInput => "BatchGetItem", false, |i| (i.request_items.iter().flatten()
            .map(|(t, k)| (t.clone(), k.keys().iter().filter_map(pk).collect())).collect(), HashMap::new());
        BatchWriteItemInput => "BatchWriteItem", true, |i| (i.request_items.iter().flatten()
            .map(|(t, w)| (t.clone(), w.iter().filter_map(|r| r.put_request().map(|p| p.item()).or(r.delete_request().map(|d| d.key())).and_then(pk)).collect())).collect(), HashMap::new());
        TransactGetItemsInput => "TransactGetItems", false, |i| {
            let (mut keys, mut items): (TableKeys, TableItems) = Default::default();
            for g in i.transact_items.iter().flatten().filter_map(|t| t.get()) {
                keys.entry(g.table_name().to_owned()).or_default().extend(pk(g.key()));
                items.entry(g.table_name().to_owned()).or_default().push((sk(g.key()), None));
            }
            (keys, items)
        };
        TransactWriteItemsInput => "TransactWriteItems", true, |i| {
            let (mut keys, mut items): (TableKeys, TableItems) = Default::default();
            for t in i.transact_items.iter().flatten() {
                let named = [
                    t.put().map(|p| (p.table_name(), p.item(), Some(write_units(p.item())))),
                    t.update().map(|u| (u.table_name(), u.key(), None)),
                    t.delete().map(|d| (d.table_name(), d.key(), None)),
                    t.condition_check().map(|c| (c.table_name(), c.key(), None)),
                ];
                for (table, key, units) in named.into_iter().flatten() {
                    keys.entry(table.to_owned()).or_default().extend(pk(key));
                    items.entry(table.to_owned()).or_default().push((sk(key), units));
                }
            }
            (keys, items)
        };
    )
}

fn consumed(output: &Output) -> Vec<ConsumedCapacity> {
    macro_rules! single {
        ($($ty:ty),*) => {$( if let Some(o) = output.downcast_ref::<$ty>() { return o.consumed_capacity.iter().cloned().collect(); } )*};
    }
    macro_rules! many {
        ($($ty:ty),*) => {$( if let Some(o) = output.downcast_ref::<$ty>() { return o.consumed_capacity.iter().flatten().cloned().collect(); } )*};
    }
    single!(PutItemOutput, UpdateItemOutput, DeleteItemOutput, GetItemOutput, QueryOutput);
    many!(BatchGetItemOutput, BatchWriteItemOutput, TransactGetItemsOutput, TransactWriteItemsOutput);
    Vec::new()
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "CapacityRecorder"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(named) = name(context.input_mut()) {
            cfg.interceptor_state().store_put(named);
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (Some(named), Ok(output)) = (cfg.load::<Named>(), context.output_or_error()) else { return Ok(()) };
        let mut state = self.0.lock().expect("recorder lock");
        let phase = state.phase.clone();
        for c in consumed(output) {
            let table = c.table_name().unwrap_or_default().to_owned();
            let indexes: f64 = c.global_secondary_indexes().map(|m| m.values().filter_map(|u| u.capacity_units()).sum()).unwrap_or(0.0);
            let own = c.table().and_then(|t| t.capacity_units()).unwrap_or(c.capacity_units().unwrap_or(0.0) - indexes);
            let keys = named.keys.get(&table).cloned().unwrap_or_default();
            let row = |index: Option<String>, units: f64| Units {
                phase: phase.clone(),
                operation: named.operation,
                table: table.clone(),
                index,
                write: named.write,
                units,
                keys: keys.clone(),
            };
            // A transaction's report, corrected (see the module's note).
            let real = |index: Option<&str>, units: f64| match named.items.get(&table) {
                Some(items) => transaction_units(units, index, items),
                None => units,
            };
            state.units.push(row(None, real(None, own)));
            for (index, u) in c.global_secondary_indexes().into_iter().flatten() {
                state.units.push(row(Some(index.clone()), real(Some(index), u.capacity_units().unwrap_or(0.0))));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transactions_units_are_rebuilt_from_its_items() {
        let put = |sk: &str, units: u32| (sk.to_owned(), Some(units));
        let update = |sk: &str| (sk.to_owned(), None);
        // Ten 1 KB puts, reported as 2: twenty.
        let puts: Vec<_> = (0..10).map(|i| put(&format!("we_{i}#attempt#1"), 1)).collect();
        assert_eq!(transaction_units(2.0, None, &puts), 20.0);
        // Ten state updates of one class with ten 1 KB attempt puts, reported as 2 × (1 + 1): forty
        // on the table; the ByDue index sees the ten states only, ByEndpoint the ten attempts only.
        let mut settle: Vec<_> = (0..10).map(|i| update(&format!("we_{i}#state"))).collect();
        settle.extend(puts.iter().cloned());
        assert_eq!(transaction_units(2.0, None, &settle), 40.0);
        assert_eq!(transaction_units(2.0, Some("ByDue"), &settle), 20.0);
        assert_eq!(transaction_units(2.0, Some("ByEndpoint"), &settle), 20.0);
        // A 3 KB put and an update of another class, reported as 2 × (3 + 2): the update is 2 units.
        assert_eq!(transaction_units(10.0, None, &[put("a", 3), update("b")]), 10.0);
    }
}
