//! What the loopback server sends of a stored file: blocks read and verified on the server's
//! blocking threads, one block ahead of the one being sent, sized so that many players at once
//! stay within a bounded memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use super::reader::AssetReader;
use crate::error::{Error, Result};

/// A response body.
pub(super) type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

/// Told of every stored file that failed verification while being served: (asset, file).
pub(crate) type IntegritySink = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Threads that read and verify for the server. Reads come from the page cache and are bound by
/// the cipher, so more threads than cores buy nothing; each thread costs memory (its stack, and
/// glibc keeps an arena per thread: 16 players on unbounded threads took 53 MiB, not 23).
/// Requests beyond them queue in order, so no player is starved (design D50).
pub(super) const BLOCKING_THREADS: usize = 4;

/// The responses one server is streaming now.
#[derive(Clone, Default)]
pub(super) struct Load(Arc<AtomicUsize>);

impl Load {
    /// Counts a response until the returned guard is dropped.
    pub(super) fn start(&self) -> Streaming {
        self.0.fetch_add(1, Ordering::Relaxed);
        Streaming(Arc::clone(&self.0))
    }
}

/// One response of a server's [`Load`], counted while it lives.
pub(super) struct Streaming(Arc<AtomicUsize>);

impl Drop for Streaming {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Streaming {
    /// What to read, verify and send at once now (rounded up to whole chunks by the reader). A
    /// response holds two blocks (the one being sent, the next one read ahead). While at most
    /// four responses stream, 1 MiB blocks, which one player needs for the full speed of the
    /// disk and the cipher; with more, 256 KiB blocks keep the memory bounded (16 players: 8 MiB,
    /// not 32) and cost nothing in aggregate throughput (design D50).
    pub(super) fn block(&self) -> usize {
        if self.0.load(Ordering::Relaxed) > 4 { 256 << 10 } else { 1 << 20 }
    }
}

/// The block of `reader` that starts at `pos`, of about `about` bytes: up to the next multiple of
/// its size (whole chunks), so that every later block starts on a chunk boundary whatever size
/// it has, and not past `end`; read and verified.
pub(super) fn read_block(reader: &AssetReader, pos: u64, end: u64, about: usize) -> Result<Bytes> {
    let block = reader.block(about) as u64;
    let next = ((pos / block) + 1) * block;
    let n = (next.min(end) - pos) as usize;
    let mut buf = BytesMut::zeroed(n);
    if reader.read_into(pos, &mut buf)? != n {
        return Err(Error::Io(std::io::Error::other("stored file shorter than expected")));
    }
    Ok(buf.freeze())
}

/// Bytes `start..end` of `reader` (the first block already read), the rest read and verified
/// block by block on the blocking pool, one block ahead of the one being sent. Each read is
/// awaited by the response body itself: when the response ends or the connection goes (the
/// server stopping included), nothing is left reading but the one block under way. A block that
/// fails verification is never sent: the stream ends with an error (the client sees the
/// response cut short) and the vault reports it.
pub(super) fn stream_body(
    reader: Arc<AssetReader>,
    first: Bytes,
    start: u64,
    end: u64,
    sink: IntegritySink,
    streaming: Streaming,
) -> Body {
    type Read = tokio::task::JoinHandle<Result<Bytes>>;
    let read = move |reader: &Arc<AssetReader>, pos: u64, about: usize| -> Option<Read> {
        let r = Arc::clone(reader);
        (pos < end).then(|| tokio::task::spawn_blocking(move || read_block(&r, pos, end, about)))
    };
    let next_pos = start + first.len() as u64;
    let ahead = read(&reader, next_pos, streaming.block());
    struct State {
        reader: Arc<AssetReader>,
        first: Option<Bytes>,
        ahead: Option<Read>,
        pos: u64,
        sink: IntegritySink,
        streaming: Streaming,
    }
    let state = State { reader, first: Some(first), ahead, pos: next_pos, sink, streaming };
    let stream = futures_util::stream::unfold(state, move |mut st| async move {
        if let Some(first) = st.first.take() {
            return Some((Ok(Frame::data(first)), st));
        }
        let block = match st.ahead.take()?.await {
            Ok(Ok(block)) => block,
            Ok(Err(e)) => {
                if let Error::Integrity { id, file } = e {
                    tracing::error!(asset = %id, "stored file {file} failed verification; response cut");
                    (st.sink)(&id, &file);
                }
                return Some((Err(std::io::Error::other("stored data failed verification")), st));
            }
            Err(_) => return Some((Err(std::io::Error::other("internal error")), st)),
        };
        st.pos += block.len() as u64;
        st.ahead = read(&st.reader, st.pos, st.streaming.block());
        Some((Ok(Frame::data(block)), st))
    });
    BodyExt::boxed(StreamBody::new(stream))
}
