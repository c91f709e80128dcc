/*!
TLS settings from PEM files, for the OTLP exporter (client side) and `/metrics`
(server side). Files are read when the exporter or listener starts, after the first
response; a file that is missing or holds no usable certificate or key is reported
once and that exporter stays off. rustls with ring, chosen explicitly so a program
that also links another crypto provider still works.
*/

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

#[cfg(feature = "tracing")]
use crate::config::ClientTls;
use crate::config::PEM_LIMIT;
#[cfg(feature = "metrics")]
use crate::config::ServerTls;
#[cfg(feature = "metrics")]
use rustls::server::WebPkiClientVerifier;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM file a setting names; a FIFO or device is refused without blocking the
/// exporter's start.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    coldstart_bootstrap::file::read_named(path, PEM_LIMIT)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Every certificate in `pem`, read from `path`.
fn certificates_in(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    match CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>() {
        Ok(certs) if certs.is_empty() => Err(format!("{} holds no certificate", path.display())),
        Ok(certs) => Ok(certs),
        Err(e) => Err(format!(
            "cannot read certificates from {}: {e}",
            path.display()
        )),
    }
}

/// The first private key in `pem`, read from `path`. An encrypted one is said to be so
/// (rustls reads only plain keys; it said "no items found").
fn key_in(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(format!(
            "the private key in {} is encrypted; give it decrypted (for example `openssl pkey -in {0} -out plain.key`)",
            path.display()
        ));
    }
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| format!("cannot read a private key from {}: {e}", path.display()))
}

/// Every certificate in the PEM file at `path`.
pub(crate) fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    certificates_in(path, &read(path)?)
}

/// The first private key in the PEM file at `path`.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    key_in(path, &read(path)?)
}

/// The PEM file at `path`, once it is known to hold a certificate: for tonic, which
/// takes PEM bytes and would report a bad file without naming it.
#[cfg(feature = "grpc")]
pub(crate) fn certificate_pem(path: &Path) -> Result<Vec<u8>, String> {
    let pem = read(path)?;
    certificates_in(path, &pem)?;
    Ok(pem)
}

/// The PEM file at `path`, once it is known to hold a private key (see
/// [`certificate_pem`]).
#[cfg(feature = "grpc")]
pub(crate) fn key_pem(path: &Path) -> Result<Vec<u8>, String> {
    let pem = read(path)?;
    key_in(path, &pem)?;
    Ok(pem)
}

fn roots(ca: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca)? {
        roots
            .add(cert)
            .map_err(|e| format!("{} is not a usable CA certificate: {e}", ca.display()))?;
    }
    Ok(roots)
}

/// The OTLP exporter's client settings: the given CA, else the system's roots, and
/// the client certificate when one is configured.
#[cfg(feature = "tracing")]
pub(crate) fn client_config(files: &ClientTls) -> Result<rustls::ClientConfig, String> {
    let roots = match &files.ca {
        Some(ca) => roots(ca)?,
        None => {
            let mut roots = RootCertStore::empty();
            let (added, _) =
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            if added == 0 {
                return Err(
                    "no system CA certificates found; set OTEL_EXPORTER_OTLP_CERTIFICATE".into(),
                );
            }
            roots
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match (&files.certificate, &files.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .map_err(|e| format!("the client certificate and key do not fit together: {e}")),
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// The `/metrics` server settings, requiring client certificates from the client CA
/// when one is configured.
#[cfg(feature = "metrics")]
pub(crate) fn server_config(files: &ServerTls) -> Result<rustls::ServerConfig, String> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    // Each error names the setting the file came from, as a refused setting is named.
    let named = |variable: &'static str| move |e: String| format!("{variable}: {e}");
    let builder = match &files.client_ca {
        Some(ca) => {
            let roots = roots(ca).map_err(named("COLDSTART_METRICS_TLS_CLIENT_CA"))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| {
                    format!(
                        "COLDSTART_METRICS_TLS_CLIENT_CA: {} cannot verify clients: {e}",
                        ca.display()
                    )
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let chain = certificates(&files.certificate).map_err(named("COLDSTART_METRICS_TLS_CERT"))?;
    let key = private_key(&files.key).map_err(named("COLDSTART_METRICS_TLS_KEY"))?;
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "the certificate {} (COLDSTART_METRICS_TLS_CERT) and the key {} (COLDSTART_METRICS_TLS_KEY) do not fit together: {e}",
            files.certificate.display(),
            files.key.display()
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_file_is_named() {
        let missing = Path::new("/nonexistent/ca.pem");
        let e = certificates(missing).err().unwrap_or_default();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let empty =
            std::env::temp_dir().join(format!("coldstart-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "not a certificate\n").ok();
        let e = certificates(&empty).err().unwrap_or_default();
        assert!(e.contains("holds no certificate"), "{e}");
        let e = private_key(&empty).err().unwrap_or_default();
        assert!(e.contains("cannot read a private key"), "{e}");
        let _ = std::fs::remove_file(empty);
    }

    /// A self-signed certificate (made with `openssl req -x509 -newkey ec`) and a
    /// key of another pair, for tests only.
    #[cfg(feature = "metrics")]
    const CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----\nMIIBiDCCAS+gAwIBAgIUPkpaKlyOJab+I0tgiyPbxnQN0GMwCgYIKoZIzj0EAwIw\nGTEXMBUGA1UEAwwOY29sZHN0YXJ0LXRlc3QwIBcNMjYxMjA3MTA0MTI0WhgPMjEy\nNjExMTMxMDQxMjRaMBkxFzAVBgNVBAMMDmNvbGRzdGFydC10ZXN0MFkwEwYHKoZI\nzj0CAQYIKoZIzj0DAQcDQgAEm5X6tftqvG+sVe4F3QhS9TjdV/wN5XTdUxnaBfFc\nuGsIzB+/k8DXK0GaDY+6x6HggT+J6NS5vGcj5o7Wa+TMB6NTMFEwHQYDVR0OBBYE\nFIL6Xjff8ov6ZsA2IxGFtYM0xCcdMB8GA1UdIwQYMBaAFIL6Xjff8ov6ZsA2IxGF\ntYM0xCcdMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgWn02sp5M\nrSzRfEnFISVUpuEZ66HaVay7Gx+yGnZOXaUCIFiGMDQDk0rE0Lqo/87GXbuCv0S9\nWj2yy9Xq6yOgOynT\n-----END CERTIFICATE-----\n";
    #[cfg(feature = "metrics")]
    const OTHER_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg09ZbvCxsnW/98Sbf\nI+jO7b0A/B+ApQZeSj2a/m/e/J+hRANCAATAKTdRMvdP2OI6sJGGBBXhJ7CkePBX\nxO4D4tYatHxphDq6POgo3eIEr03qe12FGcvQoutVMiO1clae/s7jfRI8\n-----END PRIVATE KEY-----\n";

    /// Each error names the setting its file came from: "the certificate and key do
    /// not fit together" named neither the files nor the variables.
    #[cfg(feature = "metrics")]
    #[test]
    fn a_files_error_names_its_setting() {
        let dir = std::env::temp_dir().join(format!("coldstart-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let (cert, key) = (dir.join("server.pem"), dir.join("other.key"));
        std::fs::write(&cert, CERTIFICATE).unwrap_or_default();
        std::fs::write(&key, OTHER_KEY).unwrap_or_default();
        let files = |certificate: &Path, client_ca: Option<&Path>| ServerTls {
            certificate: certificate.to_owned(),
            key: key.clone(),
            client_ca: client_ca.map(Path::to_owned),
        };
        let e = server_config(&files(&cert, None)).err().unwrap_or_default();
        assert!(
            e.contains(&format!(
                "the certificate {} (COLDSTART_METRICS_TLS_CERT)",
                cert.display()
            )) && e.contains(&format!(
                "the key {} (COLDSTART_METRICS_TLS_KEY) do not fit together",
                key.display()
            )),
            "{e}"
        );
        let missing = Path::new("/nonexistent/server.pem");
        let e = server_config(&files(missing, None))
            .err()
            .unwrap_or_default();
        assert!(
            e.starts_with("COLDSTART_METRICS_TLS_CERT: ") && e.contains("/nonexistent/server.pem"),
            "{e}"
        );
        let e = server_config(&files(&cert, Some(missing)))
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("COLDSTART_METRICS_TLS_CLIENT_CA: "), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_encrypted_key_is_said_to_be_encrypted() {
        let path = Path::new("client.key");
        for pem in [
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nMIIB\n-----END RSA PRIVATE KEY-----\n",
        ] {
            let e = key_in(path, pem.as_bytes()).err().unwrap_or_default();
            assert!(
                e.starts_with("the private key in client.key is encrypted"),
                "{e}"
            );
        }
    }
}
