//! `healthcheck`: exits 0 when something accepts connections on `127.0.0.1:$PORT`
//! (default 8080) within 2 s, else 1 with the reason on stderr. For container images
//! without a shell or curl (the observability stack's image is distroless). Plain std:
//! no runtime, nothing to start.
//!
//! It connects and sends nothing: a request would be the service's first response,
//! and would start its deferred work and exporters on the healthcheck's schedule
//! instead of the first real request's.

use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

fn check() -> Result<SocketAddr, String> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let port: u16 = port
        .parse()
        .map_err(|_| format!("PORT is `{port}`, not a port number from 1 to 65535"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
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
