//! The one TLS configuration of every outgoing connection, the AWS SDK's and the webhook POSTs':
//! rustls with the ring crypto provider, trusting root certificates compiled into the binary
//! (Mozilla's list, `webpki-root-certs`). Start-up reads no certificate file: loading the system's
//! (the SDK's default reads the bundle and then every file of `/etc/ssl/certs`) was most of a cold
//! start.
//!
//! The SDK's client trusts only the roots AWS's endpoints chain to ([`SdkRoots::Aws`]) unless an
//! HTTPS endpoint of one's own is configured or the region is in China: each SDK client parses its
//! trust store when it is built, and five roots instead of Mozilla's 118 take a Lambda's DynamoDB
//! and SQS clients from about 1.4 ms to 0.07 ms each.

use std::sync::Arc;

use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
use base64::Engine;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;

/// Which roots the SDK's HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkRoots {
    /// Amazon Root CA 1–4 and Starfield Services Root G2 (which cross-signs them): the roots of
    /// every AWS endpoint's certificate (Amazon Trust Services) in the commercial and GovCloud
    /// regions.
    Aws,
    /// All of Mozilla's list: for an HTTPS endpoint of one's own (`AWS_ENDPOINT_URL…`), which any
    /// CA may certify, and for the China regions, whose endpoints other CAs certify.
    All,
}

impl SdkRoots {
    /// [`SdkRoots::All`] when an `AWS_ENDPOINT_URL…` variable names an `https` endpoint or
    /// `AWS_REGION` is a China region; [`SdkRoots::Aws`] otherwise (an `http` endpoint, such as
    /// an emulator's, makes no TLS connection at all).
    pub fn from_env() -> Self {
        Self::from_vars(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))))
    }

    fn from_vars(vars: impl Iterator<Item = (String, String)>) -> Self {
        let all = vars.into_iter().any(|(k, v)| {
            let https = v.trim().get(..6).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https:"));
            (k.starts_with("AWS_ENDPOINT_URL") && https) || (k == "AWS_REGION" && v.starts_with("cn-"))
        });
        if all { SdkRoots::All } else { SdkRoots::Aws }
    }

    /// The roots, PEM-encoded (the SDK's trust store takes PEM).
    fn pem(self) -> Vec<u8> {
        match self {
            // Those five roots as Mozilla's list has them, kept beside this file (the tests check
            // they are exactly its entries), so that no list is searched or encoded at start-up.
            SdkRoots::Aws => AWS_ROOTS_PEM.to_vec(),
            SdkRoots::All => pem_of(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter()),
        }
    }
}

const AWS_ROOTS_PEM: &[u8] = include_bytes!("tls/aws-roots.pem");

fn pem_of<'a>(certs: impl Iterator<Item = &'a CertificateDer<'a>>) -> Vec<u8> {
    let mut pem = Vec::new();
    for cert in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

/// ring, for every connection.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The HTTPS client of every AWS SDK client: hyper and rustls with ring (the SDK's default client
/// brings aws-lc, a C library of 1.3 MiB), trusting `roots`.
pub fn sdk_https_client(roots: SdkRoots) -> SharedHttpClient {
    let trust = TrustStore::empty().with_native_roots(false).with_pem_certificate(roots.pem());
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
    use super::*;

    #[test]
    fn every_compiled_in_root_is_trusted_by_both_clients() {
        let n = webpki_root_certs::TLS_SERVER_ROOT_CERTS.len();
        assert!(n > 100, "Mozilla's list has well over a hundred roots");
        assert_eq!(rustls_pki_types_count(&SdkRoots::All.pem()), n, "every root survives the PEM round trip");
        let mut roots = rustls::RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
        assert!(added > 100);
    }

    #[test]
    fn the_sdk_trusts_amazons_four_roots_and_starfields_g2_exactly_as_mozillas_list_has_them() {
        // A root's subject is its issuer: these names appear in no other root.
        let names = ["Amazon Root CA 1", "Amazon Root CA 2", "Amazon Root CA 3", "Amazon Root CA 4", "Starfield Services Root Certificate Authority - G2"];
        let named = |c: &&CertificateDer<'_>| names.iter().any(|n| memchr::memmem::find(c.as_ref(), n.as_bytes()).is_some());
        let from_mozilla: Vec<_> = webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().filter(named).collect();
        assert_eq!(from_mozilla.len(), 5);
        assert_eq!(SdkRoots::Aws.pem(), pem_of(from_mozilla.into_iter()), "src/tls/aws-roots.pem is Mozilla's entries for those five");
    }

    #[test]
    fn only_an_https_endpoint_of_ones_own_or_a_china_region_needs_every_root() {
        let roots = |vars: &[(&str, &str)]| SdkRoots::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(roots(&[("AWS_REGION", "eu-west-1"), ("HOME", "/root")]), SdkRoots::Aws);
        assert_eq!(roots(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:4599")]), SdkRoots::Aws, "no TLS at all");
        assert_eq!(roots(&[("AWS_ENDPOINT_URL_DYNAMODB", "HTTPS://ddb.internal")]), SdkRoots::All);
        assert_eq!(roots(&[("AWS_ENDPOINT_URL", "https://localhost.localstack.cloud:4566")]), SdkRoots::All);
        assert_eq!(roots(&[("AWS_REGION", "cn-north-1")]), SdkRoots::All);
    }

    fn rustls_pki_types_count(pem: &[u8]) -> usize {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_slice_iter(pem).map(|c| c.expect("valid PEM")).collect::<Vec<_>>().len()
    }
}
