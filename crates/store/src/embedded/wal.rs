//! The write-ahead log: one file, `recordsync.wal`, next to the redb file.
//!
//! Every committed batch is appended here as one *frame* and made durable with one
//! `fdatasync` before the batch is acknowledged; the same batch goes to redb without an
//! fsync. A sequential append syncs in a fraction of the time a redb commit's dozen
//! scattered page writes take (see the module doc of `embedded.rs` for the protocol).
//!
//! The file is recycled, not replaced: after a checkpoint has made redb durable, the next
//! frame is written at the start again, over frames that are no longer needed. Once the
//! file has grown to a cycle's size, appends overwrite allocated blocks, which syncs
//! faster than growing the file. So a frame found in the file may be new or a leftover of
//! an earlier cycle; each frame says which cycle (*epoch*) wrote it and its log sequence
//! number (*LSN*), and recovery accepts only frames of the current epoch with the next
//! LSN. What the current epoch and its first LSN are is recorded in redb by the
//! checkpoint that started the cycle, in the same durable commit as the data.
//!
//! All integers are little-endian.
//!
//! ## File header (bytes 0..4096, written once when the file is created)
//!
//! | offset | size | field                                                         |
//! |--------|------|---------------------------------------------------------------|
//! | 0      | 16   | magic: `recordsync wal\n\0`                                   |
//! | 16     | 4    | log format version, [`WAL_FORMAT_V1`]                         |
//! | 20     | 4    | zero                                                          |
//! | 24     | 8    | log id: random, also kept in redb's `meta` (`wal_id`), so a   |
//! |        |      | log from another data directory is refused                    |
//! | 32     | 4    | CRC-32 (IEEE) of bytes 0..32                                  |
//! | 36     | rest | zero                                                          |
//!
//! The header has its own 4 KiB block, so that appending a frame never rewrites it.
//!
//! ## Frame (from offset 4096; each frame starts at a multiple of 8)
//!
//! | offset | size | field                                                         |
//! |--------|------|---------------------------------------------------------------|
//! | 0      | 4    | magic: `RSWF`                                                 |
//! | 4      | 4    | CRC-32 (IEEE) of bytes 8..40+len (rest of header and payload) |
//! | 8      | 4    | frame kind: 1 = a committed batch                             |
//! | 12     | 4    | zero                                                          |
//! | 16     | 8    | payload length `len`                                          |
//! | 24     | 8    | epoch: the log cycle that wrote the frame                     |
//! | 32     | 8    | LSN: log sequence number, one more than the frame before      |
//! | 40     | len  | payload: the batch's committed writes (`codec::encode_batch`) |
//! | 40+len | 0..7 | zero padding to the next multiple of 8                        |
//!
//! ## Reading it back
//!
//! Frames are read from offset 4096 while each one is whole (the file is long enough and
//! the checksum matches), of the current epoch and carries the next LSN. The first frame
//! that is not whole, or of an older epoch, ends the log: it is the tail of an append that
//! was cut short (never acknowledged, since acknowledgement waits for the fsync), or a
//! leftover of an earlier cycle. A whole frame of the current epoch with the wrong LSN, or
//! of a later epoch, cannot arise from a crash and is reported as damage. So is a whole
//! frame of the current epoch with a later LSN found *after* the end: only one frame is
//! ever in flight, so one that follows a broken frame means that frame was complete once
//! and has been damaged since, and acknowledged writes would be lost.
//!
//! The file grows in zero-filled steps of 1 MiB; zeros read as the end of the log.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Cause, StoreError};

/// The log file inside the data directory.
pub const WAL_FILE_NAME: &str = "recordsync.wal";

/// The only log format so far. A later one gets a new number, and this build refuses it.
pub const WAL_FORMAT_V1: u32 = 1;

const FILE_MAGIC: [u8; 16] = *b"recordsync wal\n\0";
/// Where the first frame starts: the header has a block to itself.
pub const HEADER_LEN: u64 = 4096;
const HEADER_USED: usize = 36;

const FRAME_MAGIC: [u8; 4] = *b"RSWF";
const FRAME_HEADER: usize = 40;
/// A frame holding a committed batch; the only kind so far.
const KIND_BATCH: u32 = 1;

/// A frame buffer that grew beyond this for one huge batch is not kept for the next.
const KEEP_BUFFER: usize = 8 << 20;

/// The file grows in steps of this many zero bytes. Syncing an append that grows a file
/// also commits the filesystem's journal (the file size changed), which took 1.0 ms at
/// p50 on the project's busy machine against 0.28 ms for overwriting a block that was
/// already written; growing by a step at a time leaves one such sync per step.
pub(super) const GROW_STEP: u64 = 1 << 20;

/// Rounds up to the next multiple of 8.
fn align8(n: u64) -> u64 {
    n.div_ceil(8) * 8
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut buf = [0u8; 4];
    buf.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(buf)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(buf)
}

/// What went wrong with the log, as a sentence for [`StoreError`]s that name the file.
pub(super) fn io_advice(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "the disk is full: free some space"
        }
        io::ErrorKind::ReadOnlyFilesystem => "the filesystem is read-only",
        io::ErrorKind::PermissionDenied => "the file must be writable by this user",
        _ => "check the disk and the system log for errors",
    }
}

/// The log file, open for appending.
#[derive(Debug)]
pub struct Wal {
    file: File,
    path: PathBuf,
    /// The cycle frames are written in now.
    epoch: u64,
    /// The LSN the next frame gets.
    next_lsn: u64,
    /// Where the next frame goes.
    offset: u64,
    /// The file's length, as far as this process has made it.
    len: u64,
    /// Reused for every frame, so an append allocates nothing in the steady state.
    buf: Vec<u8>,
    /// Where a failed append may have left bytes (offset, length), until
    /// [`scrub`](Self::scrub) has zeroed them; no append is made meanwhile.
    untrusted: Option<(u64, u64)>,
    /// Test hook: the next append fails with this I/O error, writing nothing.
    #[cfg(test)]
    pub fail_next_append: Option<io::ErrorKind>,
    /// Test hook: the next append writes its frame whole, then fails as if its sync had.
    #[cfg(test)]
    pub fail_next_sync: bool,
}

/// Where recovery found the end of the log: the next frame's place and LSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End {
    pub offset: u64,
    pub next_lsn: u64,
}

/// One frame read back.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub lsn: u64,
    pub payload: Vec<u8>,
}

/// What lies at an offset of the file.
enum Found {
    /// A whole frame: its epoch, LSN, payload and where the next one starts.
    Frame {
        epoch: u64,
        lsn: u64,
        kind: u32,
        payload: Vec<u8>,
        next: u64,
    },
    /// No whole frame (zeros, a cut-short append, a checksum mismatch, the end of the file).
    Nothing,
}

impl Wal {
    /// Creates the log afresh (replacing a file of that name) with header `id`, and makes
    /// the file and its directory entry durable.
    pub fn create(path: &Path, id: u64) -> Result<(), StoreError> {
        let fail = |what: &str, e: io::Error| {
            let reason = format!("{what}: {e} ({})", io_advice(&e));
            open_error(path, Cause::with_source(reason, e))
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| fail("cannot create the write-ahead log", e))?;
        file.write_all_at(&encode_header(id), 0)
            .map_err(|e| fail("cannot write the write-ahead log's header", e))?;
        file.sync_all()
            .map_err(|e| fail("cannot sync the write-ahead log", e))?;
        // A new file survives a crash only once its directory entry is durable too.
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| fail("cannot sync the data directory after creating the log", e))?;
        }
        Ok(())
    }

    /// Opens the log for recovery: checks that it exists and that its header is ours with
    /// log id `id`. The log is positioned nowhere yet; [`recover`](Self::recover) finds the
    /// end.
    pub fn open(path: &Path, id: u64) -> Result<Wal, StoreError> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(open_error(
                    path,
                    "the write-ahead log is missing. It holds the writes acknowledged since the \
                     last checkpoint, so they would be lost: restore the file if it was moved. \
                     If recordsync was shut down cleanly, it holds nothing needed: create it \
                     empty (`touch` it) and start again",
                ));
            }
            Err(e) => {
                let reason = format!("cannot open the write-ahead log: {e} ({})", io_advice(&e));
                return Err(open_error(path, Cause::with_source(reason, e)));
            }
        };
        let len = file
            .metadata()
            .map_err(|e| {
                let reason = format!("cannot read the log's size: {e}");
                open_error(path, Cause::with_source(reason, e))
            })?
            .len();
        let mut wal = Wal {
            file,
            path: path.to_owned(),
            epoch: 0,
            next_lsn: 0,
            offset: HEADER_LEN,
            len,
            buf: Vec::new(),
            untrusted: None,
            #[cfg(test)]
            fail_next_append: None,
            #[cfg(test)]
            fail_next_sync: false,
        };
        let mut header = [0u8; HEADER_USED];
        let read = wal.read_at(&mut header, 0)?;
        if header[..read].iter().all(|&b| b == 0) {
            // Empty (or a header never made durable, so no frame was ever synced after it):
            // a log with nothing in it. Give it its header now.
            wal.file
                .write_all_at(&encode_header(id), 0)
                .and_then(|()| wal.file.sync_all())
                .map_err(|e| {
                    open_error(
                        path,
                        format!(
                            "cannot write the write-ahead log's header: {e} ({})",
                            io_advice(&e)
                        ),
                    )
                })?;
            wal.len = wal.len.max(HEADER_LEN);
            return Ok(wal);
        }
        check_header(&header[..read], id).map_err(|reason| open_error(path, reason))?;
        Ok(wal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads frames of `epoch` from the start, the first with LSN `first_lsn`, handing each
    /// to `apply`; stops at the end of the log and positions the log there for appending
    /// (still in `epoch`). Fails, naming the file, if the log is damaged (see the module
    /// doc) or `apply` fails.
    pub fn recover(
        &mut self,
        epoch: u64,
        first_lsn: u64,
        mut apply: impl FnMut(Frame) -> Result<(), StoreError>,
    ) -> Result<End, StoreError> {
        let mut offset = HEADER_LEN;
        let mut expected = first_lsn;
        loop {
            match self.read_frame(offset)? {
                Found::Frame {
                    epoch: e,
                    lsn,
                    kind,
                    payload,
                    next,
                } if e == epoch => {
                    if lsn != expected {
                        return Err(self.damaged(format!(
                            "the frame at offset {offset} has log sequence number {lsn} where \
                             {expected} was expected"
                        )));
                    }
                    if kind != KIND_BATCH {
                        return Err(self.damaged(format!(
                            "the frame at offset {offset} is of kind {kind}, which this build \
                             does not know (was it written by a newer recordsync?)"
                        )));
                    }
                    apply(Frame { lsn, payload })?;
                    expected += 1;
                    offset = next;
                }
                Found::Frame { epoch: e, lsn, .. } if e > epoch => {
                    return Err(self.damaged(format!(
                        "the frame at offset {offset} (log sequence number {lsn}) belongs to log \
                         cycle {e}, but the data file's last checkpoint started cycle {epoch}; \
                         the data file is older than the log (was it restored from a backup \
                         without the log?)"
                    )));
                }
                // An older cycle's leftover, or nothing whole: the end.
                _ => break,
            }
        }
        if let Some((at, lsn)) = self.find_frame_after(offset, epoch, expected)? {
            return Err(self.damaged(format!(
                "the log ends at offset {offset} (before log sequence number {expected}), yet a \
                 complete frame of the same cycle follows at offset {at} (log sequence number \
                 {lsn}): a frame in between was damaged after it was written, and writes \
                 acknowledged after it would be lost"
            )));
        }
        self.epoch = epoch;
        self.next_lsn = expected;
        self.offset = offset;
        Ok(End {
            offset,
            next_lsn: expected,
        })
    }

    /// Appends one frame of the current epoch whose payload `encode` writes into the buffer
    /// it is given, and syncs it. Returns the frame's LSN and size on disk.
    ///
    /// On `Err` the frame may be on disk in part or in whole, now or after a crash: the
    /// log takes no append until [`scrub`](Self::scrub) has zeroed its place.
    pub fn append(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> Result<(u64, u64), StoreError> {
        if let Some((at, _)) = self.untrusted {
            return Err(StoreError::Io(
                format!(
                    "appending to the write-ahead log {}: the append at offset {at} failed \
                     and its bytes are not cleared yet (an internal error)",
                    self.path.display()
                )
                .into(),
            ));
        }
        let lsn = self.next_lsn;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(FRAME_HEADER, 0);
        encode(&mut buf);
        let len = buf.len() - FRAME_HEADER;
        buf[0..4].copy_from_slice(&FRAME_MAGIC);
        buf[8..12].copy_from_slice(&KIND_BATCH.to_le_bytes());
        buf[16..24].copy_from_slice(&(len as u64).to_le_bytes());
        buf[24..32].copy_from_slice(&self.epoch.to_le_bytes());
        buf[32..40].copy_from_slice(&lsn.to_le_bytes());
        let padded = align8(buf.len() as u64);
        buf.resize(padded as usize, 0);
        let crc = crc32fast::hash(&buf[8..FRAME_HEADER + len]);
        buf[4..8].copy_from_slice(&crc.to_le_bytes());

        let result = self.write_and_sync(&buf);
        if buf.capacity() <= KEEP_BUFFER {
            self.buf = buf;
        }
        if result.is_err() {
            self.untrusted = Some((self.offset, padded));
        }
        result?;
        self.offset += padded;
        self.len = self.len.max(self.offset);
        self.next_lsn += 1;
        Ok((lsn, padded))
    }

    fn write_and_sync(&mut self, frame: &[u8]) -> Result<(), StoreError> {
        let end = self.offset + frame.len() as u64;
        let path = &self.path;
        let fail = |what: &str, e: io::Error| {
            super::write_failure(
                path.parent().unwrap_or(Path::new(".")),
                format!("{what} the write-ahead log {} failed", path.display()),
                e,
            )
        };
        #[cfg(test)]
        if let Some(kind) = self.fail_next_append.take() {
            return Err(fail("appending to", io::Error::from(kind)));
        }
        #[cfg(any(test, feature = "testing"))]
        if crate::embedded::faults::hit("log-torn") {
            // A crash in the middle of the write: half the frame reaches the file.
            let _ = self
                .file
                .write_all_at(&frame[..frame.len() / 2], self.offset);
            crate::embedded::faults::crash("log-torn");
        }
        self.file
            .write_all_at(frame, self.offset)
            .map_err(|e| fail("appending to", e))?;
        if end > self.len {
            // Zeros up to the next step, synced with the frame: they read as the end of
            // the log, and the appends up to there overwrite written blocks.
            let grown = end.next_multiple_of(GROW_STEP);
            let zeros = vec![0u8; (grown - end) as usize];
            self.file
                .write_all_at(&zeros, end)
                .map_err(|e| fail("growing", e))?;
            self.len = grown;
        }
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_sync) {
            return Err(fail("syncing", io::Error::other("injected sync failure")));
        }
        self.file.sync_data().map_err(|e| fail("syncing", e))
    }

    /// Clears what a failed append may have left, so that appending can go on: zeros over
    /// the frame's place, synced.
    ///
    /// After a failed write or sync nothing tells which of the frame's bytes reached the
    /// disk. Left alone, the frame might be read back whole now and torn after a crash:
    /// replayed once and lost the next time, and frames appended after it (acknowledged
    /// writes) would follow a broken frame, which recovery cannot read past. Zeros that
    /// were synced read as the end of the log, so the failed batch is definitely not
    /// stored (its writer was told it failed) and the next frame goes in its place.
    pub fn scrub(&mut self) -> Result<(), StoreError> {
        let Some((at, len)) = self.untrusted else {
            return Ok(());
        };
        let fail = |e: io::Error| {
            super::write_failure(
                self.dir(),
                format!(
                    "clearing a failed append from the write-ahead log {}",
                    self.path.display()
                ),
                e,
            )
        };
        let size = self.file.metadata().map_err(fail)?.len();
        let end = (at + len).min(size);
        if end > at {
            let zeros = vec![0u8; (end - at) as usize];
            self.file.write_all_at(&zeros, at).map_err(fail)?;
        }
        self.file.sync_data().map_err(fail)?;
        // A failed growth may have lengthened the file in part.
        self.len = size;
        self.untrusted = None;
        Ok(())
    }

    /// The data directory the log is in.
    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Starts cycle `epoch` at the start of the file. Only once a checkpoint has made
    /// redb durable up to the last frame (and recorded `epoch` there): the frames this
    /// overwrites are then no longer needed. If one huge batch grew the file beyond
    /// `keep` bytes (at least one growth step), it is cut back to that.
    pub fn recycle(&mut self, epoch: u64, keep: u64) {
        self.epoch = epoch;
        self.offset = HEADER_LEN;
        let keep = keep.max(GROW_STEP);
        if self.len > keep {
            // Leftovers beyond `keep` would be ignored anyway (older epoch); this only
            // gives the space back. Failing to is harmless.
            match self.file.set_len(keep) {
                Ok(()) => self.len = keep,
                Err(e) => tracing::warn!(
                    file = %self.path.display(),
                    error = %e,
                    "cannot shrink the write-ahead log; it keeps its size"
                ),
            }
        }
    }

    /// Bytes of frames in the current cycle.
    pub fn cycle_bytes(&self) -> u64 {
        self.offset - HEADER_LEN
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn next_lsn(&self) -> u64 {
        self.next_lsn
    }

    /// The file's size.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    fn damaged(&self, reason: String) -> StoreError {
        open_error(
            &self.path,
            format!(
                "the write-ahead log is damaged: {reason}. Nothing was changed; restore the data \
                 directory from a backup, or move the log away to start from the last \
                 checkpoint (losing the writes after it)"
            ),
        )
    }

    /// Reads as much of `buf` as the file holds at `at`; returns how much that was.
    fn read_at(&self, buf: &mut [u8], at: u64) -> Result<usize, StoreError> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], at + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let reason =
                        format!("cannot read the write-ahead log: {e} ({})", io_advice(&e));
                    return Err(open_error(&self.path, Cause::with_source(reason, e)));
                }
            }
        }
        Ok(done)
    }

    fn read_frame(&self, offset: u64) -> Result<Found, StoreError> {
        let mut header = [0u8; FRAME_HEADER];
        if self.read_at(&mut header, offset)? < FRAME_HEADER || header[0..4] != FRAME_MAGIC {
            return Ok(Found::Nothing);
        }
        let len = u64_at(&header, 16);
        // A length from a cut-short or foreign frame can be anything: never read (or
        // allocate) past the end of the file.
        let Some(end) = (offset + FRAME_HEADER as u64)
            .checked_add(len)
            .filter(|&end| end <= self.len)
        else {
            return Ok(Found::Nothing);
        };
        let mut payload = vec![0u8; len as usize];
        if self.read_at(&mut payload, offset + FRAME_HEADER as u64)? < payload.len() {
            return Ok(Found::Nothing);
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header[8..]);
        crc.update(&payload);
        if crc.finalize() != u32_at(&header, 4) {
            return Ok(Found::Nothing);
        }
        Ok(Found::Frame {
            epoch: u64_at(&header, 24),
            lsn: u64_at(&header, 32),
            kind: u32_at(&header, 8),
            payload,
            next: align8(end),
        })
    }

    /// The first whole frame at a multiple of 8 beyond `from` that could be one of the
    /// log's frames after `expected` (of `epoch`, with a later LSN, not absurdly later),
    /// with its LSN. The bounds keep leftovers, and frame-like bytes inside payloads
    /// (record names and values are written raw), from being taken for one.
    fn find_frame_after(
        &self,
        from: u64,
        epoch: u64,
        expected: u64,
    ) -> Result<Option<(u64, u64)>, StoreError> {
        const PLAUSIBLE: u64 = 1 << 20;
        const CHUNK: usize = 1 << 20;
        let mut chunk = vec![0u8; CHUNK];
        let mut base = from + 8;
        while base < self.len {
            let n = self.read_at(&mut chunk, base)?;
            if n == 0 {
                break;
            }
            let mut at = 0;
            while at + 4 <= n {
                if chunk[at..at + 4] == FRAME_MAGIC
                    && let Found::Frame { epoch: e, lsn, .. } = self.read_frame(base + at as u64)?
                    && e == epoch
                    && lsn >= expected
                    && lsn - expected < PLAUSIBLE
                {
                    return Ok(Some((base + at as u64, lsn)));
                }
                at += 8;
            }
            base += n as u64;
        }
        Ok(None)
    }
}

fn open_error(path: &Path, reason: impl Into<Cause>) -> StoreError {
    StoreError::Open {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn encode_header(id: u64) -> Vec<u8> {
    let mut header = vec![0u8; HEADER_LEN as usize];
    header[0..16].copy_from_slice(&FILE_MAGIC);
    header[16..20].copy_from_slice(&WAL_FORMAT_V1.to_le_bytes());
    header[24..32].copy_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&header[0..32]);
    header[32..36].copy_from_slice(&crc.to_le_bytes());
    header
}

fn check_header(header: &[u8], id: u64) -> Result<(), String> {
    if header.len() < HEADER_USED || header[0..16] != FILE_MAGIC {
        return Err(
            "the file is not a recordsync write-ahead log; move it away or point recordsync at \
             another directory"
                .into(),
        );
    }
    if crc32fast::hash(&header[0..32]) != u32_at(header, 32) {
        return Err(
            "the write-ahead log's header is damaged (checksum mismatch); restore the data \
             directory from a backup"
                .into(),
        );
    }
    let format = u32_at(header, 16);
    if format != WAL_FORMAT_V1 {
        return Err(format!(
            "the write-ahead log has format version {format}, this build knows only \
             {WAL_FORMAT_V1}; it was written by a newer recordsync, run that one"
        ));
    }
    let found = u64_at(header, 24);
    if found != id {
        return Err(format!(
            "the write-ahead log belongs to another data directory (log id {found:#x}, the data \
             file expects {id:#x}); put back the log that was next to this data file"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: u64 = 0x5eed;

    /// A fresh log in a temp dir, positioned for appending in `epoch` from `first_lsn`.
    fn fresh(epoch: u64, first_lsn: u64) -> (tempfile::TempDir, Wal) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE_NAME);
        Wal::create(&path, ID).unwrap();
        let mut wal = Wal::open(&path, ID).unwrap();
        wal.recover(epoch, first_lsn, |_| panic!("a new log has no frames"))
            .unwrap();
        (dir, wal)
    }

    fn payload(lsn: u64, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u64 * 31 + lsn) as u8).collect()
    }

    fn append(wal: &mut Wal, len: usize) -> u64 {
        let lsn = wal.next_lsn();
        let body = payload(lsn, len);
        let (got, _) = wal.append(|buf| buf.extend_from_slice(&body)).unwrap();
        assert_eq!(got, lsn);
        lsn
    }

    /// Reads the log back as recovery would: the LSNs found and where it ends.
    fn read_back(path: &Path, epoch: u64, first_lsn: u64) -> Result<(Vec<u64>, End), StoreError> {
        let mut wal = Wal::open(path, ID)?;
        let mut lsns = Vec::new();
        let end = wal.recover(epoch, first_lsn, |frame| {
            assert_eq!(frame.payload, payload(frame.lsn, frame.payload.len()));
            lsns.push(frame.lsn);
            Ok(())
        })?;
        Ok((lsns, end))
    }

    fn damage_reason(result: Result<(Vec<u64>, End), StoreError>) -> String {
        match result {
            Err(StoreError::Open { path, reason }) => {
                assert!(path.ends_with(WAL_FILE_NAME), "{path}");
                reason.to_string()
            }
            other => panic!("expected the log to be refused, got {other:?}"),
        }
    }

    #[test]
    fn frames_round_trip_and_appending_continues_after_recovery() {
        let (dir, mut wal) = fresh(3, 10);
        for len in [0, 1, 7, 8, 9, 100, 5000] {
            append(&mut wal, len);
        }
        let path = wal.path().to_owned();
        let end_before = End {
            offset: HEADER_LEN + wal.cycle_bytes(),
            next_lsn: wal.next_lsn(),
        };
        drop(wal);
        let (lsns, end) = read_back(&path, 3, 10).unwrap();
        assert_eq!(lsns, (10..17).collect::<Vec<_>>());
        assert_eq!(end, end_before);

        // The recovered log takes new frames where it ended.
        let mut wal = Wal::open(&path, ID).unwrap();
        wal.recover(3, 10, |_| Ok(())).unwrap();
        append(&mut wal, 33);
        drop(wal);
        assert_eq!(
            read_back(&path, 3, 10).unwrap().0,
            (10..18).collect::<Vec<_>>()
        );
        drop(dir);
    }

    /// A crash in the middle of the last append leaves any prefix of its bytes: each one
    /// is cut off, and the frames before it are all read.
    #[test]
    fn a_torn_last_frame_is_cut_off_at_every_byte() {
        let (_dir, mut wal) = fresh(1, 1);
        append(&mut wal, 40);
        append(&mut wal, 300);
        let last_start = HEADER_LEN + wal.cycle_bytes();
        append(&mut wal, 123);
        // Its padding is not part of it: without it the frame is whole.
        let full = last_start + FRAME_HEADER as u64 + 123;
        let path = wal.path().to_owned();
        drop(wal);
        let bytes = std::fs::read(&path).unwrap();
        for cut in last_start..full {
            std::fs::write(&path, &bytes[..cut as usize]).unwrap();
            let (lsns, end) = read_back(&path, 1, 1).unwrap();
            assert_eq!(lsns, [1, 2], "cut at {cut}");
            assert_eq!(end.offset, last_start, "cut at {cut}");
            assert_eq!(end.next_lsn, 3);
        }
        // And the cut-off tail is overwritten by the next append, which reads back.
        std::fs::write(&path, &bytes[..(last_start + 50) as usize]).unwrap();
        let mut wal = Wal::open(&path, ID).unwrap();
        wal.recover(1, 1, |_| Ok(())).unwrap();
        append(&mut wal, 7);
        drop(wal);
        assert_eq!(read_back(&path, 1, 1).unwrap().0, [1, 2, 3]);
    }

    /// The file is preallocated or recycled: a torn append leaves the new bytes over old
    /// ones. Every prefix of the last frame over a stale frame is cut off too.
    #[test]
    fn a_torn_last_frame_over_old_bytes_is_cut_off_at_every_byte() {
        let (_dir, mut wal) = fresh(1, 1);
        append(&mut wal, 64);
        let last_start = HEADER_LEN + wal.cycle_bytes();
        append(&mut wal, 200);
        let full = last_start + FRAME_HEADER as u64 + 200;
        let path = wal.path().to_owned();
        drop(wal);
        let new = std::fs::read(&path).unwrap();

        // Frames of the same sizes, written in an earlier cycle (epoch 0) with other LSNs
        // and content.
        let (_old_dir, mut old) = fresh(0, 101);
        append(&mut old, 64);
        append(&mut old, 200);
        append(&mut old, 200);
        let old_bytes = std::fs::read(old.path()).unwrap();
        drop(old);

        for cut in last_start..full {
            let mut mixed = old_bytes.clone();
            mixed[..cut as usize].copy_from_slice(&new[..cut as usize]);
            std::fs::write(&path, &mixed).unwrap();
            let (lsns, end) = read_back(&path, 1, 1).unwrap();
            assert_eq!(lsns, [1], "cut at {cut}");
            assert_eq!(end.offset, last_start, "cut at {cut}");
        }
    }

    /// After a checkpoint the file is written from the start again; what the earlier cycle
    /// left beyond the new frames is never taken for them, even where it has exactly the
    /// LSN that would come next.
    #[test]
    fn frames_of_an_earlier_cycle_are_not_read() {
        let (_dir, mut wal) = fresh(1, 1);
        for _ in 0..5 {
            append(&mut wal, 100);
        }
        let path = wal.path().to_owned();
        wal.recycle(2, u64::MAX);
        append(&mut wal, 100); // LSN 6, over LSN 1
        drop(wal);
        let (lsns, end) = read_back(&path, 2, 6).unwrap();
        assert_eq!(lsns, [6]);
        assert_eq!(end.next_lsn, 7);

        // A leftover frame of cycle 1 with the very LSN the next frame would have: still
        // the end of the log. (Made by rewriting cycle 1's second frame as LSN 7.)
        let mut wal = Wal::open(&path, ID).unwrap();
        wal.recover(1, 1, |_| Ok(())).unwrap_err(); // its first frame is now cycle 2's
        wal.epoch = 1;
        wal.next_lsn = 7;
        wal.offset = HEADER_LEN + 144; // the second frame's place: 40 + 100 + 4 padding
        append(&mut wal, 100);
        drop(wal);
        let (lsns, _) = read_back(&path, 2, 6).unwrap();
        assert_eq!(lsns, [6]);

        // Right after a checkpoint nothing of the new cycle is there: the log is empty.
        let (lsns, end) = read_back(&path, 3, 7).unwrap();
        assert!(lsns.is_empty());
        assert_eq!(end.offset, HEADER_LEN);
    }

    #[test]
    fn a_frame_damaged_before_a_whole_one_is_refused() {
        let (_dir, mut wal) = fresh(1, 1);
        append(&mut wal, 100);
        let second = HEADER_LEN + wal.cycle_bytes();
        append(&mut wal, 100);
        append(&mut wal, 100);
        let path = wal.path().to_owned();
        drop(wal);
        let bytes = std::fs::read(&path).unwrap();
        // Every byte of the middle frame (header, payload, checksum).
        for i in second..second + 140 {
            let mut damaged = bytes.clone();
            damaged[i as usize] ^= 0x40;
            std::fs::write(&path, &damaged).unwrap();
            let reason = damage_reason(read_back(&path, 1, 1));
            assert!(reason.contains("damaged"), "byte {i}: {reason}");
            assert!(reason.contains("sequence number 3"), "byte {i}: {reason}");
        }
    }

    /// Frame-like bytes beyond the end that cannot be one of the log's next frames (a
    /// record name can hold any bytes, and leftovers are old) do not stop the open.
    #[test]
    fn implausible_frames_after_the_end_are_not_taken_for_damage() {
        let (_dir, mut wal) = fresh(5, 100);
        append(&mut wal, 50);
        let end = HEADER_LEN + wal.cycle_bytes();
        let path = wal.path().to_owned();
        // Whole frames after a gap: a far later LSN, a later cycle, an earlier cycle.
        for (i, (epoch, lsn)) in [(5, 102 + (1 << 20)), (6, 102), (4, 102)]
            .into_iter()
            .enumerate()
        {
            wal.epoch = epoch;
            wal.next_lsn = lsn;
            wal.offset = end + 64 + 256 * i as u64;
            append(&mut wal, 20);
        }
        // (A plausible one is found: the same bytes with the next LSN but one.)
        wal.epoch = 5;
        wal.next_lsn = 102;
        wal.offset = end + 64 + 256 * 3;
        append(&mut wal, 20);
        let bytes = std::fs::read(&path).unwrap();
        assert!(damage_reason(read_back(&path, 5, 100)).contains("sequence number 102"));
        // Without that last one, nothing is taken for damage.
        let cut = (end + 64 + 256 * 3) as usize;
        std::fs::write(&path, &bytes[..cut]).unwrap();
        drop(wal);
        let (lsns, found) = read_back(&path, 5, 100).unwrap();
        assert_eq!(lsns, [100]);
        assert_eq!(found.offset, end);
    }

    #[test]
    fn wrong_sequence_numbers_and_later_cycles_are_refused() {
        let (_dir, mut wal) = fresh(1, 1);
        append(&mut wal, 10);
        append(&mut wal, 10);
        let path = wal.path().to_owned();
        drop(wal);
        // The data file expects the cycle to start at LSN 2: the log does not fit it.
        let reason = damage_reason(read_back(&path, 1, 2));
        assert!(reason.contains("sequence number 1 where 2"), "{reason}");
        // The data file is at cycle 0, the log already at 1.
        let reason = damage_reason(read_back(&path, 0, 1));
        assert!(reason.contains("cycle 1"), "{reason}");
    }

    #[test]
    fn headers_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE_NAME);
        let reason = |r: Result<Wal, StoreError>| match r {
            Err(StoreError::Open { reason, .. }) => reason.to_string(),
            other => panic!("expected an Open error, got {other:?}"),
        };
        assert!(reason(Wal::open(&path, ID)).contains("missing"));

        Wal::create(&path, ID).unwrap();
        assert!(reason(Wal::open(&path, ID + 1)).contains("another data directory"));

        let good = std::fs::read(&path).unwrap();
        for i in 0..HEADER_USED {
            let mut bad = good.clone();
            bad[i] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            assert!(Wal::open(&path, ID).is_err(), "byte {i}");
        }
        let mut newer = good.clone();
        newer[16] = 2;
        let crc = crc32fast::hash(&newer[0..32]);
        newer[32..36].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &newer).unwrap();
        assert!(reason(Wal::open(&path, ID)).contains("newer recordsync"));

        std::fs::write(&path, b"some other file").unwrap();
        assert!(reason(Wal::open(&path, ID)).contains("not a recordsync write-ahead log"));

        // An empty file (created by hand after losing the log, or a header that never
        // became durable) is an empty log.
        std::fs::write(&path, b"").unwrap();
        let mut wal = Wal::open(&path, ID).unwrap();
        assert_eq!(wal.recover(1, 1, |_| Ok(())).unwrap().offset, HEADER_LEN);
        append(&mut wal, 5);
        drop(wal);
        assert_eq!(read_back(&path, 1, 1).unwrap().0, [1]);
    }

    #[test]
    fn a_frame_of_an_unknown_kind_is_refused() {
        let (_dir, mut wal) = fresh(1, 1);
        append(&mut wal, 10);
        let path = wal.path().to_owned();
        drop(wal);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = HEADER_LEN as usize;
        bytes[at + 8] = 9;
        let crc = crc32fast::hash(&bytes[at + 8..at + 40 + 10]);
        bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let reason = damage_reason(read_back(&path, 1, 1));
        assert!(reason.contains("kind 9"), "{reason}");
    }

    /// The file grows a step of zeros at a time, so that most appends overwrite blocks
    /// that exist; the zeros read as the end of the log.
    #[test]
    fn the_file_grows_in_zeroed_steps() {
        let (_dir, mut wal) = fresh(1, 1);
        assert_eq!(wal.file_len(), HEADER_LEN);
        append(&mut wal, 100);
        assert_eq!(wal.file_len(), GROW_STEP);
        let path = wal.path().to_owned();
        let on_disk = || std::fs::metadata(&path).unwrap().len();
        assert_eq!(on_disk(), GROW_STEP);
        while wal.cycle_bytes() + 2 * 4096 < GROW_STEP - HEADER_LEN {
            append(&mut wal, 4000);
        }
        assert_eq!(
            on_disk(),
            GROW_STEP,
            "appends within the step do not grow it"
        );
        append(&mut wal, 10_000);
        assert_eq!(wal.file_len(), 2 * GROW_STEP);
        assert_eq!(on_disk(), 2 * GROW_STEP);
        let frames = wal.next_lsn() - 1;
        drop(wal);
        assert_eq!(read_back(&path, 1, 1).unwrap().0.len() as u64, frames);
    }

    #[test]
    fn recycling_cuts_a_grown_file_back() {
        let (_dir, mut wal) = fresh(1, 1);
        append(&mut wal, 3 * GROW_STEP as usize);
        assert_eq!(wal.file_len(), 4 * GROW_STEP);
        wal.recycle(2, 64 * 1024);
        assert_eq!(wal.file_len(), GROW_STEP);
        assert_eq!(std::fs::metadata(wal.path()).unwrap().len(), GROW_STEP);
        append(&mut wal, 10);
        let path = wal.path().to_owned();
        drop(wal);
        assert_eq!(read_back(&path, 2, 2).unwrap().0, [2]);
    }
}
