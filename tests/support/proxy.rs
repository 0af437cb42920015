//! A TCP proxy that loses acknowledgements on purpose: the ambiguous failure, where
//! the server has done the work and the client never hears of it. Two rules:
//!
//! - [`Proxy::cutting_commits`] (PostgreSQL): cuts the connection right after the server's
//!   CommandComplete("COMMIT") and before the client reads it, at chosen commits;
//! - [`Proxy::dropping_answers`] (HTTP): on the first N connections, relays the request, waits for
//!   the start of the answer, and cuts both sides without passing it on;
//! - [`Proxy::chaos`] (any protocol): the first connections each get one [`Fault`], a reset, a
//!   stall or a delay, once a random number of the client's bytes has passed.
//!
//! Loopback only; it ends with the test.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the chaos proxy does to one connection.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Abort the connection: the client gets a TCP reset (SO_LINGER 0), the server a close.
    Reset,
    /// Relay nothing either way for this long, then go on.
    Stall(Duration),
    /// From then on, hold every chunk of the server's answers this long.
    Delay(Duration),
}

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
    /// Connection `i` gets `faults[i]` once `offsets[i]` bytes of the client's have passed.
    Chaos {
        faults: Vec<Fault>,
        offsets: Vec<u64>,
    },
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

    /// Connection `i` (in the order accepted) gets `faults[i]` after a number of the client's
    /// bytes drawn from `bytes` with `seed`; later connections are relayed untouched.
    pub fn chaos(
        upstream_port: u16,
        faults: Vec<Fault>,
        bytes: std::ops::Range<u64>,
        seed: u64,
    ) -> Proxy {
        let mut random = fastrand::Rng::with_seed(seed);
        let offsets = faults.iter().map(|_| random.u64(bytes.clone())).collect();
        Proxy::start(upstream_port, Rule::Chaos { faults, offsets })
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

    /// How many connections were cut (or given their fault, for [`Proxy::chaos`]).
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
    if let Rule::Chaos { faults, offsets } = &state.rule {
        let connection = state.connections.fetch_add(1, Ordering::SeqCst);
        let fault = faults
            .get(connection)
            .map(|&fault| (fault, offsets[connection]));
        return relay_with_fault(client, server, fault, state);
    }
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
        Rule::Chaos { .. } => unreachable!("relayed by relay_with_fault"),
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

/// Relays one connection of a chaos proxy, giving it `fault` once `offset` client bytes passed.
fn relay_with_fault(
    client: TcpStream,
    server: TcpStream,
    fault: Option<(Fault, u64)>,
    state: &State,
) -> io::Result<()> {
    // Until when nothing is relayed, and how long each answer chunk is held.
    let stalled_until = Arc::new(Mutex::new(None::<Instant>));
    let delay = Arc::new(Mutex::new(Duration::ZERO));
    let (mut server_in, mut client_out) = (server.try_clone()?, client.try_clone()?);
    let aborted = Arc::new(AtomicBool::new(false));
    let (answer_stall, answer_delay) = (Arc::clone(&stalled_until), Arc::clone(&delay));
    let answer_aborted = Arc::clone(&aborted);
    std::thread::spawn(move || {
        let mut chunk = vec![0u8; 16 * 1024];
        while let Ok(read @ 1..) = server_in.read(&mut chunk) {
            wait_out(&answer_stall);
            std::thread::sleep(*answer_delay.lock().unwrap());
            if client_out.write_all(&chunk[..read]).is_err() {
                break;
            }
        }
        // After a reset the client must see no orderly close first.
        if !answer_aborted.load(Ordering::SeqCst) {
            let _ = client_out.shutdown(Shutdown::Write);
        }
    });
    let (mut client_in, mut server_out) = (client, server);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut passed = 0u64;
    let mut pending = fault;
    loop {
        let read = client_in.read(&mut chunk)?;
        if read == 0 {
            let _ = server_out.shutdown(Shutdown::Write);
            return Ok(());
        }
        passed += read as u64;
        if let Some((fault, _)) = pending.filter(|&(_, offset)| passed >= offset) {
            pending = None;
            state.cut.fetch_add(1, Ordering::SeqCst);
            match fault {
                Fault::Reset => {
                    let abort = nix::libc::linger {
                        l_onoff: 1,
                        l_linger: 0,
                    };
                    nix::sys::socket::setsockopt(
                        &client_in,
                        nix::sys::socket::sockopt::Linger,
                        &abort,
                    )?;
                    aborted.store(true, Ordering::SeqCst);
                    // The answer thread sees the server's end close and drops its handle; this
                    // one drops the last on return, and the close with linger 0 is a reset.
                    let _ = server_out.shutdown(Shutdown::Both);
                    return Ok(());
                }
                Fault::Stall(length) => {
                    *stalled_until.lock().unwrap() = Some(Instant::now() + length);
                }
                Fault::Delay(length) => *delay.lock().unwrap() = length,
            }
        }
        wait_out(&stalled_until);
        server_out.write_all(&chunk[..read])?;
    }
}

/// Sleeps until a stall set in `until` is over.
fn wait_out(until: &Mutex<Option<Instant>>) {
    let end = *until.lock().unwrap();
    if let Some(left) = end.and_then(|end| end.checked_duration_since(Instant::now())) {
        std::thread::sleep(left);
    }
}
