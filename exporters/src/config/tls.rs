//! The TLS files of the OTLP exporter (`OTEL_EXPORTER_OTLP_*CERTIFICATE`,
//! `OTEL_EXPORTER_OTLP_*CLIENT_KEY`) and of `/metrics` (`COLDSTART_METRICS_TLS_*`).

use std::path::PathBuf;

use coldstart_bootstrap::Layer;

use super::Build;
use super::reader::Reader;

/// The OTLP exporter's TLS files (`OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE`,
/// `_CLIENT_CERTIFICATE`, `_CLIENT_KEY`; the `tls` feature). Read when the exporter
/// starts, after the first response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// The CA that signs the collector's certificate; without it, the system's roots.
    pub ca: Option<PathBuf>,
    /// The client certificate chain, for collectors that require one (mutual TLS).
    pub certificate: Option<PathBuf>,
    /// The client certificate's private key.
    pub key: Option<PathBuf>,
}

/// TLS for `/metrics` (`COLDSTART_METRICS_TLS_CERT`, `_KEY`, `_CLIENT_CA`; the `tls`
/// feature). Read when the listener starts, after the first response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// The server certificate chain (PEM).
    pub certificate: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// When set, only clients with a certificate signed by this CA are served.
    pub client_ca: Option<PathBuf>,
}

/// The largest PEM file read: a certificate chain or a CA bundle is a few hundred KB
/// at most (Mozilla's whole bundle is about 220 KB).
pub const PEM_LIMIT: u64 = 4 << 20;

/// What a TLS file setting accepts in `build`.
fn tls_file_accepts(build: Build) -> &'static str {
    if build.tls {
        "a PEM file"
    } else {
        "a PEM file, in a build with coldstart's `tls` feature"
    }
}

pub(super) fn read_client_tls(r: &mut Reader<'_>) -> ClientTls {
    let tls = r.build.tls;
    let accepts = tls_file_accepts(r.build);
    let tls_file = |s: &str| tls.then(|| PathBuf::from(s));
    let mut file = |traces: &'static str, any: &'static str, instead: &'static str| {
        r.read_either([traces, any], accepts, instead, tls_file)
    };
    let tls = ClientTls {
        ca: file(
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE is used instead",
        ),
        certificate: file(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is used instead",
        ),
        key: file(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY is used instead",
        ),
    };
    if tls.certificate.is_some() != tls.key.is_some() {
        // One without the other cannot authenticate: name the one given, drop both.
        let (names, given) = match (&tls.certificate, &tls.key) {
            (Some(c), _) => (
                [
                    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                ],
                c,
            ),
            (_, Some(k)) => (
                [
                    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                ],
                k,
            ),
            _ => unreachable!("exactly one is set"),
        };
        // Named as it was given: the traces-only name wins when it is set (`file`
        // above reads it first), and the pair asked for is of the same family.
        let traces = r.layered(names[0]).is_some();
        let (key, accepts) = if traces {
            (
                names[0],
                "a PEM file, together with both OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            )
        } else {
            (
                names[1],
                "a PEM file, together with both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY",
            )
        };
        let layer = r.layered(key).map_or(Layer::Variable, |(_, l)| l);
        r.refuse(
            key,
            given.display().to_string(),
            layer,
            accepts,
            "no client certificate is sent",
        );
        return ClientTls {
            ca: tls.ca,
            ..ClientTls::default()
        };
    }
    tls
}

/// `Ok(None)`: plain HTTP. `Err(())`: TLS was asked for but cannot be set up (the
/// error is recorded), so `/metrics` is not served at all.
pub(super) fn read_server_tls(r: &mut Reader<'_>) -> Result<Option<ServerTls>, ()> {
    const KEYS: [&str; 3] = [
        "COLDSTART_METRICS_TLS_CERT",
        "COLDSTART_METRICS_TLS_KEY",
        "COLDSTART_METRICS_TLS_CLIENT_CA",
    ];
    let build = r.build;
    let [certificate, key, client_ca] = KEYS.map(|key| r.raw(key));
    if certificate.is_none() && key.is_none() && client_ca.is_none() {
        return Ok(None);
    }
    let mut refuse =
        |key: &'static str, value: Option<String>, accepts: &'static str, why: Option<String>| {
            let layer = r.layered(key).map_or(Layer::Variable, |(_, l)| l);
            r.refuse(
                key,
                value.unwrap_or_default(),
                layer,
                accepts,
                "/metrics is not served",
            )
            .why = why;
            Err(())
        };
    if !build.tls {
        let (key, value) = KEYS
            .into_iter()
            .zip([certificate, key, client_ca])
            .find_map(|(k, v)| Some((k, v?)))
            .unwrap_or((KEYS[0], String::new()));
        return refuse(key, Some(value), tls_file_accepts(build), None);
    }
    // Which of the three were given: what asked for TLS, named where one is missing.
    let given: Vec<&str> = KEYS
        .into_iter()
        .zip([&certificate, &key, &client_ca])
        .filter_map(|(k, v)| v.is_some().then_some(k))
        .collect();
    match (certificate, key) {
        (Some(certificate), Some(key)) => Ok(Some(ServerTls {
            certificate: certificate.into(),
            key: key.into(),
            client_ca: client_ca.map(PathBuf::from),
        })),
        // The first of the two that is missing.
        (certificate, _) => {
            let missing = if certificate.is_none() {
                KEYS[0]
            } else {
                KEYS[1]
            };
            let verb = if given.len() == 1 { "is" } else { "are" };
            refuse(
                missing,
                None,
                "a PEM file (TLS for /metrics needs a certificate and its key)",
                Some(format!("it is not set, and {} {verb}", given.join(" and "))),
            )
        }
    }
}
