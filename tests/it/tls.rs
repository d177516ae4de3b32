//! Both HTTPS clients, the AWS SDK's (`paygate::tls::sdk_https_client`) and the webhooks'
//! (`WebhookClient`), speak TLS through rustls with ring and verify the server's certificate: a
//! real TLS server on 127.0.0.1 (`openssl s_server`) with a self-signed certificate completes the
//! handshake's first half and is refused as untrusted by both.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::eventually;
use paygate::tls::{SdkRoots, sdk_https_client};
use paygate::webhook::ssrf::{UrlPolicy, WebhookClient};

/// `openssl s_server` with a fresh self-signed certificate for 127.0.0.1; killed when dropped.
struct TlsServer {
    child: Child,
    port: u16,
    _dir: std::path::PathBuf,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

async fn tls_server() -> TlsServer {
    let dir = std::env::temp_dir().join(format!("paygate-tls-{}", ulid::Ulid::generate()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed (Debian: openssl)");
    assert!(made.success(), "openssl req");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("openssl")
        .args(["s_server", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(dir.join("cert.pem"))
        .arg("-key")
        .arg(dir.join("key.pem"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = eventually(Duration::from_secs(30), || async { tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok() }).await;
    assert!(up.is_some(), "openssl s_server did not listen");
    TlsServer { child, port, _dir: dir }
}

#[tokio::test]
async fn the_webhook_client_refuses_an_untrusted_certificate() {
    let server = tls_server().await;
    let client = WebhookClient::new(UrlPolicy::LOCAL_DEV);
    let url = format!("https://127.0.0.1:{}/webhooks", server.port).parse().unwrap();
    let response = client.post(&url, vec![], b"{}".to_vec()).await;
    assert_eq!(response.status, None, "no answer from an untrusted server");
    let error = response.error.unwrap_or_default();
    assert!(error.contains("certificate") || error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn the_sdk_client_refuses_an_untrusted_certificate() {
    let server = tls_server().await;
    let sdk = paygate::aws::local_sdk_config().await;
    // With Mozilla's roots (an endpoint of one's own) and with AWS's five (AWS's endpoints).
    for roots in [SdkRoots::All, SdkRoots::Aws] {
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .http_client(sdk_https_client(roots))
            .endpoint_url(format!("https://127.0.0.1:{}", server.port))
            .build();
        let err = aws_sdk_dynamodb::Client::from_conf(config).list_tables().send().await.unwrap_err();
        let text = format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err));
        assert!(text.contains("certificate") || text.contains("UnknownIssuer"), "{roots:?}: {text}");
    }
}
