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

use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustix::net::{RecvFlags, SendFlags, Shutdown, SocketFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Registers a std socket with the runtime.
fn register<T: AsFd + AsRawFd>(socket: T) -> io::Result<AsyncFd<T>> {
    // SAFETY: a type that is `AsFd` owns or borrows an open descriptor for
    // its whole life, and the `AsyncFd` owns `socket` until it drops it:
    // the descriptor stays open and the same while registered.
    Ok(unsafe { AsyncFd::register(socket) }?)
}

/// A listening socket that accepts into `Socket`s.
#[derive(Debug)]
pub struct Listener {
    fd: AsyncFd<std::net::TcpListener>,
}

impl Listener {
    pub fn new(listener: TcpListener) -> io::Result<Self> {
        Ok(Listener { fd: register(listener.into_std()?)? })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.fd.get_ref().local_addr()
    }
}

#[derive(Debug)]
pub struct Socket {
    fd: AsyncFd<std::net::TcpStream>,
}

impl Socket {
    /// Takes the connection over from tokio's stream: its registration
    /// with the runtime is dropped and made again, two more `epoll_ctl`
    /// per connection (used for upstream connections, which are pooled;
    /// clients come through `accept`).
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        Ok(Socket { fd: register(stream.into_std()?)? })
    }

    /// Accepts the next connection on `listener` straight into a Socket:
    /// one registration with the runtime, where tokio's accept and `new`
    /// would register it, take it back and register it again.
    pub async fn accept(listener: &Listener) -> io::Result<(Self, SocketAddr)> {
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let (fd, peer) = listener
            .fd
            .async_io(Interest::READABLE, |l| rustix::net::acceptfrom_with(l, flags).map_err(io::Error::from))
            .await?;
        let peer = peer
            .and_then(|peer| SocketAddr::try_from(peer).ok())
            .ok_or_else(|| io::Error::other("accepted a connection without an IP peer address"))?;
        Ok((Socket { fd: register(std::net::TcpStream::from(fd))? }, peer))
    }

    pub fn get_ref(&self) -> &std::net::TcpStream {
        self.fd.get_ref()
    }

    /// Whether the peer has neither closed the connection nor sent
    /// anything: what an idle pooled connection must be to carry a request.
    /// Costs no system call unless the socket was reported readable.
    pub fn is_quiet(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.fd.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readable: closed (0), unasked bytes, or a stale flag (would
            // block, which also clears it).
            Poll::Ready(Ok(mut ready)) => ready.try_io(|fd| fd.get_ref().read(&mut [0u8; 1])).is_err(),
        }
    }

    fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut ready = ready!(self.fd.poll_read_ready(cx))?;
            // SAFETY: `recv` writes only initialised bytes into the unfilled
            // part, and says how many; only those are marked initialised.
            let unfilled: &mut [MaybeUninit<u8>] = unsafe { buf.unfilled_mut() };
            let room = unfilled.len();
            // `try_io` clears the readiness when the call would block.
            let read = ready.try_io(|fd| {
                rustix::net::recv(fd, unfilled, RecvFlags::empty())
                    .map(|((filled, _), _)| filled.len())
                    .map_err(io::Error::from)
            });
            match read {
                Ok(Ok(n)) => {
                    // Less than there was room for: the socket is drained,
                    // so the next read waits for the next readiness event
                    // instead of making a system call that would block (as
                    // tokio's own streams do).
                    if n > 0 && n < room {
                        ready.clear_ready();
                    }
                    // SAFETY: `recv` initialised these `n` bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }

    fn poll_send(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut ready = ready!(self.fd.poll_write_ready(cx))?;
            // No SIGPIPE on a connection the peer closed (as std does).
            match ready.try_io(|fd| rustix::net::send(fd, data, SendFlags::NOSIGNAL).map_err(io::Error::from)) {
                Ok(Ok(n)) => {
                    // A short write: the socket buffer is full.
                    if n > 0 && n < data.len() {
                        ready.clear_ready();
                    }
                    return Poll::Ready(Ok(n));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
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
        Poll::Ready(rustix::net::shutdown(&self.fd, Shutdown::Write).map_err(io::Error::from))
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
        (Socket::new(ours.expect("connect")).expect("register"), theirs.expect("accept").0)
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
    async fn a_listener_accepts_with_the_peer_address() {
        let listener = Listener::new(TcpListener::bind("127.0.0.1:0").await.expect("bind")).expect("register");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), Socket::accept(&listener));
        let (mut client, (mut ours, peer)) = (client.expect("connect"), accepted.expect("accept"));
        assert_eq!(peer, client.local_addr().expect("client addr"));
        client.write_all(b"hi").await.expect("write");
        let mut got = [0u8; 2];
        ours.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"hi");
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
