//! The TCP side: the accept loop, one task per connection, refusing connections (listener closed,
//! the same port bound again later) and killing open connections.

use std::{convert::Infallible, io, net::SocketAddr, sync::Arc, time::Duration};

use hyper::service::service_fn;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::{
    net::{TcpListener, TcpSocket, TcpStream},
    sync::watch,
};

use super::{Shared, http};

/// How long `set_refusing` waits for the listener to close or come back.
const LISTENER_SWITCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts to bind the port again (it may briefly still be held).
const REBIND_RETRY: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Serve,
    Refuse,
    Shutdown,
}

pub struct Listener {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    listening: watch::Receiver<bool>,
    /// Every connection task ends when this changes.
    kill: Arc<watch::Sender<u64>>,
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    // Lets the same port be bound again while old connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

impl Listener {
    pub fn start(shared: Arc<Shared>) -> io::Result<Self> {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let (mode, mode_rx) = watch::channel(Mode::Serve);
        let (listening_tx, listening) = watch::channel(true);
        let kill = Arc::new(watch::channel(0).0);
        tokio::spawn(accept_loop(shared, listener, addr, mode_rx, listening_tx, kill.clone()));
        Ok(Listener { addr, mode, listening, kill })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn kill_connections(&self) {
        self.kill.send_modify(|epoch| *epoch += 1);
    }

    /// Refusing closes the listening socket (new connects get ECONNREFUSED) and then kills every
    /// open connection; accepting binds the same port again. Returns once that has happened.
    pub async fn set_refusing(&self, refuse: bool) {
        self.mode.send_replace(if refuse { Mode::Refuse } else { Mode::Serve });
        let mut listening = self.listening.clone();
        let switched = tokio::time::timeout(LISTENER_SWITCH_TIMEOUT, listening.wait_for(|l| *l != refuse)).await;
        assert!(matches!(switched, Ok(Ok(_))), "test API server listener did not switch to refuse={refuse}");
        if refuse {
            self.kill_connections();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.mode.send_replace(Mode::Shutdown);
        self.kill_connections();
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    listening: watch::Sender<bool>,
    kill: Arc<watch::Sender<u64>>,
) {
    let mut listener = Some(listener);
    loop {
        let current_mode = *mode.borrow_and_update();
        match current_mode {
            Mode::Shutdown => return,
            Mode::Refuse => {
                listener = None;
                listening.send_replace(false);
                if mode.changed().await.is_err() {
                    return;
                }
            }
            Mode::Serve => {
                let socket = match listener.take().map_or_else(|| bind(addr), Ok) {
                    Ok(socket) => socket,
                    Err(_) => {
                        tokio::time::sleep(REBIND_RETRY).await;
                        continue;
                    }
                };
                listening.send_replace(true);
                loop {
                    tokio::select! {
                        accepted = socket.accept() => {
                            if let Ok((stream, _)) = accepted {
                                spawn_connection(shared.clone(), stream, kill.subscribe());
                            }
                        }
                        changed = mode.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            break;
                        }
                    }
                }
                listener = Some(socket);
            }
        }
    }
}

fn spawn_connection(shared: Arc<Shared>, stream: TcpStream, mut kill: watch::Receiver<u64>) {
    let _ = stream.set_nodelay(true);
    tokio::spawn(async move {
        let service = service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(http::serve(shared, req).await) }
        });
        let builder = auto::Builder::new(TokioExecutor::new());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        // Dropping the connection future closes the socket mid-whatever, like a crashed server.
        tokio::select! {
            _ = connection => {}
            _ = kill.changed() => {}
        }
    });
}
