//! A program given on the command line, as the measurement engine runs it: found as a
//! shell finds it, named after its file, and its `--url`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::measure::Target;

/// A program or command as given: a path, or a name on `PATH`, then its arguments.
///
/// # Errors
///
/// An empty command, or a program that does not exist.
pub fn target(spec: &str) -> anyhow::Result<Target> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    target_of_words(&words)
}

/// A program and its arguments, each word as given (no splitting at spaces).
///
/// # Errors
///
/// No words, or a program that does not exist.
pub fn target_of_words<S: AsRef<str>>(words: &[S]) -> anyhow::Result<Target> {
    let mut words = words.iter().map(AsRef::as_ref);
    let program = words
        .next()
        .filter(|p| !p.is_empty())
        .context("the command is empty: give a program, and its arguments after it")?;
    let path = find_program(program)?;
    let base = |p: &str| {
        Path::new(p)
            .file_name()
            .map_or_else(|| p.to_owned(), |n| n.to_string_lossy().into_owned())
    };
    let args: Vec<String> = words.map(Into::into).collect();
    // A wrapper such as `qemu-aarch64 path/to/app` is named after both.
    let name = match args.iter().find(|a| executable(Path::new(a.as_str()))) {
        Some(inner) => format!("{} {}", base(program), base(inner)),
        None => base(program),
    };
    let mut target = Target::new(name, path);
    target.args = args.into_iter().map(Into::into).collect();
    Ok(target)
}

pub(crate) fn find_program(program: &str) -> anyhow::Result<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return match std::fs::metadata(&path) {
            Err(_) => {
                bail!("`{program}` does not exist (build it first, or give the path to the binary)")
            }
            Ok(m) if !m.is_file() => {
                bail!("`{program}` is not a file (give the path to a program)")
            }
            Ok(_) if !executable(&path) => {
                bail!("`{program}` is not executable (chmod +x, or give the program that runs it)")
            }
            Ok(_) => Ok(path),
        };
    }
    // As a shell looks: the first executable file of that name on PATH.
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .with_context(|| {
            // As a shell: a name without a `/` is looked for on PATH only.
            if std::path::Path::new(program).is_file() {
                format!("`{program}` is not on PATH; give the file here as `./{program}`")
            } else {
                format!("`{program}` is not a file and not on PATH")
            }
        })
}

/// Whether `path` is a file this process may execute.
fn executable(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) on a valid C string.
    path.is_file() && unsafe { libc::access(c_path.as_ptr(), libc::X_OK) } == 0
}

/// Applies `--url`: `http://127.0.0.1:PORT/path`, where `PORT` is a number (the
/// program listens there) or `$PORT` (a free port, given to it in `PORT`).
///
/// # Errors
///
/// Anything else, saying what is accepted.
pub fn apply_url(target: &mut Target, url: &str) -> anyhow::Result<()> {
    let bad = || {
        anyhow::anyhow!(
            "set --url to http://127.0.0.1:PORT/PATH (PORT a number or $PORT), got `{url}`"
        )
    };
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
    target.ip = match host {
        "127.0.0.1" => std::net::Ipv4Addr::LOCALHOST.into(),
        // Where a server that binds `localhost` listens: the name's first address.
        "localhost" => std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 0))
            .ok()
            .and_then(|mut all| all.next())
            .map(|a| a.ip())
            .with_context(|| format!("--url {url}: `localhost` resolves to no address here"))?,
        _ => bail!("--url must be on this machine (127.0.0.1 or localhost), got `{url}`"),
    };
    target.port = match port {
        "$PORT" => None,
        "" => bail!(
            "{}; the port is empty, as where a shell replaced an unquoted $PORT with nothing: quote it ('$PORT'), or leave --url out, whose port is $PORT",
            bad()
        ),
        p => Some(p.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?),
    };
    // Sent as it is on the request line: a space or a line break would make another
    // request, or other headers.
    if path
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        bail!("--url {url}: the path has a space or a control character; percent-encode it (%20)");
    }
    target.path = if path.is_empty() {
        "/".into()
    } else {
        path.into()
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--url` with `localhost` measures at the name's first address, where a server
    /// binding `localhost` listens; 127.0.0.1 is itself; other hosts are refused.
    #[test]
    fn a_url_on_localhost_goes_to_its_first_address() {
        let mut target = Target::new("t", "/bin/true");
        apply_url(&mut target, "http://localhost:8080/health").unwrap();
        let first = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", 0))
            .unwrap()
            .next()
            .unwrap();
        assert_eq!(target.ip, first.ip());
        assert_eq!((target.port, target.path.as_str()), (Some(8080), "/health"));
        apply_url(&mut target, "http://127.0.0.1:$PORT").unwrap();
        assert_eq!(target.ip, std::net::IpAddr::from([127, 0, 0, 1]));
        assert!(apply_url(&mut target, "http://example.com:80/").is_err());
    }

    #[test]
    fn a_program_is_named_after_its_file_and_a_wrapper_after_both() {
        let t = target("/bin/sh /bin/true --flag").unwrap();
        assert_eq!(t.name, "sh true");
        assert_eq!(
            t.args,
            ["/bin/true", "--flag"].map(std::ffi::OsString::from)
        );
        assert_eq!(target("/bin/true").unwrap().name, "true");
        assert_eq!(target("/bin/echo hello").unwrap().name, "echo");
        // An argument that is a path but not a program leaves the name alone.
        assert_eq!(target("/bin/cat /no/such/file").unwrap().name, "cat");
        assert_eq!(target("/bin/cat /etc/passwd").unwrap().name, "cat");
    }
}
