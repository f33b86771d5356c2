//! The JSON-lines sink: `decisions.jsonl` in the log directory, rotated by size into
//! `decisions-<first seq, 20 digits>.jsonl`, with the signed head in `decisions.head`.
//!
//! The file is opened for each batch (so permission changes and a moved file take effect at
//! once), written with one `write` per batch, and rolled back to its old length if the write
//! fails part-way, so a failure never leaves half a record in the middle of the chain.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::record::{GENESIS, decode};
use crate::verify::Head;

/// The current file's name.
pub const CURRENT: &str = "decisions.jsonl";
/// The signed head's file name.
pub const HEAD: &str = "decisions.head";

/// Where the chain stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainState {
    /// The next record's sequence number.
    pub next_seq: u64,
    /// The last record's hash (the next record's `prev`).
    pub head: String,
}

impl ChainState {
    /// An empty chain.
    pub fn genesis() -> Self {
        Self {
            next_seq: 0,
            head: GENESIS.to_owned(),
        }
    }
}

/// Why the sink could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum FileSinkError {
    /// I/O on a file of the log.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The last record does not verify: Warden will not extend a broken chain.
    #[error(
        "{path}: the last record does not verify ({why}); run `warden audit verify` on the log"
    )]
    BrokenTail {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// A JSON-lines log directory.
#[derive(Debug)]
pub struct FileSink {
    dir: PathBuf,
    max_bytes: u64,
    sync: bool,
    current_first_seq: Option<u64>,
}

impl FileSink {
    /// Opens (creating) `dir`; `sync` fsyncs every batch.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        sync: bool,
    ) -> Result<(Self, ChainState), FileSinkError> {
        std::fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
        let mut sink = Self {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(4096),
            sync,
            current_first_seq: None,
        };
        let state = sink.recover()?;
        Ok((sink, state))
    }

    /// The current file.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join(CURRENT)
    }

    /// The signed head.
    pub fn head_path(&self) -> PathBuf {
        self.dir.join(HEAD)
    }

    fn recover(&mut self) -> Result<ChainState, FileSinkError> {
        let current = self.current_path();
        self.set_aside_partial_tail(&current)?;
        let files = log_files(&self.dir).map_err(|source| io_error(&self.dir, source))?;
        for path in files.iter().rev() {
            let text = read_tail(path, 1 << 20).map_err(|source| io_error(path, source))?;
            let Some(last) = text.lines().rev().find(|line| !line.trim().is_empty()) else {
                continue;
            };
            let record = decode(last).map_err(|error| FileSinkError::BrokenTail {
                path: path.display().to_string(),
                why: error.to_string(),
            })?;
            if *path == current {
                self.current_first_seq = first_seq(path);
            }
            return Ok(ChainState {
                next_seq: record.seq.saturating_add(1),
                head: record.hash,
            });
        }
        Ok(ChainState::genesis())
    }

    /// A crash can cut the last line short (never in a durable mode, whose records are
    /// acknowledged only once written whole). The fragment is moved to a side file rather than
    /// left to break the chain.
    fn set_aside_partial_tail(&self, path: &Path) -> Result<(), FileSinkError> {
        let mut file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(io_error(path, error)),
        };
        let len = file.metadata().map_err(|e| io_error(path, e))?.len();
        if len == 0 {
            return Ok(());
        }
        let tail_start = len.saturating_sub(1 << 20);
        file.seek(SeekFrom::Start(tail_start))
            .map_err(|e| io_error(path, e))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail).map_err(|e| io_error(path, e))?;
        if tail.last() == Some(&b'\n') {
            return Ok(());
        }
        let keep = tail
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(tail_start, |at| tail_start + at as u64 + 1);
        let fragment = tail.get((keep - tail_start) as usize..).unwrap_or_default();
        let side = self.dir.join(format!(
            "{CURRENT}.partial-{}",
            crate::record::now_rfc3339()
        ));
        std::fs::write(&side, fragment).map_err(|e| io_error(&side, e))?;
        file.set_len(keep).map_err(|e| io_error(path, e))?;
        file.sync_all().map_err(|e| io_error(path, e))?;
        tracing::warn!(fragment = %side.display(), bytes = fragment.len(), "the decision log ended in an incomplete record (a crash while writing); moved it aside");
        Ok(())
    }

    /// Appends `batch` (whole lines, each ending in `\n`) whose first record is `first_seq`.
    pub fn append(&mut self, batch: &[u8], first_seq: u64) -> Result<(), FileSinkError> {
        let path = self.current_path();
        let mut file = self.open_current(&path)?;
        let len = file.metadata().map_err(|e| io_error(&path, e))?.len();
        let file_len = if len > 0 && len.saturating_add(batch.len() as u64) > self.max_bytes {
            drop(file);
            self.rotate(&path)?;
            file = self.open_current(&path)?;
            0
        } else {
            len
        };
        if let Err(error) = file
            .write_all(batch)
            .and_then(|()| if self.sync { file.sync_data() } else { Ok(()) })
        {
            // Never leave part of a batch behind: the records were not acknowledged.
            let _ = file.set_len(file_len);
            return Err(io_error(&path, error));
        }
        if file_len == 0 {
            self.current_first_seq = Some(first_seq);
        }
        Ok(())
    }

    fn open_current(&self, path: &Path) -> Result<File, FileSinkError> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error(path, e))
    }

    fn rotate(&mut self, path: &Path) -> Result<(), FileSinkError> {
        let first = self
            .current_first_seq
            .or_else(|| first_seq(path))
            .unwrap_or_default();
        let rotated = self.dir.join(format!("decisions-{first:020}.jsonl"));
        std::fs::rename(path, &rotated).map_err(|e| io_error(&rotated, e))?;
        self.current_first_seq = None;
        tracing::info!(file = %rotated.display(), "rotated the decision log");
        Ok(())
    }

    /// Replaces the signed head (write to a temporary file, then rename).
    pub fn write_head(&self, head: &Head) -> Result<(), FileSinkError> {
        let path = self.head_path();
        let temporary = self.dir.join(format!("{HEAD}.tmp"));
        let text = serde_json::to_string(head).unwrap_or_default();
        let write = || -> std::io::Result<()> {
            let mut file = File::create(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            if self.sync {
                file.sync_all()?;
            }
            std::fs::rename(&temporary, &path)
        };
        write().map_err(|e| io_error(&path, e))
    }
}

fn io_error(path: &Path, source: std::io::Error) -> FileSinkError {
    FileSinkError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn first_seq(path: &Path) -> Option<u64> {
    let file = File::open(path).ok()?;
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(file), &mut first).ok()?;
    let value: serde_json::Value = serde_json::from_str(first.trim_end()).ok()?;
    value.get("seq")?.as_u64()
}

fn read_tail(path: &Path, at_most: u64) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(at_most);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    if start > 0
        && let Some(at) = bytes.iter().position(|b| *b == b'\n')
    {
        bytes.drain(..=at);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The log's files in chain order: rotated files by first sequence number, then the current.
pub fn log_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut rotated: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|name| name.starts_with("decisions-") && name.ends_with(".jsonl"))
        })
        .collect();
    rotated.sort();
    let current = dir.join(CURRENT);
    if current.exists() {
        rotated.push(current);
    }
    Ok(rotated)
}
