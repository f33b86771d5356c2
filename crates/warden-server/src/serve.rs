//! The connection loop: serves the router on a listener (plain TCP or TLS) with hyper, like
//! `axum::serve`, plus two defences `axum::serve` cannot be given. SECURITY-SENSITIVE.
//!
//! - a header read timeout (`server.header_read_timeout_ms`): a connection that does not send a
//!   request's headers within it, or that sits idle that long between HTTP/1.1 requests, is
//!   closed. Without it a client sending a header a byte at a time (slowloris) holds its
//!   connection, and its file descriptor, for ever;
//! - a cap of open connections per client address (`server.max_connections_per_address`, an
//!   IPv6 address by its /64): one more is closed at once, so one host cannot take every file
//!   descriptor the process has.
//!
//! A connection that sends nothing at all is closed after the same timeout (hyper's own runs
//! only once the first bytes have come). HTTP/2 connections are pinged every 20 s and closed
//! when a ping goes unanswered; hyper has no header timeout for them.
//!
//! Each request carries its peer as `ConnectInfo<Addr>`, as `axum`'s
//! `into_make_service_with_connect_info` does. On shutdown the loop stops accepting, asks every
//! connection to finish its request in flight and close, and returns when they have.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower::ServiceExt as _;

use crate::rate_limit::key_of;
use crate::tls::TlsPeer;

/// The limits the loop holds each connection to.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time to send a request's headers; the longest idle time between HTTP/1.1 requests.
    pub header_read_timeout: Duration,
    /// Connections open at once per client address.
    pub max_per_address: usize,
}

/// The client address of an accepted connection.
pub trait PeerAddress: Clone + Send + Sync + 'static {
    /// The peer's IP address.
    fn ip(&self) -> IpAddr;
}

impl PeerAddress for SocketAddr {
    fn ip(&self) -> IpAddr {
        SocketAddr::ip(self)
    }
}

impl PeerAddress for TlsPeer {
    fn ip(&self) -> IpAddr {
        self.address.ip()
    }
}

/// Open connections per address key.
#[derive(Clone, Default)]
struct OpenConnections(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One open connection of an address; gives its place back when dropped.
struct OpenSlot {
    open: OpenConnections,
    key: IpAddr,
}

impl OpenConnections {
    fn take(&self, address: IpAddr, max: usize) -> Option<OpenSlot> {
        let key = key_of(address);
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(OpenSlot {
            open: self.clone(),
            key,
        })
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// A connection's stream that fails its reads when no byte has come within the deadline: hyper
/// waits for a connection's first bytes (to tell HTTP/1.1 from HTTP/2) before any timeout of
/// its own runs, so a client that connects and sends nothing would be held for ever.
struct FirstByteDeadline<Io> {
    io: Io,
    /// Until the first byte has been read.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<Io> FirstByteDeadline<Io> {
    fn new(io: Io, within: Duration) -> Self {
        FirstByteDeadline {
            io,
            deadline: Some(Box::pin(tokio::time::sleep(within))),
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for FirstByteDeadline<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.deadline = None;
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let expired = this
                    .deadline
                    .as_mut()
                    .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no request within the header read timeout",
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for FirstByteDeadline<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains the connections.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) where
    L: Listener,
    L::Addr: PeerAddress,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    // HTTP/2 has no header timeout in hyper: pings find peers that went away, and the cap per
    // address bounds what live idle ones hold.
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    let graceful = GracefulShutdown::new();
    let open = OpenConnections::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let Some(slot) = open.take(peer.ip(), limits.max_per_address) else {
            metrics::counter!("warden_connections_refused_total").increment(1);
            tracing::debug!(address = %peer.ip(), "connection refused: too many open from this address");
            drop(io);
            continue;
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer.clone()));
            app.clone().oneshot(request)
        });
        let connection = builder
            .serve_connection(
                TokioIo::new(FirstByteDeadline::new(io, limits.header_read_timeout)),
                service,
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_share_and_gets_it_back_on_close() {
        let open = OpenConnections::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b_neighbour: IpAddr = "2001:db8:1:2::2".parse().unwrap();
        let first = open.take(a, 2).unwrap();
        let _second = open.take(a, 2).unwrap();
        assert!(open.take(a, 2).is_none(), "a third from one address");
        let _b = open.take(b, 1).unwrap();
        assert!(
            open.take(b_neighbour, 1).is_none(),
            "an IPv6 /64 is one address"
        );
        drop(first);
        assert!(
            open.take(a, 2).is_some(),
            "a closed connection gives its place back"
        );
    }
}
