//! A small TCP fault proxy between the code under test and a real server on 127.0.0.1: it passes
//! bytes through until told to refuse connections (the listening socket is closed), reset them
//! (accepted, then closed with RST), or stall them (accepted and held, nothing forwarded, as a
//! paused server does). Changing the fault also ends the connections already open, as the fault
//! would: the clients' pooled connections do not survive it.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Nothing listens: connections are refused.
    Refuse,
    /// Connections are accepted and reset at once.
    Reset,
    /// Connections are accepted and held; nothing is forwarded either way.
    Stall,
}

/// A proxy on a random port of 127.0.0.1; stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy to the server at `upstream` (a URL such as `http://127.0.0.1:8000`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream.trim_start_matches("http://").trim_end_matches('/').parse().unwrap_or_else(|e| panic!("upstream {upstream}: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fault proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (fault, rx) = watch::channel(Fault::Pass);
        let task = tokio::spawn(accept_loop(listener, addr, upstream, rx));
        FaultProxy { addr, fault, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// `fault` for `how_long`, then [`Fault::Pass`] again.
    pub async fn inject(&self, fault: Fault, how_long: Duration) {
        self.set(fault);
        tokio::time::sleep(how_long).await;
        self.set(Fault::Pass);
    }
}

async fn accept_loop(mut listener: TcpListener, addr: SocketAddr, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    loop {
        if *fault.borrow_and_update() == Fault::Refuse {
            drop(listener);
            while *fault.borrow_and_update() == Fault::Refuse {
                if fault.changed().await.is_err() {
                    return;
                }
            }
            listener = rebind(addr).await;
            continue;
        }
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((client, _)) = accepted {
                    tokio::spawn(connection(client, upstream, fault.clone()));
                }
            }
            changed = fault.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The same port again (bounded: the port was ours a moment ago).
async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the fault proxy could not listen on {addr} again");
}

fn reset(s: &TcpStream) {
    let _ = s.set_zero_linger();
}

/// Waits until the fault is no longer `current`.
async fn until_not(fault: &mut watch::Receiver<Fault>, current: Fault) {
    while *fault.borrow_and_update() == current {
        if fault.changed().await.is_err() {
            return;
        }
    }
}

async fn connection(mut client: TcpStream, upstream: SocketAddr, mut fault: watch::Receiver<Fault>) {
    let now = *fault.borrow_and_update();
    match now {
        Fault::Pass => {}
        Fault::Stall => {
            until_not(&mut fault, Fault::Stall).await;
            return reset(&client);
        }
        Fault::Reset | Fault::Refuse => return reset(&client),
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else { return reset(&client) };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = fault.changed() => {
            // The fault begins: a stall holds the connection silently until it ends; any other
            // fault ends it now.
            let now = *fault.borrow_and_update();
            if now == Fault::Stall {
                until_not(&mut fault, Fault::Stall).await;
            }
            reset(&client);
            reset(&server);
        }
    }
}
