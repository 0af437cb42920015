//! A TCP proxy that loses acknowledgements on purpose: the ambiguous failure of DESIGN §5, where
//! the server has done the work and the client never hears of it. Two rules:
//!
//! - [`Proxy::cutting_commits`] (PostgreSQL): cuts the connection right after the server's
//!   CommandComplete("COMMIT") and before the client reads it, at chosen commits;
//! - [`Proxy::dropping_answers`] (HTTP): on the first N connections, relays the request, waits for
//!   the start of the answer, and cuts both sides without passing it on.
//!
//! Loopback only; it ends with the test.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A running proxy; stopped when dropped.
pub struct Proxy {
    pub port: u16,
    state: Arc<State>,
}

enum Rule {
    /// Which COMMIT acknowledgements (1-based, over all connections) to swallow.
    AfterCommits(Vec<usize>),
    /// Drop the first answer on this many first connections.
    FirstAnswers(usize),
}

struct State {
    upstream_port: u16,
    rule: Rule,
    commits: AtomicUsize,
    connections: AtomicUsize,
    cut: AtomicUsize,
    stop: AtomicBool,
}

impl Proxy {
    pub fn cutting_commits(upstream_port: u16, cut_at: Vec<usize>) -> Proxy {
        Proxy::start(upstream_port, Rule::AfterCommits(cut_at))
    }

    pub fn dropping_answers(upstream_port: u16, connections: usize) -> Proxy {
        Proxy::start(upstream_port, Rule::FirstAnswers(connections))
    }

    fn start(upstream_port: u16, rule: Rule) -> Proxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            upstream_port,
            rule,
            commits: AtomicUsize::new(0),
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
                    let _ = relay(client, &state);
                });
            }
        });
        Proxy { port, state }
    }

    /// How many connections were cut.
    pub fn cut(&self) -> usize {
        self.state.cut.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

/// Copies client → server as bytes, and server → client by the proxy's rule.
fn relay(client: TcpStream, state: &State) -> io::Result<()> {
    let server = TcpStream::connect((Ipv4Addr::LOCALHOST, state.upstream_port))?;
    let (mut client_in, mut server_out) = (client.try_clone()?, server.try_clone()?);
    std::thread::spawn(move || {
        let _ = io::copy(&mut client_in, &mut server_out);
        let _ = server_out.shutdown(Shutdown::Both);
    });
    let (mut server_in, mut client_out) = (server, client);
    let cut = |client_out: &TcpStream, server_in: &TcpStream| {
        state.cut.fetch_add(1, Ordering::SeqCst);
        let _ = client_out.shutdown(Shutdown::Both);
        let _ = server_in.shutdown(Shutdown::Both);
    };
    match &state.rule {
        Rule::FirstAnswers(connections) => {
            if state.connections.fetch_add(1, Ordering::SeqCst) < *connections {
                let mut first = [0u8; 1];
                server_in.read_exact(&mut first)?;
                cut(&client_out, &server_in);
                return Ok(());
            }
            io::copy(&mut server_in, &mut client_out)?;
            Ok(())
        }
        // PostgreSQL messages: a type byte, a length, a body; watch for CommandComplete("COMMIT").
        Rule::AfterCommits(cut_at) => loop {
            let mut header = [0u8; 5];
            server_in.read_exact(&mut header)?;
            let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            let mut body = vec![0u8; length.saturating_sub(4)];
            server_in.read_exact(&mut body)?;
            if header[0] == b'C' && body == b"COMMIT\0" {
                let number = state.commits.fetch_add(1, Ordering::SeqCst) + 1;
                if cut_at.contains(&number) {
                    cut(&client_out, &server_in);
                    return Ok(());
                }
            }
            client_out.write_all(&header)?;
            client_out.write_all(&body)?;
        },
    }
}
