//! The writer: a bounded queue in front of one thread that chains, batches and writes records,
//! and the two durability choices an operator makes explicit.
//!
//! - [`Durability`]: whether a decision's response waits for its record (`durable`: written to
//!   the operating system, so a killed process loses nothing; `synced`: also fsynced, so a
//!   power cut loses nothing) or not (`buffered`: written within milliseconds, a crash may lose
//!   the queue; every loss is counted).
//! - [`OnFailure`]: what happens when the sink cannot keep up or fails. `deny` (fail closed):
//!   new decisions are denied with reason `audit_unavailable` until the sink recovers. `block`:
//!   requests wait for room and for the write, bounded by the request timeout.
//!
//! Records are never dropped silently: a record that cannot be queued or kept for a retry is
//! counted in `warden_audit_records_lost_total` and logged at error level with its id.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::file_sink::{ChainState, FileSink};
use crate::pg_sink::PgSink;
use crate::record::{Kind, Record, encode};
use crate::signing::SigningKey;
use crate::verify::Head;

/// When a response may leave relative to its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Respond at once; the record is written within the batch interval.
    Buffered,
    /// Respond once the record is written (survives a crash of the process).
    Durable,
    /// Respond once the record is written and fsynced (survives a power cut).
    Synced,
}

/// What the sink failing or falling behind does to new requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Deny new decisions with `audit_unavailable` (fail closed).
    Deny,
    /// Make requests wait (bounded by the request timeout).
    Block,
}

/// Writer settings.
#[derive(Clone, Debug)]
pub struct LogSettings {
    /// See [`Durability`].
    pub durability: Durability,
    /// See [`OnFailure`].
    pub on_failure: OnFailure,
    /// Records that may wait for the writer.
    pub queue_capacity: usize,
    /// Most records in one write.
    pub batch_max: usize,
    /// A signed checkpoint after this many records…
    pub checkpoint_every: u64,
    /// …or after this long with unsigned records.
    pub checkpoint_interval: Duration,
    /// How long to wait before retrying a failed write.
    pub retry_interval: Duration,
}

/// Where records go.
#[derive(Debug)]
pub enum Sink {
    /// JSON lines in a directory.
    File(FileSink),
    /// A PostgreSQL table.
    Postgres(PgSink),
}

/// Why a decision cannot be recorded now.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("the decision log is unavailable: {0}")]
pub struct Unavailable(pub String);

/// Completes a record on the writer thread, off the request path (its explanation, tenants).
pub type Explainer = Box<dyn FnOnce(&mut Record) + Send>;

type Ack = oneshot::Sender<Result<(), String>>;

struct Pending {
    at: std::time::SystemTime,
    record: Record,
    explain: Option<Explainer>,
    ack: Option<Ack>,
}

/// Answers the requests waiting for their records, a batch at a time.
///
/// Completing a waiting request from the writer thread wakes the runtime's worker; on a busy
/// core the worker then runs at once, so each record cost two task switches (a fifth of the
/// core with the log on). The writer instead hands a batch's answers to a task on the runtime,
/// which wakes once per batch and answers each request from inside the runtime, where a wake is
/// a push onto its own queue.
struct AckRelay(mpsc::UnboundedSender<Vec<(Ack, Result<(), String>)>>);

impl AckRelay {
    fn start(runtime: &tokio::runtime::Handle) -> Self {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Vec<(Ack, Result<(), String>)>>();
        runtime.spawn(async move {
            while let Some(batch) = receiver.recv().await {
                for (ack, result) in batch {
                    let _ = ack.send(result);
                }
            }
        });
        AckRelay(sender)
    }

    /// Answers every request of `batch` (directly, should the runtime be gone).
    fn send(&self, batch: Vec<(Ack, Result<(), String>)>) {
        if batch.is_empty() {
            return;
        }
        if let Err(mpsc::error::SendError(batch)) = self.0.send(batch) {
            for (ack, result) in batch {
                let _ = ack.send(result);
            }
        }
    }
}

struct Shared {
    settings: LogSettings,
    healthy: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Set by [`WriterHandle::close_and_join`]: take what is queued, then stop.
    closing: AtomicBool,
    /// Wakes the writer when `closing` is set.
    wake: tokio::sync::Notify,
}

/// A handle to the decision log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Pending>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

/// Waits for the writer to drain the queue and sign the head.
pub struct WriterHandle(std::thread::JoinHandle<()>, Arc<Shared>);

impl std::fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterHandle").finish_non_exhaustive()
    }
}

impl WriterHandle {
    /// Blocks until the writer has finished (after every [`AuditLog`] is dropped).
    pub fn join(self) {
        let _ = self.0.join();
    }

    /// Closes the log even while handles remain (a connection stalled past the shutdown
    /// grace holds one): records already queued are written, later ones are refused (their
    /// decisions denied), the head is signed, and this returns when the writer has stopped.
    pub fn close_and_join(self) {
        self.1.closing.store(true, Ordering::Release);
        self.1.wake.notify_one();
        let _ = self.0.join();
    }
}

impl AuditLog {
    /// Starts the writer thread. Must be called inside a Tokio runtime (the PostgreSQL sink
    /// runs its queries there).
    pub fn start(
        sink: Sink,
        state: ChainState,
        key: SigningKey,
        settings: LogSettings,
    ) -> std::io::Result<(AuditLog, WriterHandle)> {
        let (sender, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            settings,
            healthy: AtomicBool::new(true),
            last_error: Mutex::new(None),
            closing: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        });
        let runtime = tokio::runtime::Handle::current();
        let acks = AckRelay::start(&runtime);
        let writer = Writer {
            acks,
            sink,
            state,
            key,
            shared: Arc::clone(&shared),
            runtime,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            last_head: Instant::now(),
            head_stale: false,
            retained: VecDeque::new(),
        };
        let thread = std::thread::Builder::new()
            .name("warden-audit".to_owned())
            .spawn(move || writer.run(receiver))?;
        let handle = WriterHandle(thread, Arc::clone(&shared));
        Ok((AuditLog { sender, shared }, handle))
    }

    /// The settings in force.
    pub fn settings(&self) -> &LogSettings {
        &self.shared.settings
    }

    /// `None` when healthy, else the last write error (for `/readyz`).
    pub fn problem(&self) -> Option<String> {
        if self.shared.healthy.load(Ordering::Acquire) {
            None
        } else {
            self.shared
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .or_else(|| Some("the decision log is failing".to_owned()))
        }
    }

    /// In the fail-closed mode, whether new decisions must be denied before they are made.
    pub fn refuses_new_decisions(&self) -> Option<Unavailable> {
        if self.shared.settings.on_failure != OnFailure::Deny {
            return None;
        }
        self.problem().map(Unavailable)
    }

    /// Records one entry. Returns once the durability mode is satisfied; an error means the
    /// record is not (yet) safely kept and, in the fail-closed mode, the decision must be a deny.
    pub async fn record(
        &self,
        record: Record,
        explain: Option<Explainer>,
    ) -> Result<(), Unavailable> {
        let settings = &self.shared.settings;
        let (ack, acked) = if settings.durability == Durability::Buffered {
            (None, None)
        } else {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        };
        let id = record.id.clone();
        let pending = Pending {
            at: std::time::SystemTime::now(),
            record,
            explain,
            ack,
        };
        match settings.on_failure {
            OnFailure::Deny => match self.sender.try_send(pending) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    lost("queue_full", &id);
                    return Err(Unavailable("the decision log queue is full".to_owned()));
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    lost("closed", &id);
                    return Err(Unavailable("the decision log is closed".to_owned()));
                }
            },
            OnFailure::Block => {
                let started = Instant::now();
                let waited = self.sender.capacity() == 0;
                if self.sender.send(pending).await.is_err() {
                    lost("closed", &id);
                    return Err(Unavailable("the decision log is closed".to_owned()));
                }
                if waited {
                    metrics::counter!("warden_audit_stalls_total").increment(1);
                    metrics::histogram!("warden_audit_stall_seconds")
                        .record(started.elapsed().as_secs_f64());
                }
            }
        }
        match acked {
            None => Ok(()),
            Some(acked) => match acked.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(why)) => Err(Unavailable(why)),
                Err(_) => Err(Unavailable("the decision log writer stopped".to_owned())),
            },
        }
    }
}

/// Yields of the writer thread, while its queue is empty, before a batch is written.
const GROUP_COMMIT_YIELDS: u32 = 4;

/// How often, at most, the file sink's signed head is rewritten between checkpoints.
const HEAD_INTERVAL: Duration = Duration::from_secs(1);

/// In the fail-closed mode: answers a record's caller with an error (its decision becomes a
/// deny) and rewrites a decision record to say so, for when it is finally written. `None` when
/// the caller was already answered.
fn refuse(pending: &mut Pending, error: &str) -> Option<(Ack, Result<(), String>)> {
    let ack = pending.ack.take()?;
    if pending.record.kind == Kind::Decision {
        let policy_said = pending
            .record
            .explanation
            .take()
            .map(|e| format!("the policies alone decided: {}", e.summary));
        pending.record.explanation = Some(crate::record::Explanation {
            summary: "DENY: the decision log could not be written, so the decision was denied (fail closed).".to_owned(),
            details: policy_said.into_iter().collect(),
        });
        pending.record.decision = Some("deny".to_owned());
        pending.record.reason = Some("audit_unavailable".to_owned());
        pending.record.errors.push(format!(
            "the decision log could not be written when decided: {error}"
        ));
    }
    Some((
        ack,
        Err(format!("the decision log could not be written: {error}")),
    ))
}

fn lost(cause: &'static str, id: &str) {
    metrics::counter!("warden_audit_records_lost_total", "cause" => cause).increment(1);
    tracing::error!(record_id = %id, cause, "a decision-log record was lost");
}

struct Writer {
    acks: AckRelay,
    sink: Sink,
    state: ChainState,
    key: SigningKey,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    /// When the head file was last signed, and whether records were written since.
    last_head: Instant,
    head_stale: bool,
    /// Records whose write failed, oldest first, kept for the retry.
    retained: VecDeque<Pending>,
}

impl Writer {
    fn run(mut self, mut receiver: mpsc::Receiver<Pending>) {
        let settings = self.shared.settings.clone();
        let mut open = true;
        let mut closed = false;
        while open || !self.retained.is_empty() {
            if !closed && self.shared.closing.load(Ordering::Acquire) {
                // What is queued is still received; then `recv` answers `None`.
                receiver.close();
                closed = true;
            }
            let wait = if self.retained.is_empty() {
                if self.head_stale {
                    HEAD_INTERVAL.min(settings.checkpoint_interval)
                } else {
                    settings.checkpoint_interval
                }
            } else {
                settings.retry_interval
            };
            let mut batch: Vec<Pending> = self.retained.drain(..).collect();
            // New records join every attempt, however many failed ones are retained: each
            // waits for its answer (written, or a deny in the fail-closed mode), and must get
            // it within one retry interval, not when the sink comes back.
            let retained = batch.len();
            if open && batch.is_empty() {
                let shared = Arc::clone(&self.shared);
                let received = self.runtime.block_on(async {
                    tokio::select! {
                        received = tokio::time::timeout(wait, receiver.recv()) => received.ok(),
                        () = shared.wake.notified() => None,
                    }
                });
                match received {
                    Some(Some(first)) => batch.push(first),
                    Some(None) => open = false,
                    None => {}
                }
            } else if !batch.is_empty() {
                self.wait_to_retry(&mut receiver, &mut batch, &mut open, wait);
            }
            // Group commit: when the queue runs dry, yield a few times so request threads that
            // are about to hand over a record can join this write (one write per record costs
            // far more than a few yields).
            let mut idle_yields = 0;
            while open && batch.len() - retained < settings.batch_max {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(mpsc::error::TryRecvError::Empty) if idle_yields < GROUP_COMMIT_YIELDS => {
                        idle_yields += 1;
                        std::thread::yield_now();
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            metrics::gauge!("warden_audit_queue_depth").set(receiver.len() as f64);
            if !batch.is_empty() {
                self.write(batch);
            }
            let due = self.since_checkpoint >= settings.checkpoint_every
                || (self.since_checkpoint > 0
                    && self.last_checkpoint.elapsed() >= settings.checkpoint_interval);
            if due && self.retained.is_empty() {
                self.checkpoint();
            } else if self.head_stale
                && self.retained.is_empty()
                && self.last_head.elapsed() >= HEAD_INTERVAL
            {
                // At most a second of records is ever outside the signed head.
                self.write_head();
            }
        }
        if self.since_checkpoint > 0 {
            self.checkpoint();
        }
    }

    fn write(&mut self, mut batch: Vec<Pending>) {
        let started = Instant::now();
        for pending in &mut batch {
            if pending.record.time.is_empty() {
                pending.record.time = crate::record::rfc3339(pending.at);
            }
            if let Some(explain) = pending.explain.take() {
                explain(&mut pending.record);
            }
        }
        let result = match &mut self.sink {
            Sink::File(file) => append_lines(file, &self.state, &batch),
            Sink::Postgres(pg) => {
                let mut records: Vec<Record> = batch.iter().map(|p| p.record.clone()).collect();
                self.runtime
                    .block_on(pg.append(&mut records, &self.key))
                    .map_err(|e| e.to_string())
            }
        };
        metrics::histogram!("warden_audit_write_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(state) => {
                let written = batch.len() as u64;
                self.state = state;
                self.since_checkpoint = self.since_checkpoint.saturating_add(written);
                self.head_stale = true;
                metrics::counter!("warden_audit_records_written_total").increment(written);
                if !self.shared.healthy.swap(true, Ordering::AcqRel) {
                    tracing::info!("the decision log is writable again");
                }
                self.acks.send(
                    batch
                        .into_iter()
                        .filter_map(|pending| pending.ack.map(|ack| (ack, Ok(()))))
                        .collect(),
                );
            }
            Err(error) => self.failed(batch, error),
        }
    }

    /// Waits `wait` before retrying failed writes. In the fail-closed mode a record that
    /// arrives meanwhile is answered at once (a deny: the log is failing) and joins the retry;
    /// otherwise it waits for the retry like the others.
    fn wait_to_retry(
        &mut self,
        receiver: &mut mpsc::Receiver<Pending>,
        batch: &mut Vec<Pending>,
        open: &mut bool,
        wait: Duration,
    ) {
        if self.shared.settings.on_failure != OnFailure::Deny {
            std::thread::sleep(wait);
            return;
        }
        let error = self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| "the decision log is failing".to_owned());
        let until = Instant::now() + wait;
        while *open {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self
                .runtime
                .block_on(async { tokio::time::timeout(left, receiver.recv()).await })
            {
                Ok(Some(mut pending)) => {
                    if let Some(answer) = refuse(&mut pending, &error) {
                        self.acks.send(vec![answer]);
                    }
                    batch.push(pending);
                }
                Ok(None) => *open = false,
                Err(_) => break,
            }
        }
    }

    fn failed(&mut self, batch: Vec<Pending>, error: String) {
        metrics::counter!("warden_audit_write_failures_total").increment(1);
        // The error first, then the flag: `/readyz` reads the flag and then the error, and must
        // name this one, not a generic "failing" (seen under load in tests/reliability).
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
        if self.shared.healthy.swap(false, Ordering::AcqRel) {
            tracing::error!(%error, "the decision log cannot be written");
        }
        let deny = self.shared.settings.on_failure == OnFailure::Deny;
        let mut answers = Vec::new();
        for mut pending in batch {
            if deny && let Some(answer) = refuse(&mut pending, &error) {
                answers.push(answer);
            }
            if self.retained.len() >= self.shared.settings.queue_capacity {
                lost("write_failed", &pending.record.id);
                if let Some(ack) = pending.ack {
                    answers.push((ack, Err(error.clone())));
                }
            } else {
                self.retained.push_back(pending);
            }
        }
        self.acks.send(answers);
    }

    fn checkpoint(&mut self) {
        let through = self.state.next_seq.checked_sub(1);
        let Some(through_seq) = through else {
            return;
        };
        let checkpoint = self.key.checkpoint(through_seq, &self.state.head);
        let mut record = Record::new(Kind::Checkpoint, format!("checkpoint-{through_seq}"));
        record.checkpoint = Some(checkpoint);
        self.write(vec![Pending {
            at: std::time::SystemTime::now(),
            record,
            explain: None,
            ack: None,
        }]);
        if !self.retained.is_empty() {
            // The checkpoint itself failed; it is retried with the rest.
            return;
        }
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        self.write_head();
    }

    /// Signs the chain's current end into the head file (the PostgreSQL sink signs its head
    /// row with every batch instead).
    fn write_head(&mut self) {
        self.last_head = Instant::now();
        self.head_stale = false;
        let Sink::File(file) = &self.sink else {
            return;
        };
        let Some(head_seq) = self.state.next_seq.checked_sub(1) else {
            return;
        };
        let head = Head {
            checkpoint: self.key.checkpoint(head_seq, &self.state.head),
        };
        if let Err(error) = file.write_head(&head) {
            tracing::warn!(%error, "the decision log's signed head could not be written");
        }
    }
}

/// Chains `batch` after `state` and appends it to the file; returns the new state.
fn append_lines(
    file: &mut FileSink,
    state: &ChainState,
    batch: &[Pending],
) -> Result<ChainState, String> {
    let mut bytes = Vec::with_capacity(batch.len() * 512);
    let mut next = state.clone();
    for pending in batch {
        let (line, hash) =
            encode(next.next_seq, &next.head, &pending.record).map_err(|e| e.to_string())?;
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        next.next_seq = next.next_seq.saturating_add(1);
        next.head = hash;
    }
    file.append(&bytes, state.next_seq)
        .map_err(|e| e.to_string())?;
    Ok(next)
}
