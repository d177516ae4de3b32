//! What the tests put in front of the code under test, with no dependency on the CLI or the test
//! suites (so `cli`'s tests and `tests/` both use it, and neither depends on the other): real
//! webhook receivers that verify signatures, a TCP fault proxy, and a DynamoDB front that answers
//! transactions with conflicts; and `eventually`, the bounded wait on a condition.

pub mod conflicts;
pub mod fault_proxy;
pub mod receiver;

/// Polls `check` until it returns `Some`, every 100 ms, for at most `bound` (a generous ceiling,
/// never a latency assertion); `None` when it never did.
pub async fn eventually<T, F, Fut>(bound: std::time::Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
