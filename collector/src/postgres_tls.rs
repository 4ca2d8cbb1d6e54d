//! TLS to PostgreSQL as the URL asks for it, with libpq's meanings of
//! `sslmode` (rustls, so nothing links the system's OpenSSL):
//!
//! - `disable`: plain TCP;
//! - `prefer` (the default) and `require`: encrypted when the server
//!   offers it (`require`: or not at all), its certificate not checked,
//!   unless `sslrootcert` names a CA file, which makes them `verify-ca`;
//! - `verify-ca`: the certificate must chain to `sslrootcert` (or a public
//!   CA without it);
//! - `verify-full`: that, and it must name the host connected to.

use crate::percent_decoded;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Not at all (encryption against eavesdropping only).
    None,
    /// It chains to a trusted CA.
    Chain,
    /// It chains to a trusted CA and names the host.
    Full,
}

/// The connection settings of a PostgreSQL URL (or key=value string) and
/// the TLS connector its `sslmode` and `sslrootcert` ask for.
pub fn connection(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect), String> {
    let (url, check, root_cert) = split_tls_options(url);
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    // ring, not aws-lc-rs, to build with no C tool chain beyond cc; the
    // post-quantum key exchange it lacks (hence the deprecation) matters
    // little on the link to a database.
    #[allow(deprecated)]
    let provider = Arc::new(ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::None => Arc::new(AnyCertificate(provider.clone())),
        Check::Chain | Check::Full => {
            let mut roots = RootCertStore::empty();
            match &root_cert {
                Some(path) => {
                    let certs = CertificateDer::pem_file_iter(path)
                        .map_err(|e| format!("cannot read sslrootcert {path}: {e}"))?;
                    for cert in certs {
                        let cert =
                            cert.map_err(|e| format!("cannot read sslrootcert {path}: {e}"))?;
                        roots
                            .add(cert)
                            .map_err(|e| format!("sslrootcert {path}: {e}"))?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("cannot check PostgreSQL's certificate: {e}"))?;
            if check == Check::Full {
                webpki
            } else {
                Arc::new(AnyHostName(webpki))
            }
        }
    };
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((config, MakeRustlsConnect::new(tls)))
}

/// The URL without what tokio-postgres does not read (`sslrootcert`, and
/// `verify-ca`/`verify-full`, which become `require`), the check asked
/// for, and the CA file.
fn split_tls_options(url: &str) -> (String, Check, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), Check::None, None);
    };
    let mut kept = Vec::new();
    let mut check = Check::None;
    let mut root_cert = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sslrootcert", path)) => root_cert = Some(percent_decoded(path)),
            Some(("sslmode", "verify-ca")) => {
                check = Check::Chain;
                kept.push("sslmode=require");
            }
            Some(("sslmode", "verify-full")) => {
                check = Check::Full;
                kept.push("sslmode=require");
            }
            _ => kept.push(pair),
        }
    }
    // libpq: with a root certificate, `require` checks the chain.
    if root_cert.is_some() && check == Check::None {
        check = Check::Chain;
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, check, root_cert)
}

/// `sslmode=require` without a CA: any certificate, as libpq accepts it.
/// The handshake's signatures are still checked, so the link is
/// encrypted to whoever holds the certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: the chain is checked, the host name is not.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_options_tokio_postgres_does_not_read_are_taken_out() {
        assert_eq!(
            split_tls_options("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem"),
            (
                "postgres://u@h/db?sslmode=require".to_string(),
                Check::Full,
                Some("/tmp/ca.pem".to_string())
            )
        );
        assert_eq!(
            split_tls_options("postgres://u@h/db?sslmode=require&sslrootcert=ca.pem").1,
            Check::Chain
        );
        assert_eq!(
            split_tls_options("postgres://u@h/db?sslmode=verify-ca").0,
            "postgres://u@h/db?sslmode=require"
        );
        assert_eq!(
            split_tls_options("postgres://u@h/db?sslmode=require"),
            (
                "postgres://u@h/db?sslmode=require".to_string(),
                Check::None,
                None
            )
        );
        assert!(connection("postgres://u@h/db?sslmode=require").is_ok());
        assert!(connection("postgres://u@h/db?sslrootcert=/nonexistent")
            .is_err_and(|e| e.contains("sslrootcert")));
    }
}
