//! One probe user's connection, kept lean: a blocking socket (plain, or rustls over it), the
//! request written from one buffer encoded once, the answer's head parsed in place with httparse
//! and its body framed by Content-Length, chunked coding or the end of the connection. Once its
//! buffer exists nothing is allocated per request: a probe on the server's own machine takes its
//! CPU from the server it measures, so it must cost the server as little as it can.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::events::Framing;

/// The most bytes an answer's head may take, and the size of a connection's read buffer.
const BUFFER_BYTES: usize = 32 * 1024;

/// The most header lines an answer's head may have.
const MAX_HEADERS: usize = 100;

/// How much nearer than the socket's read timeout a deadline must come before the timeout is
/// lowered to it: each change is a system call, and most answers end long before their deadline.
const TIMEOUT_SLACK: Duration = Duration::from_millis(10);

/// Where and how every user of a probe connects.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The URL's host, resolved once, in the resolver's order.
    pub addresses: Vec<SocketAddr>,
    /// For https: the rustls settings, and the name the server's certificate must hold.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    pub connect_timeout: Duration,
    /// Longest time one exchange may take, from connecting to the last byte.
    pub timeout: Duration,
}

impl Endpoint {
    /// Opens one connection and closes it again: a probe whose first connection is refused or
    /// never taken would measure nothing but a wrong host or port, so it stops at once, saying
    /// which address failed and how.
    pub(crate) fn check_reachable(&self) -> Result<(), String> {
        let mut failed = None;
        for address in &self.addresses {
            match TcpStream::connect_timeout(address, self.connect_timeout) {
                Ok(_) => return Ok(()),
                Err(err) => failed = Some((address, err)),
            }
        }
        let Some((address, err)) = failed else {
            return Err("the URL's host has no address".into());
        };
        Err(match err.kind() {
            io::ErrorKind::ConnectionRefused => format!(
                "nothing listens on {address} (connection refused): check the URL's host and port"
            ),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => format!(
                "{address} took no connection within --connect-timeout {}: check the URL's host \
                 and port (or a firewall), or raise --connect-timeout",
                humantime::format_duration(self.connect_timeout)
            ),
            _ => format!("cannot connect to {address}: {err}"),
        })
    }
}

/// Why an exchange got no whole answer.
#[derive(Debug)]
pub(crate) enum WireError {
    /// No address of the host took the connection; the last address's error.
    Connect(io::Error),
    /// The socket or TLS failed while sending or reading.
    Io(io::Error),
    /// The exchange passed its deadline.
    Timeout,
    /// The server closed the connection before the answer was whole.
    Closed,
    /// The answer is not HTTP/1.x as it must be.
    Protocol(&'static str),
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFraming {
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// What an answer's head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub status: u16,
    /// How the body is cut into events, when its Content-Type names an event stream.
    pub events: Option<Framing>,
    body: BodyFraming,
    keep_alive: bool,
}

/// A plain or a TLS stream over one socket.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(socket) => socket,
            Stream::Tls(tls) => &tls.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.read(buffer),
            Stream::Tls(tls) => tls.read(buffer),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(socket) => socket.write(bytes),
            Stream::Tls(tls) => tls.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(socket) => socket.flush(),
            Stream::Tls(tls) => tls.flush(),
        }
    }
}

/// One user's connection, opened on its first request and kept alive while the server allows.
pub(crate) struct Connection<'a> {
    endpoint: &'a Endpoint,
    stream: Option<Stream>,
    /// Bytes read and not yet taken are `buffer[start..end]`.
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    /// When the exchange in progress must end.
    deadline: Instant,
    /// The read timeout the socket has now.
    socket_timeout: Duration,
    /// Whether the exchange in progress received any byte.
    answered: bool,
}

impl<'a> Connection<'a> {
    pub(crate) fn new(endpoint: &'a Endpoint) -> Connection<'a> {
        Connection {
            endpoint,
            stream: None,
            buffer: vec![0; BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            deadline: Instant::now(),
            socket_timeout: endpoint.timeout,
            answered: false,
        }
    }

    /// Sends `request` (connecting first when no connection is open) and reads the answer's
    /// head; `head_request` says the answer has no body whatever its head says. A kept-alive
    /// connection the server closed before answering is opened again and the request sent once
    /// more, as HTTP clients do — but only an `idempotent` one: a server may have worked on a
    /// POST before it closed, and sending it twice would hide that failure.
    pub(crate) fn send(
        &mut self,
        request: &[u8],
        head_request: bool,
        idempotent: bool,
        sent: Instant,
    ) -> Result<Head, WireError> {
        // The timeout is at most a day, which no monotonic clock overflows on.
        self.deadline = sent.checked_add(self.endpoint.timeout).unwrap_or(sent);
        let reused = self.stream.is_some();
        let first = self.try_send(request, head_request);
        let result = match first {
            Err(WireError::Closed | WireError::Io(_)) if reused && idempotent && !self.answered => {
                self.close();
                self.try_send(request, head_request)
            }
            first => first,
        };
        if result.is_err() {
            self.close();
        }
        result
    }

    /// Reads the body of the answer `head` begins, handing each piece to `on_body` as it
    /// arrives (de-chunked), and closes the connection when the answer says so.
    pub(crate) fn read_body(
        &mut self,
        head: &Head,
        on_body: &mut dyn FnMut(&[u8]),
    ) -> Result<(), WireError> {
        let result = match head.body {
            BodyFraming::Empty => Ok(()),
            BodyFraming::Length(length) => self.read_length(length, on_body),
            BodyFraming::UntilClose => self.read_until_close(on_body),
            BodyFraming::Chunked => self.read_chunked(on_body),
        };
        if result.is_err() || !head.keep_alive {
            self.close();
        }
        result
    }

    fn close(&mut self) {
        self.stream = None;
        self.start = 0;
        self.end = 0;
    }

    fn try_send(&mut self, request: &[u8], head_request: bool) -> Result<Head, WireError> {
        self.answered = false;
        if self.stream.is_none() {
            self.connect()?;
        } else if self.socket_timeout < self.endpoint.timeout {
            self.set_read_timeout(self.endpoint.timeout)?;
        }
        let stream = self.stream.as_mut().ok_or(WireError::Closed)?;
        stream
            .write_all(request)
            .and_then(|()| stream.flush())
            .map_err(read_error)?;
        self.read_head(head_request)
    }

    /// Connects to the first address that takes the connection, within what is left of the
    /// exchange's deadline; the socket's timeouts, and so the TLS handshake's, are that too.
    fn connect(&mut self) -> Result<(), WireError> {
        let endpoint = self.endpoint;
        let mut last_error = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for address in &endpoint.addresses {
            let left = self.time_left()?;
            let connect_timeout = endpoint.connect_timeout.min(left);
            let socket = match TcpStream::connect_timeout(address, connect_timeout) {
                Ok(socket) => socket,
                Err(err) => {
                    last_error = err;
                    continue;
                }
            };
            let left = self.time_left()?;
            let configured = socket
                .set_nodelay(true)
                .and_then(|()| socket.set_read_timeout(Some(left)))
                .and_then(|()| socket.set_write_timeout(Some(left)));
            configured.map_err(WireError::Io)?;
            self.socket_timeout = left;
            self.stream = Some(match &endpoint.tls {
                None => Stream::Plain(socket),
                Some((config, name)) => {
                    let tls = ClientConnection::new(Arc::clone(config), name.clone())
                        .map_err(|err| WireError::Io(io::Error::other(err)))?;
                    Stream::Tls(Box::new(StreamOwned::new(tls, socket)))
                }
            });
            self.start = 0;
            self.end = 0;
            return Ok(());
        }
        Err(WireError::Connect(last_error))
    }

    /// What is left of the exchange's deadline; none left is a timeout (and never a zero socket
    /// timeout, which the socket would refuse).
    fn time_left(&self) -> Result<Duration, WireError> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or(WireError::Timeout)
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> Result<(), WireError> {
        let stream = self.stream.as_ref().ok_or(WireError::Closed)?;
        stream
            .socket()
            .set_read_timeout(Some(timeout))
            .map_err(WireError::Io)?;
        self.socket_timeout = timeout;
        Ok(())
    }

    /// Reads more of the answer after `buffer[start..end]`; returns how many bytes came (0 when
    /// the server closed the connection).
    fn fill(&mut self) -> Result<usize, WireError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buffer.len() {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buffer.len() {
            return Err(WireError::Protocol(
                "the answer's head, or a line of its chunked body, is longer than 32 KiB",
            ));
        }
        let remaining = self.time_left()?;
        if remaining + TIMEOUT_SLACK < self.socket_timeout {
            self.set_read_timeout(remaining)?;
        }
        let stream = self.stream.as_mut().ok_or(WireError::Closed)?;
        loop {
            match stream.read(&mut self.buffer[self.end..]) {
                Ok(read) => {
                    self.end += read;
                    self.answered |= read > 0;
                    return Ok(read);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // rustls' word for a server that closed without close_notify: the end of the
                // connection, as for plain TCP (an answer cut short still fails its framing).
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(err) => return Err(read_error(err)),
            }
        }
    }

    fn read_head(&mut self, head_request: bool) -> Result<Head, WireError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buffer[self.start..self.end]) {
                Ok(httparse::Status::Complete(length)) => {
                    let head = Head::of(&response, head_request)?;
                    self.start += length;
                    // 100 Continue and the like come before the answer itself.
                    if (100..200).contains(&head.status) && head.status != 101 {
                        continue;
                    }
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) => {}
                Err(_) => return Err(WireError::Protocol("the answer's head is not HTTP/1.x")),
            }
            if self.fill()? == 0 {
                return Err(WireError::Closed);
            }
        }
    }

    fn read_length(
        &mut self,
        length: u64,
        on_body: &mut dyn FnMut(&[u8]),
    ) -> Result<(), WireError> {
        let mut left = length;
        loop {
            let buffered = (self.end - self.start) as u64;
            let take = buffered.min(left) as usize;
            if take > 0 {
                on_body(&self.buffer[self.start..self.start + take]);
                self.start += take;
                left -= take as u64;
            }
            if left == 0 {
                return Ok(());
            }
            if self.fill()? == 0 {
                return Err(WireError::Closed);
            }
        }
    }

    fn read_until_close(&mut self, on_body: &mut dyn FnMut(&[u8])) -> Result<(), WireError> {
        loop {
            if self.start < self.end {
                on_body(&self.buffer[self.start..self.end]);
                self.start = self.end;
            }
            if self.fill()? == 0 {
                return Ok(());
            }
        }
    }

    fn read_chunked(&mut self, on_body: &mut dyn FnMut(&[u8])) -> Result<(), WireError> {
        let mut state = Chunk::Size;
        loop {
            let input = &self.buffer[self.start..self.end];
            let line_end = || memchr::memchr(b'\n', input);
            let taken = match state {
                Chunk::Data(left) if !input.is_empty() => {
                    let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    on_body(&input[..take]);
                    let left = left - take as u64;
                    state = if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    };
                    Some(take)
                }
                Chunk::Data(_) => None,
                Chunk::Size => line_end().map(|end| {
                    state = match chunk_size(&input[..end]) {
                        Some(0) => Chunk::Trailer,
                        Some(size) => Chunk::Data(size),
                        None => Chunk::Malformed,
                    };
                    end + 1
                }),
                Chunk::DataEnd => line_end().map(|end| {
                    if input[..end] != *b"" && input[..end] != *b"\r" {
                        state = Chunk::Malformed;
                    } else {
                        state = Chunk::Size;
                    }
                    end + 1
                }),
                Chunk::Trailer => line_end().map(|end| {
                    if input[..end] == *b"" || input[..end] == *b"\r" {
                        state = Chunk::Done;
                    }
                    end + 1
                }),
                Chunk::Malformed => {
                    return Err(WireError::Protocol(
                        "the answer's chunked body is malformed",
                    ))
                }
                Chunk::Done => return Ok(()),
            };
            match taken {
                Some(taken) => self.start += taken,
                None => {
                    if self.fill()? == 0 {
                        return Err(WireError::Closed);
                    }
                }
            }
        }
    }
}

/// Where a chunked body's reader stands.
#[derive(Debug, Clone, Copy)]
enum Chunk {
    /// Before a chunk's size line.
    Size,
    /// Inside a chunk, with this many bytes left.
    Data(u64),
    /// Before the line end that follows a chunk's bytes.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailer,
    Malformed,
    Done,
}

/// The size of a chunk from its size line (`1a3f`, `1a3f;name=value`, `\r` at its end).
fn chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line
        .split(|&byte| byte == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    digits.iter().try_fold(0u64, |size, &digit| {
        let value = (digit as char).to_digit(16)?;
        Some(size << 4 | u64::from(value))
    })
}

/// A failed read or write: a socket timeout is the exchange's deadline passing.
fn read_error(err: io::Error) -> WireError {
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => WireError::Timeout,
        _ => WireError::Io(err),
    }
}

impl Head {
    fn of(response: &httparse::Response<'_, '_>, head_request: bool) -> Result<Head, WireError> {
        let status = response.code.unwrap_or_default();
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        let mut keep_alive = false;
        let mut events = None;
        for header in response.headers.iter() {
            let value = header.value;
            if header.name.eq_ignore_ascii_case("content-length") {
                let parsed = std::str::from_utf8(value)
                    .ok()
                    .map(str::trim)
                    .filter(|text| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|text| text.parse::<u64>().ok())
                    .ok_or(WireError::Protocol(
                        "the answer's Content-Length is not a number",
                    ))?;
                if length.is_some_and(|length| length != parsed) {
                    return Err(WireError::Protocol("the answer has two Content-Lengths"));
                }
                length = Some(parsed);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(|&byte| byte == b',')
                    .next()
                    .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            } else if header.name.eq_ignore_ascii_case("content-type") {
                events = Framing::of_content_type(value);
            } else if header.name.eq_ignore_ascii_case("connection") {
                for token in value.split(|&byte| byte == b',') {
                    close |= token.trim_ascii().eq_ignore_ascii_case(b"close");
                    keep_alive |= token.trim_ascii().eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        let no_body = head_request || status < 200 || status == 204 || status == 304;
        let body = match (no_body, chunked, length) {
            (true, _, _) => BodyFraming::Empty,
            (false, true, _) => BodyFraming::Chunked,
            (false, false, Some(0)) => BodyFraming::Empty,
            (false, false, Some(length)) => BodyFraming::Length(length),
            (false, false, None) => BodyFraming::UntilClose,
        };
        // HTTP/1.1 keeps the connection unless told not to; HTTP/1.0 only when told to.
        let persistent = if response.version == Some(1) {
            !close
        } else {
            keep_alive && !close
        };
        Ok(Head {
            status,
            events,
            body,
            // After 101 Switching Protocols the connection speaks something else.
            keep_alive: persistent && body != BodyFraming::UntilClose && status != 101,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_hex_with_extensions_and_line_ends() {
        assert_eq!(chunk_size(b"1a3f"), Some(0x1a3f));
        assert_eq!(chunk_size(b"1A3F;name=value\r"), Some(0x1a3f));
        assert_eq!(chunk_size(b"0\r"), Some(0));
        assert_eq!(chunk_size(b" 10 \r"), Some(16));
        for bad in [&b""[..], b"\r", b"xyz", b"-1", b"1000000000000000"] {
            assert_eq!(chunk_size(bad), None, "{bad:?}");
        }
    }

    fn head(answer: &[u8], head_request: bool) -> Head {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        response.parse(answer).unwrap();
        Head::of(&response, head_request).unwrap()
    }

    #[test]
    fn heads_say_how_the_body_ends_and_whether_the_connection_stays() {
        let length = head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false);
        assert_eq!(
            (length.body, length.keep_alive, length.events),
            (BodyFraming::Length(5), true, None)
        );
        let stream = head(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n\r\n",
            false,
        );
        assert_eq!(stream.events, Some(Framing::Sse));
        let chunked = head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n",
            false,
        );
        assert_eq!(
            (chunked.body, chunked.keep_alive),
            (BodyFraming::Chunked, false)
        );
        let old = head(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", false);
        assert!(!old.keep_alive);
        let old_kept = head(
            b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: Keep-Alive\r\n\r\n",
            false,
        );
        assert!(old_kept.keep_alive);
        let until_close = head(b"HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!(
            (until_close.body, until_close.keep_alive),
            (BodyFraming::UntilClose, false)
        );
        for (answer, head_request) in [
            (&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"[..], true),
            (b"HTTP/1.1 204 No Content\r\n\r\n", false),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
                false,
            ),
        ] {
            let empty = head(answer, head_request);
            assert_eq!((empty.body, empty.keep_alive), (BodyFraming::Empty, true));
        }
    }
}
