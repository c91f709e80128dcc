//! Reading an HTTP/1.1 answer the harness waits for (a measured program's, or the
//! Lambda emulator's to an invocation): whole, bounded in size and time, and refused
//! where the connection closed part-way through it (a cut answer would stop the
//! clock at the close and count as an answer).

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::RUN_TIMEOUT;

/// The largest response read: the harness times a first answer, not a download.
const MAX_RESPONSE: usize = 1 << 20;

/// Reads one HTTP/1.1 response (its head, then `Content-Length` bytes, or to EOF),
/// calling `waiting` every 20 ms without an answer: an error from it (the program
/// that should answer has exited) ends the wait. The stream's own read timeout is
/// replaced by [`RUN_TIMEOUT`] in all.
pub(super) fn read_response_while(
    stream: &mut TcpStream,
    waiting: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<u8>> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    stream.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        // Checked on every pass: a program that keeps sending (a stream, an endless
        // body) never lets a read time out.
        if Instant::now() > deadline {
            bail!("no whole response within {RUN_TIMEOUT:?}");
        }
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                waiting()?;
                if Instant::now() > deadline {
                    bail!("no response within {RUN_TIMEOUT:?}");
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_RESPONSE {
            bail!(
                "the response is larger than {} KiB; measure a path with a short answer (--url)",
                MAX_RESPONSE >> 10
            );
        }
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            // A length past what is read at all is refused at once: added to the
            // head's, the largest would overflow (a panic in a debug build, a short
            // sum and the head taken for the whole answer in a release one).
            if let Some(len) = length {
                if len > MAX_RESPONSE {
                    bail!(
                        "the response announces {len} bytes, more than {} KiB; measure a path with a short answer (--url)",
                        MAX_RESPONSE >> 10
                    );
                }
                if buf.len() >= end + 4 + len {
                    return Ok(buf);
                }
            }
        }
        if n == 0 {
            return closed_with(buf);
        }
    }
}

/// The response read until the connection closed: whole only where its end is the
/// close (a head without `Content-Length` or chunks); a cut one is no answer, and
/// counted as one it would stop the clock at the close.
fn closed_with(buf: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        if buf.is_empty() {
            bail!("connection closed without a response");
        }
        bail!("connection closed before the end of the response's head");
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let body = buf.len() - (end + 4);
    if let Some(length) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        bail!("connection closed after {body} of the {length} body bytes the head announced");
    }
    let chunked = head
        .lines()
        .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    if chunked && !buf.ends_with(b"0\r\n\r\n") {
        bail!("connection closed before the last chunk of the response");
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn read_response(stream: &mut TcpStream) -> anyhow::Result<Vec<u8>> {
        read_response_while(stream, &mut || Ok(()))
    }

    /// A program that never stops sending (a stream, an endless body) is cut off with
    /// a message, not read into memory for ever.
    #[test]
    fn an_answer_that_never_ends_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
            let chunk = [b'x'; 4096];
            while stream.write_all(&chunk).is_ok() {}
        });
        let mut stream = TcpStream::connect(addr).unwrap();
        let err = read_response(&mut stream).unwrap_err().to_string();
        assert!(err.contains("larger than 1024 KiB"), "{err}");
    }

    /// A length past what is read at all is refused at once: added to the head's,
    /// `usize::MAX` overflowed (a panic in a debug build, in a release one the head
    /// taken for the whole answer).
    #[test]
    fn a_length_past_what_is_read_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\nhi",
                usize::MAX
            );
            let _ = stream.write_all(head.as_bytes());
            std::thread::sleep(Duration::from_secs(1));
        });
        let mut stream = TcpStream::connect(addr).unwrap();
        let err = read_response(&mut stream).unwrap_err().to_string();
        assert!(err.contains("more than 1024 KiB"), "{err}");
    }

    /// A connection closed part-way through the answer is no answer: it stopped the
    /// clock at the close and counted as a 200.
    #[test]
    fn an_answer_cut_short_is_refused() {
        // A connection to a server that sends `sent` and closes.
        let answering = |sent: &'static [u8]| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            std::thread::spawn(move || {
                let (mut stream, _) = listener.accept().unwrap();
                let _ = stream.write_all(sent);
            });
            TcpStream::connect(addr).unwrap()
        };
        for (sent, said) in [
            (
                &b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"[..],
                "after 3 of the 10 body bytes",
            ),
            (
                b"HTTP/1.1 200 OK\r\ncontent-le",
                "before the end of the response's head",
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel",
                "before the last chunk",
            ),
            (b"", "without a response"),
        ] {
            let err = read_response(&mut answering(sent)).unwrap_err().to_string();
            assert!(err.contains(said), "{err}");
        }
        // Whole where the close is its end.
        for whole in [
            &b"HTTP/1.0 200 OK\r\n\r\nhello"[..],
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ] {
            assert_eq!(read_response(&mut answering(whole)).unwrap(), whole);
        }
    }
}
