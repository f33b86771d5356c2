//! The connection loop: serves the router on a listener (plain TCP or TLS) with hyper, like
//! `axum::serve`, plus defences `axum::serve` cannot be given. SECURITY-SENSITIVE.
//!
//! - A header read timeout (`server.header_read_timeout_ms`): a connection that does not send a
//!   request's headers within it, or that sits idle that long between HTTP/1.1 requests, is
//!   closed. Without it a client sending a header a byte at a time (slowloris) holds its
//!   connection, and its file descriptor, for ever. The same bound holds before hyper's own
//!   timer runs: until the connection's first bytes say HTTP/1.1 or HTTP/2 (the whole 24-byte
//!   HTTP/2 preface, or a byte that is not part of it), and for a write that makes no progress
//!   (a client that does not read its answers).
//! - A cap of open connections per client address (`server.max_connections_per_address`, an
//!   IPv6 address by its /64) and for the whole server (`server.max_connections`, never above
//!   what the process's file-descriptor limit leaves): one more is closed at once, so one host
//!   cannot take every descriptor the process has.
//!
//! HTTP/2 connections are pinged every 20 s and closed when a ping goes unanswered; hyper has no
//! header or idle timeout for them, so an HTTP/2 client that answers pings may hold its
//! connection while idle (within the caps).
//!
//! Each request carries its peer as `ConnectInfo<Addr>`, as `axum`'s
//! `into_make_service_with_connect_info` does. On shutdown the loop stops accepting, asks every
//! connection to finish its request in flight and close, and returns when they have; if the
//! loop's task is aborted (the shutdown's deadline passed), every connection task goes with it.

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
    /// Connections open at once in all.
    pub max_total: usize,
    /// Streams open at once on one HTTP/2 connection.
    pub h2_max_concurrent_streams: u32,
}

/// Streams at once on one HTTP/2 connection to the API (hyper's own default; `[grpc]` has its
/// own setting). Set explicitly: hyper reads `None` as "no limit".
pub const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 200;

/// Turns Nagle's algorithm off on an accepted connection: an HTTP/2 answer is written in
/// several frames (headers, data, trailers), and with Nagle on, the second write waits for the
/// peer's delayed ACK (40 ms on Linux) once the first is unacknowledged.
pub fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY could not be set");
    }
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

/// Open connections per address key, and in all.
#[derive(Clone, Default)]
struct OpenConnections(Arc<Mutex<(HashMap<IpAddr, usize>, usize)>>);

/// One open connection of an address; gives its place back when dropped.
struct OpenSlot {
    open: OpenConnections,
    key: IpAddr,
}

/// Why a connection was not taken.
#[derive(Debug, PartialEq, Eq)]
enum Full {
    Address,
    Server,
}

impl OpenConnections {
    fn take(&self, address: IpAddr, limits: &ConnectionLimits) -> Result<OpenSlot, Full> {
        let key = key_of(address);
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (by_address, total) = &mut *open;
        if *total >= limits.max_total {
            return Err(Full::Server);
        }
        let count = by_address.entry(key).or_insert(0);
        if *count >= limits.max_per_address {
            return Err(Full::Address);
        }
        *count += 1;
        *total += 1;
        Ok(OpenSlot {
            open: self.clone(),
            key,
        })
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        let mut open = self.open.0.lock().unwrap_or_else(PoisonError::into_inner);
        let (by_address, total) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(count) = by_address.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                by_address.remove(&self.key);
            }
        }
    }
}

/// The HTTP/2 connection preface; until it is read whole, or a byte differs from it, hyper
/// has not chosen a protocol and no timer of its own runs.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection's stream with two deadlines hyper does not keep: reads fail when the protocol
/// is not known within the bound (a client that sends nothing, or part of the HTTP/2 preface,
/// and stops), and a write fails when it has made no progress for the bound (a client that
/// stops reading its answers).
struct GuardedIo<Io> {
    io: Io,
    bound: Duration,
    /// Until the protocol is known.
    protocol_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// How much of the HTTP/2 preface the bytes so far have matched.
    preface_matched: usize,
    /// While a write is pending.
    write_stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<Io> GuardedIo<Io> {
    fn new(io: Io, bound: Duration) -> Self {
        GuardedIo {
            io,
            bound,
            protocol_deadline: Some(Box::pin(tokio::time::sleep(bound))),
            preface_matched: 0,
            write_stall: None,
        }
    }

    /// Follows the first bytes until they settle the protocol.
    fn saw(&mut self, bytes: &[u8]) {
        for byte in bytes {
            match H2_PREFACE.get(self.preface_matched) {
                Some(expected) if expected == byte => self.preface_matched += 1,
                _ => {
                    self.protocol_deadline = None;
                    return;
                }
            }
            if self.preface_matched == H2_PREFACE.len() {
                self.protocol_deadline = None;
                return;
            }
        }
    }

    /// A pending write: fails once it has been pending for the bound.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let bound = self.bound;
        let stall = self
            .write_stall
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(bound)));
        if stall.as_mut().poll(cx).is_ready() {
            Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read nothing within the header read timeout",
            )))
        } else {
            Poll::Pending
        }
    }

    /// A write that completed (or failed): the stall clock stops.
    fn wrote<T>(
        &mut self,
        result: Poll<std::io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<T>> {
        match result {
            Poll::Pending => self.stalled(cx),
            ready => {
                self.write_stall = None;
                ready
            }
        }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for GuardedIo<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if this.protocol_deadline.is_some() {
                    let new = buf.filled().get(before..).unwrap_or_default();
                    this.saw(new);
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                let expired = this
                    .protocol_deadline
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

impl<Io: AsyncWrite + Unpin> AsyncWrite for GuardedIo<Io> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(result, cx)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_flush(cx);
        this.wrote(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_shutdown(cx);
        this.wrote(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Raises the process's soft limit of open files to its hard limit and returns what it is
/// then (`None` when it cannot be read): the connection cap must stay below it, or accepting
/// fails with "too many open files" for every client.
pub fn file_descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return limit.maximum.or(Some(u64::MAX));
            }
        }
        Some(limit.current.unwrap_or(u64::MAX))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Descriptors kept for everything but client connections (the store's pool, the decision
/// log, the policy files, outgoing JWKS fetches).
const DESCRIPTORS_KEPT: u64 = 256;

/// The connection cap in all: `configured`, or less when the file limit leaves less.
pub fn total_connection_cap(configured: usize) -> usize {
    match file_descriptor_limit() {
        Some(limit) => {
            let room = usize::try_from(limit.saturating_sub(DESCRIPTORS_KEPT).max(64))
                .unwrap_or(usize::MAX);
            if room < configured {
                tracing::warn!(
                    configured,
                    file_limit = limit,
                    "server.max_connections is above what the open-file limit allows: at most {room} connections"
                );
            }
            configured.min(room)
        }
        None => configured,
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
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(Some(limits.h2_max_concurrent_streams));
    let graceful = GracefulShutdown::new();
    let open = OpenConnections::default();
    // Owned here: if this task is aborted (the shutdown's deadline passed), they go with it.
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let slot = match open.take(peer.ip(), &limits) {
            Ok(slot) => slot,
            Err(full) => {
                let label = match full {
                    Full::Address => "address",
                    Full::Server => "server",
                };
                metrics::counter!("warden_connections_refused_total", "limit" => label)
                    .increment(1);
                tracing::debug!(address = %peer.ip(), limit = label, "connection refused: too many open");
                drop(io);
                continue;
            }
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer.clone()));
            app.clone().oneshot(request)
        });
        let connection = builder
            .serve_connection(
                TokioIo::new(GuardedIo::new(io, limits.header_read_timeout)),
                service,
            )
            .into_owned();
        let connection = graceful.watch(connection);
        connections.spawn(async move {
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

    fn limits(max_per_address: usize, max_total: usize) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            max_per_address,
            max_total,
            h2_max_concurrent_streams: HTTP2_MAX_CONCURRENT_STREAMS,
        }
    }

    #[test]
    fn an_address_holds_at_most_its_share_and_gets_it_back_on_close() {
        let open = OpenConnections::default();
        let limits = limits(2, 10);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b_neighbour: IpAddr = "2001:db8:1:2::2".parse().unwrap();
        let first = open.take(a, &limits).unwrap();
        let _second = open.take(a, &limits).unwrap();
        assert_eq!(open.take(a, &limits).err(), Some(Full::Address));
        let _b = open.take(b, &limits).unwrap();
        let _b2 = open.take(b_neighbour, &limits).unwrap();
        assert_eq!(
            open.take(b_neighbour, &limits).err(),
            Some(Full::Address),
            "an IPv6 /64 is one address"
        );
        drop(first);
        assert!(
            open.take(a, &limits).is_ok(),
            "a closed connection gives its place back"
        );
    }

    #[test]
    fn the_server_holds_at_most_its_total() {
        let open = OpenConnections::default();
        let limits = limits(10, 3);
        let held: Vec<OpenSlot> = (1..=3)
            .map(|i| {
                open.take(format!("192.0.2.{i}").parse().unwrap(), &limits)
                    .unwrap()
            })
            .collect();
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(open.take(other, &limits).err(), Some(Full::Server));
        drop(held);
        assert!(open.take(other, &limits).is_ok());
    }

    #[tokio::test]
    async fn the_protocol_is_known_after_a_foreign_byte_or_the_whole_preface() {
        let mut http1 = GuardedIo::new((), Duration::from_secs(1));
        http1.saw(b"PR");
        assert!(http1.protocol_deadline.is_some(), "still could be HTTP/2");
        http1.saw(b"X");
        assert!(http1.protocol_deadline.is_none());

        let mut get = GuardedIo::new((), Duration::from_secs(1));
        get.saw(b"G");
        assert!(get.protocol_deadline.is_none());

        let mut h2 = GuardedIo::new((), Duration::from_secs(1));
        h2.saw(H2_PREFACE.get(..23).unwrap());
        assert!(h2.protocol_deadline.is_some(), "23 bytes of the preface");
        h2.saw(H2_PREFACE.get(23..).unwrap());
        assert!(h2.protocol_deadline.is_none());
    }
}
