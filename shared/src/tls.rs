//! The one TLS configuration of every outgoing connection, the AWS SDK's and the webhook POSTs':
//! rustls with the ring crypto provider, trusting Mozilla's root certificates compiled into the
//! binary (`webpki-root-certs`). Start-up reads no certificate file: loading the system's (the
//! SDK's default reads the bundle and then every file of `/etc/ssl/certs`) was most of a cold start.

use std::sync::{Arc, LazyLock};

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use base64::Engine;
use rustls::crypto::CryptoProvider;

/// The compiled-in roots, PEM-encoded once (the SDK's trust store takes PEM).
static ROOTS_PEM: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut pem = Vec::new();
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
});

/// ring, for every connection.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The HTTPS client of every AWS SDK client: hyper and rustls with ring (the SDK's default client
/// brings aws-lc, a C library of 1.3 MiB), trusting the compiled-in roots.
pub fn sdk_https_client() -> SharedHttpClient {
    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(ROOTS_PEM.clone());
    let context = TlsContext::builder().with_trust_store(trust).build().expect("a trust store of valid certificates");
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).tls_context(context).build_https()
}

/// The rustls configuration of the webhook client: ring, the compiled-in roots, TLS 1.2 and 1.3.
pub fn client_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_compiled_in_root_is_trusted_by_both_clients() {
        let n = webpki_root_certs::TLS_SERVER_ROOT_CERTS.len();
        assert!(n > 100, "Mozilla's list has well over a hundred roots");
        let pem = super::ROOTS_PEM.clone();
        let parsed = rustls_pki_types_count(&pem);
        assert_eq!(parsed, n, "every root survives the PEM round trip");
        let mut roots = rustls::RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        assert!(added > 100);
    }

    fn rustls_pki_types_count(pem: &[u8]) -> usize {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_slice_iter(pem).map(|c| c.expect("valid PEM")).count()
    }
}
