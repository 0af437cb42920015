//! A TCP proxy between loader and PostgreSQL that cuts chosen connections right after the server
//! has committed a transaction and before the client reads the acknowledgement: the ambiguous
//! failure of DESIGN §5, produced on purpose. Loopback only; it ends with the test.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A running proxy; stopped when dropped.
pub struct CommitDropProxy {
    pub port: u16,
    state: Arc<State>,
}

struct State {
    upstream_port: u16,
    /// Which COMMIT acknowledgements (1-based, counted over all connections) to swallow.
    cut_at: Vec<usize>,
    commits: AtomicUsize,
    cut: AtomicUsize,
    stop: AtomicBool,
}

impl CommitDropProxy {
    pub fn start(upstream_port: u16, cut_at: Vec<usize>) -> CommitDropProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            upstream_port,
            cut_at,
            commits: AtomicUsize::new(0),
            cut: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let accept_state = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let state = Arc::clone(&accept_state);
                std::thread::spawn(move || {
                    let _ = relay(client, &state);
                });
            }
        });
        CommitDropProxy { port, state }
    }

    /// How many connections were cut after a COMMIT.
    pub fn cut(&self) -> usize {
        self.state.cut.load(Ordering::SeqCst)
    }
}

impl Drop for CommitDropProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

/// Copies client → server as bytes, and server → client message by message, watching for
/// CommandComplete("COMMIT").
fn relay(client: TcpStream, state: &State) -> io::Result<()> {
    let server = TcpStream::connect((Ipv4Addr::LOCALHOST, state.upstream_port))?;
    let (mut client_in, mut server_out) = (client.try_clone()?, server.try_clone()?);
    std::thread::spawn(move || {
        let _ = io::copy(&mut client_in, &mut server_out);
        let _ = server_out.shutdown(Shutdown::Both);
    });
    let (mut server_in, mut client_out) = (server, client);
    loop {
        let mut header = [0u8; 5];
        server_in.read_exact(&mut header)?;
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; length.saturating_sub(4)];
        server_in.read_exact(&mut body)?;
        if header[0] == b'C' && body == b"COMMIT\0" {
            let number = state.commits.fetch_add(1, Ordering::SeqCst) + 1;
            if state.cut_at.contains(&number) {
                state.cut.fetch_add(1, Ordering::SeqCst);
                let _ = client_out.shutdown(Shutdown::Both);
                let _ = server_in.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
        client_out.write_all(&header)?;
        client_out.write_all(&body)?;
    }
}

/// A TCP proxy that loses answers: on the first `cuts` connections it relays the request, waits
/// for the start of the server's answer, then closes both sides without passing it on. The server
/// has done the work; the client sees a dropped connection (HTTP's ambiguous failure).
pub struct AnswerDropProxy {
    pub port: u16,
    state: Arc<DropState>,
}

struct DropState {
    upstream_port: u16,
    cuts: usize,
    connections: AtomicUsize,
    cut: AtomicUsize,
    stop: AtomicBool,
}

impl AnswerDropProxy {
    pub fn start(upstream_port: u16, cuts: usize) -> AnswerDropProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(DropState {
            upstream_port,
            cuts,
            connections: AtomicUsize::new(0),
            cut: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let accept_state = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accept_state.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let state = Arc::clone(&accept_state);
                std::thread::spawn(move || {
                    let _ = relay_or_drop(client, &state);
                });
            }
        });
        AnswerDropProxy { port, state }
    }

    /// How many answers were dropped.
    pub fn cut(&self) -> usize {
        self.state.cut.load(Ordering::SeqCst)
    }
}

impl Drop for AnswerDropProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

fn relay_or_drop(client: TcpStream, state: &DropState) -> io::Result<()> {
    let server = TcpStream::connect((Ipv4Addr::LOCALHOST, state.upstream_port))?;
    let (mut client_in, mut server_out) = (client.try_clone()?, server.try_clone()?);
    std::thread::spawn(move || {
        let _ = io::copy(&mut client_in, &mut server_out);
        let _ = server_out.shutdown(Shutdown::Both);
    });
    let (mut server_in, mut client_out) = (server, client);
    let index = state.connections.fetch_add(1, Ordering::SeqCst);
    if index < state.cuts {
        let mut first = [0u8; 1];
        server_in.read_exact(&mut first)?;
        state.cut.fetch_add(1, Ordering::SeqCst);
        let _ = client_out.shutdown(Shutdown::Both);
        let _ = server_in.shutdown(Shutdown::Both);
        return Ok(());
    }
    io::copy(&mut server_in, &mut client_out)?;
    Ok(())
}
