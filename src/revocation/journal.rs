//! The embedded store: `data_dir/revocations.jsonl`, one JSON [`Entry`] per line, only ever
//! appended to. Appends are single `O_APPEND` writes, so certgate, `certgate revoke` and a
//! second certgate on the same host can all write it at once; each reader remembers how far
//! it has read. (A database file such as redb would be locked by the running server and
//! shut the command line out.)

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use super::Entry;

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    /// Bytes read so far (always at a line end); `None` before the first read.
    read_to: Mutex<Option<u64>>,
}

impl Journal {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            read_to: Mutex::new(None),
        }
    }

    /// `data_dir/revocations.jsonl`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::new(data_dir.join("revocations.jsonl"))
    }

    /// Left in `data_dir` by a certgate that keeps revocations in Redis, so that a tool
    /// writing to this directory's journal (which that certgate never reads) refuses.
    pub fn redis_marker(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("revocations-are-in-redis")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry as one write.
    ///
    /// # Errors
    /// When the file cannot be opened or written; the message names it.
    pub fn append(&self, entry: &Entry) -> Result<(), String> {
        let mut line = serde_json::to_vec(entry).map_err(|e| e.to_string())?;
        line.push(b'\n');
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(&self.path)
            .and_then(|mut f| f.write_all(&line))
            .map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// The complete lines appended since the last call (all of them on the first).
    ///
    /// # Errors
    /// When the file cannot be read, has disappeared after being read, or holds a line that is
    /// not an entry: revocations that cannot be read must not be taken as none.
    pub fn read_new(&self) -> Result<Vec<Entry>, String> {
        let mut read_to = self.read_to.lock().unwrap_or_else(PoisonError::into_inner);
        let name = self.path.display();
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && read_to.unwrap_or(0) == 0 => {
                *read_to = Some(0);
                return Ok(Vec::new());
            }
            Err(e) => return Err(format!("{name}: {e}")),
        };
        let len = file.metadata().map_err(|e| format!("{name}: {e}"))?.len();
        let mut from = read_to.unwrap_or(0);
        if len < from {
            // Rewritten by someone: read it all again (entries only ever add up).
            from = 0;
        }
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(from))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(|e| format!("{name}: {e}"))?;
        // A line still being written is left for the next read.
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut entries = Vec::new();
        for (n, line) in bytes[..complete].split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let entry = serde_json::from_slice(line).map_err(|e| {
                format!(
                    "{name}: line {} after byte {from} is not a revocation: {e}",
                    n + 1
                )
            })?;
            entries.push(entry);
        }
        *read_to = Some(from + complete as u64);
        Ok(entries)
    }
}
