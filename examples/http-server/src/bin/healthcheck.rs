//! `healthcheck`: exits 0 when something accepts connections where the service listens
//! (`BIND` and `PORT` as the service reads them: default `127.0.0.1:8080`; an
//! unspecified `BIND` such as `0.0.0.0` is checked on loopback) within 2 s, else 1 with
//! the reason on stderr. For container images without a shell or curl (the
//! observability stack's image is distroless). Plain std: no runtime, nothing to start.
//!
//! It connects and sends nothing: a request would be the service's first response,
//! and would start its deferred work and exporters on the healthcheck's schedule
//! instead of the first real request's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

fn check() -> Result<SocketAddr, String> {
    let mut addr = http_server::listen_addr().map_err(|e| e.to_string())?;
    if addr.port() == 0 {
        return Err(
            "PORT is 0 (any free port): the healthcheck needs the port the service listens on"
                .into(),
        );
    }
    // A service listening on every address answers on loopback.
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map(|_| addr)
        .map_err(|e| format!("nothing accepts connections on {addr}: {e}"))
}

fn main() -> ExitCode {
    match check() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}
