//! The client-facing HTTP/1.x server: one connection served from its own
//! task, one request at a time (pipelined requests wait in the buffer), the
//! handler called inline.
//!
//! Why our own and not hyper's: a proxied request through hyper's server
//! paid for its dispatcher, its body channel, an encoder built for every
//! kind of response, a timer armed for every request head, and a flush
//! state machine — about 5k instructions per request, a third of a 401
//! (docs/benchmarks.md). A proxy needs much less: heads parsed by httparse
//! (as in hyper), bodies read straight from the connection's buffer, and
//! the response head and a small body written in one system call. HTTP/2
//! stays with hyper (`server.rs` hands those connections over).

mod body;
mod head;
mod io;
mod response;
mod rewind;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use http::Version;
use http_body::Body as _;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

pub use rewind::Rewind;

use self::body::{H1Body, Inbound, Leftover};
use self::head::{HeadError, Parsed, Pending, RequestHead};
use self::io::Io;
use self::response::{Exchange, Framing, Persistence, Written};
use super::clock;
use super::error::{Answer, ProxyError};
use super::fields::Field;
use super::forward::Proxied;
use super::handler::{self, Admission, Reply};
use super::request::ClientHead;
use super::request_body::ClientBody;
use super::server::ConnCtx;
use super::stop::Waiter;

/// Body frames up to this size are copied behind the head (one write);
/// larger ones are written as they are.
const INLINE_BODY: usize = 16 * 1024;
/// How long a connection closing on an unread upload keeps reading it, in
/// all and between reads (nginx's `lingering_time` and `lingering_timeout`).
const LINGER_TIME: Duration = Duration::from_secs(30);
const LINGER_TIMEOUT: Duration = Duration::from_secs(5);
/// Response bytes gathered before they must be written.
const MAX_PENDING_OUT: usize = 64 * 1024;

/// How a connection's HTTP/1 service ended.
pub enum Ended<I> {
    Closed,
    /// The client opened with the HTTP/2 preface (prior knowledge): the
    /// connection, with what was read of it, for the HTTP/2 server.
    Http2(Rewind<I>),
}

/// Why the connection ended without a clean close.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Head(#[from] HeadError),
    #[error("no complete request head within {0:?}")]
    HeadTimeout(Duration),
    #[error("response body failed: {0}")]
    Body(super::upstream::BoxError),
    #[error("response body did not match its Content-Length")]
    BodyLength,
}

/// What waiting for the next request head gave.
enum Next {
    /// A complete head of this many bytes at the start of the buffer,
    /// parsed into positions. `exchange` makes the `RequestHead` and takes
    /// it apart at once: the head (~200 bytes) is never returned or passed
    /// on, each of which would copy it.
    Head(usize, Pending),
    Closed,
    Http2,
}

/// Serves HTTP/1 requests on `stream` until either side closes it, a
/// request fails in a way that leaves it unusable, or the proxy stops
/// (an idle connection closes at once, a busy one after its response).
/// `detect_h2`: whether a client may start HTTP/2 with prior knowledge.
pub async fn serve<I>(stream: I, ctx: &ConnCtx, stop: Waiter, detect_h2: bool) -> Result<Ended<I>, ConnError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = Connection { ctx, stop, timer: None, first: detect_h2, spare_fields: Vec::new() };
    let mut io = Io::new(stream);
    loop {
        let (len, pending) = match conn.next_head(&mut io).await {
            Ok(Next::Head(len, pending)) => (len, pending),
            Ok(Next::Closed) => return Ok(Ended::Closed),
            Ok(Next::Http2) => return Ok(Ended::Http2(Rewind::new(io.stream, io.buf.freeze()))),
            Err(ConnError::Head(error)) => {
                refuse(&mut io, &error, &conn.stop).await;
                return Err(error.into());
            }
            Err(error) => return Err(error),
        };
        conn.first = false;
        let (back, persistence) = conn.exchange(io, len, pending).await?;
        io = back;
        io.settle();
        if persistence == Persistence::Close {
            let _ = io.stream.shutdown().await;
            return Ok(Ended::Closed);
        }
    }
}

/// Answers a head that cannot be served; the connection closes after.
async fn refuse<I: AsyncRead + AsyncWrite + Unpin>(io: &mut Io<I>, error: &HeadError, stop: &Waiter) {
    tracing::debug!(%error, "refused a request head");
    let refusal = match error {
        HeadError::TooLarge => ProxyError::HeadTooLarge,
        HeadError::Malformed(_) | HeadError::Framing(_) => ProxyError::BadRequest,
    };
    let answer = refusal.answer(None, std::time::Instant::now());
    let _ = respond_own(io, &answer, false, Version::HTTP_11, Persistence::Close).await;
    // Whatever else the client sent is unread.
    linger(io, stop).await;
}

struct Connection<'a> {
    ctx: &'a ConnCtx,
    /// Waited on by every idle wait.
    stop: Waiter,
    /// The head-read deadline's timer, created on the first wait and then
    /// only moved when it fires early (see `next_head`).
    timer: Option<Pin<Box<Sleep>>>,
    /// No request yet: the HTTP/2 preface is still possible.
    first: bool,
    /// The last request's field list, emptied: the next head's is made in
    /// its storage.
    spare_fields: Vec<Field>,
}

impl Connection<'_> {
    /// Reads up to the next complete request head. The client has
    /// `header_read_timeout` for it, counted from when the proxy starts
    /// waiting (idle keep-alive time included). The timer is not re-armed
    /// per request: it fires at the deadline of the wait it was set for,
    /// and is moved on then if a later wait is still within its own.
    async fn next_head<I: AsyncRead + AsyncWrite + Unpin>(&mut self, io: &mut Io<I>) -> Result<Next, ConnError> {
        let limit = self.ctx.shared.config.header_read_timeout;
        let mut deadline = None;
        loop {
            if !io.buf.is_empty() {
                if self.first && head::H2_PREFACE.starts_with(&io.buf[..io.buf.len().min(head::H2_PREFACE.len())]) {
                    if io.buf.len() >= head::H2_PREFACE.len() {
                        return Ok(Next::Http2);
                    }
                } else {
                    self.first = false;
                    match head::parse(&io.buf, &mut self.spare_fields)? {
                        Parsed::Partial => {}
                        Parsed::Complete(len, pending) => return Ok(Next::Head(len, pending)),
                    }
                }
            }
            let deadline = *deadline.get_or_insert_with(|| clock::tokio_now() + limit);
            let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            let idle = io.buf.is_empty();
            tokio::select! {
                biased;
                read = io.read() => match read {
                    Ok(0) => return Ok(Next::Closed),
                    Ok(_) => {}
                    // A reset between requests is an ordinary end.
                    Err(_) if idle => return Ok(Next::Closed),
                    Err(error) => return Err(error.into()),
                },
                () = timer.as_mut() => {
                    if clock::tokio_now() >= deadline {
                        // An idle keep-alive connection simply ends.
                        return if idle { Ok(Next::Closed) } else { Err(ConnError::HeadTimeout(limit)) };
                    }
                    timer.as_mut().reset(deadline);
                }
                () = self.stop.stopped(), if idle => return Ok(Next::Closed),
            }
        }
    }

    /// One request, whose head is the buffer's first `len` bytes: the
    /// handler, then the response. Says whether the connection carries on.
    async fn exchange<I>(
        &mut self,
        mut io: Io<I>,
        len: usize,
        pending: Pending,
    ) -> Result<(Io<I>, Persistence), ConnError>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let head = match pending.head(io.buf.split_to(len).freeze()) {
            Ok(head) => head,
            Err(error) => {
                refuse(&mut io, &error, &self.stop).await;
                return Err(error.into());
            }
        };
        let RequestHead { method, uri, version, fields, framing, keep_alive, expect_continue } = head;
        let is_head = method == http::Method::HEAD;
        let mut head = ClientHead { method, uri, version, fields };

        // A body borrows the connection for the handler's run.
        let (connection, body) = match framing {
            None => (Lent::Kept(io), ClientBody::Empty),
            Some(framing) => {
                let inbound = Arc::new(Mutex::new(Inbound::new(io, framing, expect_continue)));
                let body = ClientBody::H1(Box::pin(H1Body::new(inbound.clone(), framing)));
                (Lent::ToBody(inbound), body)
            }
        };
        // Admission does not wait: a refused request (a 401) is answered
        // without building the forwarding future. An admitted request is
        // forwarded from where admission left it (`ref mut`), not moved out,
        // and dropped at the block's end with what it still holds (a body
        // the handler did not read ends its loan of the connection there).
        let response = {
            let mut admission = handler::admit(&mut head, body, self.ctx);
            match admission {
                Admission::Forward(ref mut admitted) => handler::forward(admitted).await,
                Admission::Answered(reply) => reply,
            }
        };
        // The head is done with: its field list's storage serves the next.
        self.spare_fields = std::mem::take(&mut head.fields).into_spare();
        let (mut io, leftover) = match connection {
            Lent::Kept(io) => (io, Leftover::Consumed),
            Lent::ToBody(inbound) => {
                // The handler consumed or dropped the body: the loan ends.
                let Ok(inbound) = Arc::try_unwrap(inbound) else {
                    return Err(std::io::Error::other("request body outlived its handler").into());
                };
                inbound.into_inner().unwrap_or_else(|e| e.into_inner()).finish()
            }
        };

        let persistence = if !keep_alive || leftover == Leftover::Unread || self.stop.is_stopped() {
            Persistence::Close
        } else if version == Version::HTTP_10 {
            Persistence::KeepAlive10
        } else {
            Persistence::KeepAlive
        };
        let persistence = match response {
            Reply::Proxied(response) => respond(&mut io, response, is_head, version, persistence).await?,
            Reply::Own(answer) => respond_own(&mut io, &answer, is_head, version, persistence).await?,
        };
        if leftover == Leftover::Unread {
            linger(&mut io, &self.stop).await;
        }
        Ok((io, persistence))
    }
}

/// Where the connection is while the handler runs.
enum Lent<I> {
    Kept(Io<I>),
    /// With the request body, which reads from it.
    ToBody(Arc<Mutex<Inbound<I>>>),
}

/// After an answer that left the client's upload unread: stop writing,
/// then read and drop what the client still sends, as nginx's lingering
/// close does. A client that only reads once its upload is sent (most
/// synchronous ones) then gets the answer, instead of a reset that loses
/// both. Bounded in total, between reads, and by shutdown.
async fn linger<I: AsyncRead + AsyncWrite + Unpin>(io: &mut Io<I>, stop: &Waiter) {
    let _ = io.stream.shutdown().await;
    let until = Instant::now() + LINGER_TIME;
    loop {
        io.buf.clear();
        let read = tokio::select! {
            biased;
            read = tokio::time::timeout(LINGER_TIMEOUT, io.read()) => read,
            () = tokio::time::sleep_until(until) => return,
            () = stop.stopped() => return,
        };
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            return;
        }
    }
}

/// Writes the proxy's own answer, head and body in one write: no header
/// map is built for it, or dropped after.
async fn respond_own<I: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<I>,
    answer: &Answer,
    is_head: bool,
    version: Version,
    persistence: Persistence,
) -> Result<Persistence, ConnError> {
    let body_len = Some(answer.body.len() as u64);
    let exchange = Exchange { head: is_head, version, status: answer.status, declared: None, body_len };
    let framing = response::framing(&exchange);
    io.out.clear();
    response::encode(&mut io.out, &exchange, answer.fields(), framing, persistence);
    if framing != Framing::None {
        io.out.extend_from_slice(answer.body.as_bytes());
    }
    io.flush_out().await?;
    Ok(persistence)
}

/// Writes an upstream's response: its fields as the upstream sent them,
/// ours after them, and a body that is ready at once in the same write;
/// the rest frame by frame as the body yields it.
async fn respond<I: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<I>,
    proxied: Proxied,
    is_head: bool,
    version: Version,
    persistence: Persistence,
) -> Result<Persistence, ConnError> {
    let declared = proxied.declared_length();
    let exchange = Exchange {
        head: is_head,
        version,
        status: proxied.status,
        declared,
        body_len: proxied.body.size_hint().exact(),
    };
    let framing = response::framing(&exchange);
    let persistence = if framing == Framing::UntilClose { Persistence::Close } else { persistence };
    io.out.clear();
    response::status_line(&mut io.out, exchange.status);
    let date = proxied.encode_fields(&mut io.out);
    response::finish(&mut io.out, &exchange, framing, persistence, Written { date, length: declared.is_some() });
    let mut body = proxied.body;
    if framing == Framing::None {
        drop(body);
        io.flush_out().await?;
        return Ok(persistence);
    }
    let mut sent: u64 = 0;
    loop {
        // What the body has ready joins the bytes waiting in `out`;
        // only when it has to wait does `out` go to the socket first.
        let frame = match body.frame().now_or_never() {
            Some(frame) => frame,
            None => {
                io.flush_out().await?;
                body.frame().await
            }
        };
        let data = match frame {
            None => break,
            Some(Err(error)) => return Err(ConnError::Body(error)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                // Trailers are not forwarded.
                _ => continue,
            },
        };
        sent += data.len() as u64;
        if let Framing::Length(n) = framing
            && sent > n
        {
            return Err(ConnError::BodyLength);
        }
        write_data(io, data, framing == Framing::Chunked).await?;
    }
    match framing {
        Framing::Length(n) if sent != n => return Err(ConnError::BodyLength),
        Framing::Chunked => io.out.extend_from_slice(b"0\r\n\r\n"),
        _ => {}
    }
    io.flush_out().await?;
    Ok(persistence)
}

async fn write_data<I: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<I>,
    data: Bytes,
    chunked: bool,
) -> Result<(), ConnError> {
    let out = &mut io.out;
    if chunked {
        use std::io::Write as _;
        let _ = write!(out, "{:x}\r\n", data.len());
    }
    if data.len() <= INLINE_BODY {
        out.extend_from_slice(&data);
    } else {
        io.write_direct(&data).await?;
    }
    if chunked {
        io.out.extend_from_slice(b"\r\n");
    }
    // A body that keeps being ready (a fast upstream) must not pile up
    // here while the client reads slowly: past this, the client sets the pace.
    if io.out.len() >= MAX_PENDING_OUT {
        io.flush_out().await?;
    }
    Ok(())
}
