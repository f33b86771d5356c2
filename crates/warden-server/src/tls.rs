//! HTTPS on the listener (`[server.tls]`): rustls with the aws-lc-rs provider, PEM files
//! reloaded when they change, and optional client certificates. SECURITY-SENSITIVE.
//!
//! [`TlsListener`] is an `axum::serve` listener. A background task accepts TCP connections and
//! runs each handshake in its own task (bounded in number, per client address and in time, so
//! a slow or silent client holds up nobody), then hands finished connections to `axum::serve` with the peer's
//! address and, when it presented one that chains to `client_ca_file`, its certificate's
//! SHA-256 fingerprint. Every handshake uses the configuration current when it starts; a
//! reload swaps it for the next ones. A change that does not load keeps the old one serving
//! (logged, counted in `warden_tls_reloads_total{result="error"}`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use warden_config::{ClientAuth, TlsSettings};

/// The longest a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most handshakes in progress at once.
const MAX_HANDSHAKES: usize = 1024;
/// The most handshakes in progress at once from one client address (an IPv6 address by its
/// /64, as for the rate limits), so that one address saying nothing cannot hold every slot.
const MAX_HANDSHAKES_PER_ADDRESS: usize = 64;

/// TLS files that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read or holds no usable PEM item.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the combination (e.g. the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// A verified client certificate: the SHA-256 fingerprint of its DER, hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    /// Hex SHA-256 of the leaf certificate's DER.
    pub fingerprint: String,
}

/// What a TLS connection tells about its peer.
#[derive(Clone)]
pub struct TlsPeer {
    /// The peer's address.
    pub address: SocketAddr,
    /// Its certificate, when it presented one that verified.
    pub certificate: Option<ClientCertificate>,
    /// The client CAs the certificate was verified against, and where to see the current
    /// ones: a connection opened before `client_ca_file` changed keeps no certificate identity.
    trust: Option<(u64, TlsConfigHolder)>,
}

impl TlsPeer {
    /// The certificate, while the client CAs it was verified against are still the current ones.
    fn current_certificate(&self) -> Option<&ClientCertificate> {
        match &self.trust {
            Some((verified_under, holder)) if *verified_under == holder.current().1 => {
                self.certificate.as_ref()
            }
            _ => None,
        }
    }
}

impl std::fmt::Debug for TlsPeer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TlsPeer")
            .field("address", &self.address)
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

/// Builds the rustls configuration from the files.
pub fn load(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&settings.cert_file)
        .map_err(|error| file_error(&settings.cert_file, error))?
        .collect::<Result<_, _>>()
        .map_err(|error| file_error(&settings.cert_file, error))?;
    if chain.is_empty() {
        return Err(file_error(
            &settings.cert_file,
            "no CERTIFICATE in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&settings.key_file)
        .map_err(|error| file_error(&settings.key_file, error))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Config(error.to_string()))?;
    let builder = match &settings.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            let certificates = CertificateDer::pem_file_iter(ca_file)
                .map_err(|error| file_error(ca_file, error))?;
            for certificate in certificates {
                let certificate = certificate.map_err(|error| file_error(ca_file, error))?;
                roots
                    .add(certificate)
                    .map_err(|error| file_error(ca_file, error))?;
            }
            if roots.is_empty() {
                return Err(file_error(ca_file, "no CERTIFICATE in the file"));
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = match settings.client_auth {
                ClientAuth::Optional => verifier.allow_unauthenticated(),
                ClientAuth::Required => verifier,
            }
            .build()
            .map_err(|error| TlsError::Config(error.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| TlsError::Config(error.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The configuration in use, swapped on reload, with the generation of its client CAs (one
/// more each time a reload changes `client_ca_file`), read and swapped together.
#[derive(Clone)]
pub struct TlsConfigHolder(Arc<RwLock<(Arc<ServerConfig>, u64)>>);

impl TlsConfigHolder {
    fn current(&self) -> (Arc<ServerConfig>, u64) {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, config: Arc<ServerConfig>, client_cas_changed: bool) {
        let mut current = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let generation = current.1 + u64::from(client_cas_changed);
        *current = (config, generation);
    }
}

/// An `axum::serve` listener that speaks TLS.
pub struct TlsListener {
    connections: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, TlsPeer)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener` with `settings`' files (loaded now: an error here stops
    /// the start). Returns the listener and the holder the reload task swaps.
    pub fn start(
        listener: TcpListener,
        settings: &TlsSettings,
    ) -> Result<(TlsListener, TlsConfigHolder), TlsError> {
        let holder = TlsConfigHolder(Arc::new(RwLock::new((load(settings)?, 0))));
        let local = listener
            .local_addr()
            .map_err(|error| TlsError::Config(error.to_string()))?;
        let (sender, connections) = tokio::sync::mpsc::channel(64);
        tokio::spawn(accept_loop(listener, holder.clone(), sender));
        Ok((TlsListener { connections, local }, holder))
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            // The accept loop has stopped (it stops only when this listener is dropped):
            // nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(TlsPeer {
            address: self.local,
            certificate: None,
            trust: None,
        })
    }
}

/// Handshakes in progress per client address.
#[derive(Default)]
struct HandshakesPerAddress(std::sync::Mutex<HashMap<IpAddr, usize>>);

/// One handshake of an address in progress; ends when dropped.
struct AddressSlot {
    handshakes: Arc<HandshakesPerAddress>,
    key: IpAddr,
}

impl HandshakesPerAddress {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for one more handshake from `address`, unless it has `MAX_HANDSHAKES_PER_ADDRESS`.
    fn take(self: &Arc<Self>, address: IpAddr) -> Option<AddressSlot> {
        let key = crate::rate_limit::key_of(address);
        let mut counts = self.counts();
        let count = counts.entry(key).or_insert(0);
        if *count >= MAX_HANDSHAKES_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            handshakes: self.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.handshakes.counts();
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    holder: TlsConfigHolder,
    sender: tokio::sync::mpsc::Sender<(TlsStream<TcpStream>, TlsPeer)>,
) {
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    let per_address = Arc::new(HandshakesPerAddress::default());
    loop {
        let accepted = tokio::select! {
            () = sender.closed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, address) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Answers are written as they are ready (see serve.rs).
        let _ = stream.set_nodelay(true);
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            metrics::counter!("warden_tls_handshake_failures_total", "cause" => "too_many")
                .increment(1);
            tracing::warn!(%address, "too many TLS handshakes in progress: connection dropped");
            continue;
        };
        let Some(address_slot) = per_address.take(address.ip()) else {
            metrics::counter!("warden_tls_handshake_failures_total", "cause" => "too_many_from_address")
                .increment(1);
            tracing::debug!(%address, "too many TLS handshakes in progress from this address: connection dropped");
            continue;
        };
        let (config, client_cas) = holder.current();
        let acceptor = TlsAcceptor::from(config);
        let holder = holder.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _address_slot = address_slot;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let certificate = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(<[CertificateDer<'_>]>::first)
                        .map(|leaf| ClientCertificate {
                            fingerprint: hex::encode(Sha256::digest(leaf.as_ref())),
                        });
                    let _ = sender
                        .send((
                            tls,
                            TlsPeer {
                                address,
                                certificate,
                                trust: Some((client_cas, holder)),
                            },
                        ))
                        .await;
                }
                Ok(Err(error)) => {
                    metrics::counter!("warden_tls_handshake_failures_total", "cause" => "refused")
                        .increment(1);
                    tracing::debug!(%address, %error, "TLS handshake failed");
                }
                Err(_) => {
                    metrics::counter!("warden_tls_handshake_failures_total", "cause" => "timeout")
                        .increment(1);
                    tracing::debug!(%address, "TLS handshake timed out");
                }
            }
        });
    }
}

/// What the files hold now (to notice a change, including one that keeps the modification
/// time, such as a rename over the file).
fn files_digest(settings: &TlsSettings) -> Option<[u8; 32]> {
    let mut hasher = Sha256::new();
    for path in [Some(&settings.cert_file), Some(&settings.key_file)]
        .into_iter()
        .chain(std::iter::once(settings.client_ca_file.as_ref()))
        .flatten()
    {
        hasher.update(std::fs::read(path).ok()?);
        hasher.update([0]);
    }
    Some(hasher.finalize().into())
}

/// What the client CA file holds now (`None`: no such file configured, or unreadable).
fn client_cas_digest(settings: &TlsSettings) -> Option<[u8; 32]> {
    let path = settings.client_ca_file.as_ref()?;
    Some(Sha256::digest(std::fs::read(path).ok()?).into())
}

/// Checks the files every `reload_interval_seconds`; loads and swaps on change. When the
/// client CAs change, certificates verified against the previous ones stop counting on the
/// connections already open (see [`expose_peer`]).
pub fn spawn_reload(settings: TlsSettings, holder: TlsConfigHolder) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = files_digest(&settings);
        let mut client_cas_in_use = client_cas_digest(&settings);
        let mut tick = tokio::time::interval(Duration::from_secs(settings.reload_interval_seconds));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = files_digest(&settings);
            if now == seen || now.is_none() {
                continue;
            }
            let client_cas = client_cas_digest(&settings);
            match load(&settings) {
                Ok(config) => {
                    holder.replace(config, client_cas != client_cas_in_use);
                    client_cas_in_use = client_cas;
                    seen = now;
                    metrics::counter!("warden_tls_reloads_total", "result" => "ok").increment(1);
                    tracing::info!("TLS certificate reloaded");
                }
                Err(error) => {
                    // Keep serving the previous certificate; try again when the files change.
                    seen = now;
                    metrics::counter!("warden_tls_reloads_total", "result" => "error").increment(1);
                    tracing::error!(%error, "the changed TLS files do not load; the previous certificate keeps serving");
                }
            }
        }
    })
}

/// Makes a TLS connection's peer look like a plain one to the rest of the router (the peer
/// address as `ConnectInfo<SocketAddr>`), with its verified certificate as an extension while
/// the client CAs it was verified against are still the configured ones.
pub async fn expose_peer(mut request: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<TlsPeer>>().cloned() {
        request.extensions_mut().insert(ConnectInfo(peer.address));
        if let Some(certificate) = peer.current_certificate() {
            request.extensions_mut().insert(certificate.clone());
        }
    }
    next.run(request).await
}
