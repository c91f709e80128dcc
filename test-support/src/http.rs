//! Plain HTTP/1 requests to a local port, written by hand so a test sees the bytes the
//! server sent, and polling for a condition.

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A port nothing listens on at the moment of the call, and not handed out before in
/// this process: the kernel may give a port just let go again, and a test that asks
/// for two (the metrics port, then the server's) got one port twice, and scraped its
/// own service.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// `GET path` with extra header lines, waiting up to 10 s for the port to open and
/// 30 s for the answer; the whole response as text.
///
/// # Panics
///
/// When the port never opens or the answer does not come in time: a test fails, it
/// does not hang.
pub fn get_with(port: u16, path: &str, headers: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("port {port} never opened: {e}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    if let Err(e) = stream.read_to_string(&mut out) {
        panic!("no whole answer from port {port} within 30 s ({e}); so far: {out:?}");
    }
    out
}

/// `GET` over HTTP/1.0 (no chunked body to decode); `None` while the port is closed.
pub fn get_http10(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    // A server that never answers is no answer, not a hang.
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    Some(out)
}

/// `GET /`: the whole response as text.
pub fn get(port: u16) -> String {
    get_with(port, "/", "")
}

/// Polls `check` every 100 ms for up to `within`; the last value it returned.
pub fn poll<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The next request a stand-in server reads on a connection: its request line and its
/// body (by its `Content-Length`); `None` once the client has closed it.
///
/// # Panics
///
/// On a `Content-Length` that is not a number, or a body cut short: a test's fixture
/// is broken.
pub fn read_request(reader: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let (mut request, mut length) = (None, 0);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().expect("a Content-Length");
        }
        request.get_or_insert(line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the whole body");
    Some((request.unwrap_or_default(), body))
}
