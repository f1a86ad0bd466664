//! A TCP connection whose reads and writes are the bare system calls, with
//! tokio's readiness: both sides of the proxy read and write through it.
//!
//! Why not tokio's `TcpStream` reads and writes: they call glibc's `recv`
//! and `send`, which are thread-cancellation points. In a process with more
//! than one thread (ours has the control plane beside the proxy threads)
//! glibc switches asynchronous cancellation on before each such call and
//! off after it, two atomic read-modify-writes on the thread's state, for a
//! feature Rust never uses. Four calls per proxied request made that about
//! 0.15 µs of time samples per request (`__pthread_enable_asynccancel` and
//! `__pthread_disable_asynccancel`, docs/benchmarks.md); a single-threaded
//! nginx worker never pays it. rustix makes the system calls directly.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustix::net::{RecvFlags, SendFlags, Shutdown};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Socket {
    stream: TcpStream,
}

impl Socket {
    pub fn new(stream: TcpStream) -> Self {
        Socket { stream }
    }

    /// The tokio stream, for readiness and the rare direct read.
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }

    fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.stream.poll_read_ready(cx))?;
            // SAFETY: `recv` writes only initialised bytes into the unfilled
            // part, and says how many; only those are marked initialised.
            let unfilled: &mut [MaybeUninit<u8>] = unsafe { buf.unfilled_mut() };
            // `try_io` clears the readiness when the call would block.
            let read = self.stream.try_io(Interest::READABLE, || {
                rustix::net::recv(&self.stream, unfilled, RecvFlags::empty())
                    .map(|((filled, _), _)| filled.len())
                    .map_err(io::Error::from)
            });
            match read {
                Ok(n) => {
                    // SAFETY: `recv` initialised these `n` bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_send(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.stream.poll_write_ready(cx))?;
            // No SIGPIPE on a connection the peer closed (as std does).
            let sent = self.stream.try_io(Interest::WRITABLE, || {
                rustix::net::send(&self.stream, data, SendFlags::NOSIGNAL).map_err(io::Error::from)
            });
            match sent {
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                result => return Poll::Ready(result),
            }
        }
    }
}

impl AsyncRead for &Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.poll_recv(cx, buf)
    }
}

impl AsyncWrite for &Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(rustix::net::shutdown(&self.stream, Shutdown::Write).map_err(io::Error::from))
    }
}

impl AsyncRead for Socket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.poll_recv(cx, buf)
    }
}

impl AsyncWrite for Socket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (Socket, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (ours, theirs) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (Socket::new(ours.expect("connect")), theirs.expect("accept").0)
    }

    #[tokio::test]
    async fn bytes_go_both_ways_and_waiting_reads_are_woken() {
        let (mut ours, mut theirs) = pair().await;
        ours.write_all(b"ping").await.expect("write");
        let mut got = [0u8; 4];
        theirs.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"ping");
        // A read that must wait for the peer.
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            ours.read_to_end(&mut got).await.map(|_| got)
        });
        tokio::task::yield_now().await;
        theirs.write_all(b"pong").await.expect("write");
        theirs.shutdown().await.expect("shutdown");
        assert_eq!(reader.await.expect("task").expect("read"), b"pong");
    }

    #[tokio::test]
    async fn a_large_write_waits_for_room_and_shutdown_ends_the_stream() {
        let (mut ours, mut theirs) = pair().await;
        // Far more than the socket buffers hold: the write must wait for
        // the peer to read.
        let data: Vec<u8> = (0..8 << 20).map(|i: u32| i as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            ours.write_all(&data).await?;
            ours.shutdown().await
        });
        let mut got = Vec::new();
        theirs.read_to_end(&mut got).await.expect("read");
        writer.await.expect("task").expect("write");
        assert!(got == expected, "{} bytes arrived", got.len());
    }

    #[tokio::test]
    async fn a_reset_is_an_error_not_a_hang() {
        let (mut ours, theirs) = pair().await;
        theirs.set_zero_linger().expect("linger");
        drop(theirs);
        let mut buf = [0u8; 8];
        let read = ours.read(&mut buf).await;
        assert!(matches!(&read, Err(e) if e.kind() == io::ErrorKind::ConnectionReset), "{read:?}");
    }
}
