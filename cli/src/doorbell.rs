//! The pollers' doorbell. `paygate dev`'s stream poller reads its shards only every [`IDLE`] when
//! nothing happens, because every read of a DynamoDB Local stream costs that server about a
//! millisecond of CPU. A local process that has just written events (`paygate trigger`, `paygate
//! dev`'s own demo events) rings the doorbell, and the poller reads at once: trigger → receiver in
//! tens of milliseconds, and a quiet CPU at idle.
//!
//! One Unix datagram socket per stack, named after its Events table, in the temp directory. Ringing
//! a doorbell nobody listens at does nothing; writers that never ring (a Lambda run by `cargo
//! lambda watch`) are seen at the next idle read.
//!
//! [`IDLE`]: crate::pollers::STREAM_IDLE

use std::path::PathBuf;

fn path(events_table: &str) -> PathBuf {
    std::env::temp_dir().join(format!("paygate-{events_table}.bell"))
}

/// Tells the pollers of the stack with this Events table, if any run, that events were written.
/// Never waits: when rings are queued already (a poller busy retrying a batch reads none, and a
/// Unix datagram queue holds only a few), this one is not needed.
pub fn ring(events_table: &str) {
    if let Ok(socket) = std::os::unix::net::UnixDatagram::unbound()
        && socket.set_nonblocking(true).is_ok()
    {
        let _ = socket.send_to(b"!", path(events_table));
    }
}

/// The listening end, held by the stream poller; its socket file goes when it is dropped.
pub struct Doorbell {
    socket: tokio::net::UnixDatagram,
    path: PathBuf,
}

impl Doorbell {
    /// Listens for the stack with this Events table. `None` (the poller then only polls) when the
    /// socket cannot be made.
    pub fn listen(events_table: &str) -> Option<Doorbell> {
        let path = path(events_table);
        // A socket file left by a process that is gone.
        let _ = std::fs::remove_file(&path);
        match tokio::net::UnixDatagram::bind(&path) {
            Ok(socket) => Some(Doorbell { socket, path }),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "no doorbell; the stream poller polls only");
                None
            }
        }
    }

    /// Until someone rings; every ring waiting is taken.
    pub async fn rung(&self) {
        let mut buf = [0u8; 8];
        let _ = self.socket.recv(&mut buf).await;
        while self.socket.try_recv(&mut buf).is_ok() {}
    }
}

impl Drop for Doorbell {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::{Doorbell, ring};

    #[tokio::test]
    async fn ringing_never_waits_even_when_nobody_answers() {
        let table = format!("doorbell-test-{}", ulid::Ulid::generate());
        // Nobody listens: nothing happens.
        ring(&table);
        let bell = Doorbell::listen(&table).expect("a socket in the temp directory");
        // Far more rings than a datagram queue holds, none read: each returns at once.
        for _ in 0..1000 {
            ring(&table);
        }
        // The poller then sees them as one.
        tokio::time::timeout(std::time::Duration::from_secs(10), bell.rung()).await.expect("rung");
    }
}
