//! Server-side request forgery rules: a webhook URL may only reach public addresses. Checked when an
//! endpoint is created or changed ([`check_url`]), and again when a webhook is sent by the one
//! [`WebhookClient`]: literal addresses before connecting, names by [`PublicOnlyResolver`] at connect
//! time (so a name that later resolves to a private address is still refused).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::model::Invalid;
use crate::model::ids::Mode;

/// Whether private addresses are allowed: only `paygate dev` and tests say yes, explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_private: bool,
}

impl UrlPolicy {
    pub const STRICT: UrlPolicy = UrlPolicy { allow_private: false };
    /// For local development only.
    pub const LOCAL_DEV: UrlPolicy = UrlPolicy { allow_private: true };

    /// `PAYGATE_ALLOW_PRIVATE_WEBHOOK_URLS=true` (never set in the deployed template).
    pub fn from_env() -> Self {
        Self::deployed(std::env::var("PAYGATE_ALLOW_PRIVATE_WEBHOOK_URLS").ok().as_deref())
    }

    /// A deployed stack's, for a value of `PAYGATE_ALLOW_PRIVATE_WEBHOOK_URLS`: strict unless `true`.
    pub fn deployed(allow_private: Option<&str>) -> Self {
        UrlPolicy { allow_private: allow_private == Some("true") }
    }

    /// The local stack's: loopback and private URLs allowed, unless
    /// `PAYGATE_ALLOW_PRIVATE_WEBHOOK_URLS=false` asks for the deployed behaviour.
    pub fn local_from_env() -> Self {
        Self::local(std::env::var("PAYGATE_ALLOW_PRIVATE_WEBHOOK_URLS").ok().as_deref())
    }

    /// [`UrlPolicy::local_from_env`] for a value of the variable.
    pub fn local(allow_private: Option<&str>) -> Self {
        match allow_private {
            Some("false") => UrlPolicy::STRICT,
            _ => UrlPolicy::LOCAL_DEV,
        }
    }
}

fn v4_forbidden(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes 169.254.169.254, the metadata service
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

/// The IPv4 address made of two 16-bit segments.
fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

/// IPv4 addresses an IPv6 transition form carries, which a router on the way may turn into real
/// IPv4 traffic: 6to4 (`2002:AABB:CCDD::/48` → A.B.C.D) and Teredo (`2001:0::/32`: the server
/// address in bits 32–63, the client's, inverted, in the last 32).
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    match (s[0], s[1]) {
        (0x2002, _) => vec![v4_of(s[1], s[2])],
        (0x2001, 0x0000) => vec![v4_of(s[2], s[3]), v4_of(!s[6], !s[7])],
        _ => Vec::new(),
    }
}

fn v6_forbidden(ip: Ipv6Addr) -> bool {
    // IPv4-mapped (::ffff:0:0/96): IPv4 in disguise, whatever address it carries.
    if ip.to_ipv4_mapped().is_some() {
        return true;
    }
    if embedded_v4(ip).into_iter().any(v4_forbidden) {
        return true;
    }
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local() // fc00::/7
        || ip.is_unicast_link_local() // fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48): IPv4 in disguise
        || (s[0..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
        || s[0] == 0x0100 && s[1..4] == [0, 0, 0] // discard-only
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking 2001:2::/48
        || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0010) // ORCHID 2001:10::/28
        || (s[0] == 0x3fff && (s[1] & 0xf000) == 0) // documentation 3fff::/20
        || s[0] == 0x5f00 // SRv6 SIDs 5f00::/16
}

/// The ports a webhook may use: 80, 443, or 1024 and above (no SSH, SMTP or other well-known
/// service of an internal host).
pub fn port_allowed(port: u16) -> bool {
    port == 80 || port == 443 || port >= 1024
}

/// Loopback, private, link-local (metadata), CGNAT, multicast, unspecified or reserved space.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_forbidden(v4),
        IpAddr::V6(v6) => v6_forbidden(v6),
    }
}

pub use crate::model::webhook_url::{MAX_URL_LEN, WebhookUrl};

/// Parses and checks a URL for an endpoint of `mode`: https in live mode, and every address its
/// host resolves to public (unless the policy allows private ones).
pub async fn check_url(raw: &str, mode: Mode, policy: UrlPolicy) -> Result<WebhookUrl, Invalid> {
    let url: WebhookUrl = raw.parse()?;
    if url.url().scheme() == "http" && mode == Mode::Live {
        return Err(Invalid::url("Live mode webhook endpoints must use https."));
    }
    let host = url.url().host().ok_or_else(|| Invalid::url("The URL has no host."))?;
    let port = url.url().port_or_known_default().unwrap_or(443);
    if !port_allowed(port) {
        return Err(Invalid::url(format!("Port {port} is not allowed: webhooks use port 80, 443, or 1024 and above.")));
    }
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => match tokio::net::lookup_host((name, port)).await {
            Ok(it) => it.map(|a| a.ip()).collect(),
            Err(_) => return Err(Invalid::url(format!("The host {name} does not resolve."))),
        },
    };
    if addrs.is_empty() {
        return Err(Invalid::url("The host does not resolve."));
    }
    if !policy.allow_private && addrs.iter().any(|ip| is_forbidden(*ip)) {
        return Err(Invalid::url("The URL resolves to a private, loopback, link-local or reserved address; webhooks go to public addresses only."));
    }
    Ok(url)
}

/// A DNS resolver for the delivery client that drops forbidden addresses (and fails when none remain).
#[derive(Debug, Clone, Copy)]
pub struct PublicOnlyResolver {
    pub policy: UrlPolicy,
}

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.filter(|a| policy.allow_private || !is_forbidden(a.ip())).collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl PublicOnlyResolver {
    pub fn shared(policy: UrlPolicy) -> Arc<Self> {
        Arc::new(PublicOnlyResolver { policy })
    }
}

/// Response bytes read at the most; the rest is never read.
pub const MAX_RESPONSE_BYTES: usize = 20 * 1024;
/// Response bytes kept in an attempt record.
pub const KEPT_RESPONSE_BYTES: usize = 2 * 1024;
/// Total time one POST may take, response included.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);

/// The one HTTP client webhooks are sent with: the URL policy, checked on literal addresses here
/// and on names by [`PublicOnlyResolver`] at connect time; connect 5 s, total 15 s; no redirects;
/// at most [`MAX_RESPONSE_BYTES`] of a response read.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    policy: UrlPolicy,
    total: Duration,
}

/// The result of one POST: a status (and what came with it), or the error that kept it from one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Option<u16>,
    /// `Retry-After` in seconds, when the receiver sent one.
    pub retry_after: Option<u64>,
    pub body: Option<String>,
    pub error: Option<String>,
}

impl WebhookClient {
    pub fn new(policy: UrlPolicy) -> Self {
        Self::with_timeout(policy, TOTAL_TIMEOUT)
    }

    /// Another total timeout (tests use a short one).
    pub fn with_timeout(policy: UrlPolicy, total: Duration) -> Self {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::tls::client_config())
            .connect_timeout(Duration::from_secs(5).min(total))
            .timeout(total)
            .redirect(reqwest::redirect::Policy::none())
            // HTTP(S)_PROXY would send the request through a proxy that resolves the host itself,
            // past the connect-time address check.
            .no_proxy()
            .dns_resolver(PublicOnlyResolver::shared(policy))
            .user_agent(concat!("PayGate-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("HTTP client");
        WebhookClient { http, policy, total }
    }

    /// The longest one POST takes.
    pub fn timeout(&self) -> Duration {
        self.total
    }

    /// POSTs a JSON `body` with `headers` to `url`; reads at most [`MAX_RESPONSE_BYTES`] of the
    /// answer and keeps [`KEPT_RESPONSE_BYTES`]. Never fails: what went wrong is in the response.
    pub async fn post(&self, url: &WebhookUrl, headers: Vec<(&'static str, String)>, body: Vec<u8>) -> Response {
        let fail = |e: String| Response { status: None, retry_after: None, body: None, error: Some(e) };
        // Names are checked by the resolver at connect time; literal addresses here.
        if !self.policy.allow_private && url.literal_ip().is_some_and(is_forbidden) {
            return fail("the URL's address is not public".into());
        }
        if !url.url().port_or_known_default().is_some_and(port_allowed) {
            return fail("the URL's port is not allowed (80, 443, or 1024 and above)".into());
        }
        let mut req = self.http.post(url.url().clone()).header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let mut resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => return fail(describe(e)),
        };
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
        let mut read = Vec::new();
        let mut error = None;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - read.len();
                    read.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if read.len() >= MAX_RESPONSE_BYTES {
                        break; // the rest is never read
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(describe(e));
                    break;
                }
            }
        }
        read.truncate(KEPT_RESPONSE_BYTES);
        Response { status: Some(status), retry_after, body: Some(String::from_utf8_lossy(&read).into_owned()), error }
    }
}

/// What went wrong, for the attempt record and the logs: without the URL, whose query string may
/// hold the merchant's tokens.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        // The innermost cause says what happened: "Connection refused (os error 111)", a DNS failure…
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        format!("connection failed: {cause}")
    } else {
        crate::aws::error_chain(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "::127.0.0.1",
            // IPv6 transition forms carrying private IPv4: 6to4, Teredo (client 127.0.0.1), NAT64 local use.
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "2001:0:a00:1::1",
            "64:ff9b:1::a00:1",
            // Any IPv4-mapped address; benchmarking, ORCHID, the new documentation range, SRv6.
            "::ffff:8.8.8.8",
            "2001:2::1",
            "2001:2:0:ffff::1",
            "2001:10::1",
            "2001:1f:ffff::1",
            "3fff::1",
            "3fff:fff::1",
            "5f00::1",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2001:2:1::1",
            "2001:20::1",
            "3fff:1000::1",
            "2002:808:808::1",                      // 6to4 of 8.8.8.8
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7", // Teredo: server 65.54.227.120, client 8.8.8.8
        ] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked() {
        let strict = UrlPolicy::STRICT;
        for (url, mode) in [
            ("http://127.0.0.1:4242/hook", Mode::Test),
            ("http://10.0.0.1/hook", Mode::Test),
            ("http://169.254.169.254/latest/meta-data", Mode::Test),
            ("http://[::1]:8080/", Mode::Test),
            ("http://localhost:4242/hook", Mode::Test),
            ("http://0x7f000001/", Mode::Test),
            ("http://2130706433/", Mode::Test),
            ("https://93.184.215.14/hook", Mode::Live),
            ("http://[2002:7f00:1::1]/hook", Mode::Test),
            ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook", Mode::Test),
        ] {
            let r = check_url(url, mode, strict).await;
            if url.starts_with("https://93.") {
                assert!(r.is_ok(), "{url}: {r:?}");
            } else {
                let e = r.unwrap_err();
                assert_eq!((e.param.as_ref(), e.kind), ("url", crate::model::InvalidKind::Url), "{url}");
            }
        }
        assert!(check_url("http://93.184.215.14/hook", Mode::Live, strict).await.is_err(), "live needs https");
        assert!(check_url("ftp://93.184.215.14/", Mode::Test, strict).await.is_err());
        assert!(check_url("/relative", Mode::Test, strict).await.is_err());
        assert!(check_url("https://user:pw@93.184.215.14/", Mode::Test, strict).await.is_err());
        assert!(check_url("http://127.0.0.1:4242/hook", Mode::Test, UrlPolicy::LOCAL_DEV).await.is_ok());
        // Ports: 80, 443 and 1024 and above, whatever the policy.
        for port in [22, 25, 1023] {
            let e = check_url(&format!("https://93.184.215.14:{port}/hook"), Mode::Live, strict).await.unwrap_err();
            assert!(e.to_string().contains(&format!("Port {port} is not allowed")), "{e}");
            assert!(check_url(&format!("http://127.0.0.1:{port}/hook"), Mode::Test, UrlPolicy::LOCAL_DEV).await.is_err());
        }
        for port in [80, 443, 1024, 8443] {
            assert!(check_url(&format!("https://93.184.215.14:{port}/hook"), Mode::Live, strict).await.is_ok(), "{port}");
        }
        let base = "https://93.184.215.14/";
        let longest = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len()));
        assert!(check_url(&longest, Mode::Live, strict).await.is_ok());
        let e = check_url(&format!("{longest}a"), Mode::Live, strict).await.unwrap_err();
        assert_eq!((e.kind, e.param.as_ref()), (crate::model::InvalidKind::Parameter, "url"));
        let e = check_url(&format!("{base}{}", "a".repeat(450_000)), Mode::Live, strict).await.unwrap_err();
        assert_eq!((e.kind, e.param.as_ref()), (crate::model::InvalidKind::Parameter, "url"), "a 450 kB URL is an invalid parameter (a 400), not a failure");
    }

    /// An attempt's error is stored and logged: it must not carry the URL, whose query string may
    /// hold the merchant's token.
    #[tokio::test]
    async fn errors_leave_the_url_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::AsyncWriteExt;
                let _ = socket.write_all(b"NOT HTTP AT ALL\r\n\r\n").await;
            }
        });
        let url: WebhookUrl = format!("http://127.0.0.1:{port}/hook?token=s3cr3t").parse().unwrap();
        let r = WebhookClient::with_timeout(UrlPolicy::LOCAL_DEV, Duration::from_secs(5)).post(&url, vec![], b"{}".to_vec()).await;
        let error = r.error.expect("a garbled answer is an error");
        assert!(!error.contains("s3cr3t") && !error.contains("/hook"), "{error}");
    }

    /// A delivery goes to port 80, 443 or 1024 and above only, whatever the endpoint's stored URL
    /// says (an endpoint written before the rule, or by hand): the client refuses before connecting.
    #[tokio::test]
    async fn deliveries_refuse_other_ports_before_connecting() {
        for port in [22, 25, 1023] {
            let url: WebhookUrl = format!("http://127.0.0.1:{port}/hook").parse().unwrap();
            let r = WebhookClient::with_timeout(UrlPolicy::LOCAL_DEV, Duration::from_secs(5)).post(&url, vec![], b"{}".to_vec()).await;
            assert_eq!((r.status, r.error.as_deref()), (None, Some("the URL's port is not allowed (80, 443, or 1024 and above)")), "{port}");
        }
    }

    /// `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` are ignored: a proxy resolves the host itself,
    /// past the connect-time address check. Runs in a process of its own (this test binary again,
    /// this test alone), since the variables are read by every HTTP client built while they are set.
    #[test]
    fn the_proxy_variables_are_ignored() {
        if std::env::var_os("PAYGATE_PROXY_TEST_CHILD").is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "webhook::ssrf::tests::the_proxy_variables_are_ignored", "--test-threads=1"])
                .env("PAYGATE_PROXY_TEST_CHILD", "1")
                .output()
                .unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success() && text.contains("1 passed"), "{text}");
            return;
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            use std::sync::atomic::{AtomicUsize, Ordering};
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            // A "proxy" that counts connections, and a receiver that answers 200.
            let listen = |answer: &'static [u8], count: std::sync::Arc<AtomicUsize>| async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                tokio::spawn(async move {
                    while let Ok((mut socket, _)) = listener.accept().await {
                        count.fetch_add(1, Ordering::SeqCst);
                        let mut buf = [0u8; 4096];
                        let _ = socket.read(&mut buf).await;
                        let _ = socket.write_all(answer).await;
                    }
                });
                port
            };
            let (proxied, received) = (std::sync::Arc::new(AtomicUsize::new(0)), std::sync::Arc::new(AtomicUsize::new(0)));
            let proxy = listen(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n", proxied.clone()).await;
            let receiver = listen(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", received.clone()).await;
            for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
                // SAFETY: this process runs this one test, on this one thread, before any client is built.
                unsafe { std::env::set_var(var, format!("http://127.0.0.1:{proxy}")) };
            }
            let url: WebhookUrl = format!("http://127.0.0.1:{receiver}/hook").parse().unwrap();
            let r = WebhookClient::with_timeout(UrlPolicy::LOCAL_DEV, Duration::from_secs(5)).post(&url, vec![], b"{}".to_vec()).await;
            assert_eq!((r.status, r.error), (Some(200), None));
            assert_eq!((received.load(Ordering::SeqCst), proxied.load(Ordering::SeqCst)), (1, 0), "straight to the receiver");
            // A client that reads the variables goes through the proxy: the variables were live.
            let plain = reqwest::Client::builder().tls_backend_preconfigured(crate::tls::client_config()).build().unwrap();
            let status = plain.post(url.url().clone()).send().await.unwrap().status().as_u16();
            assert_eq!((status, proxied.load(Ordering::SeqCst)), (502, 1));
        });
    }

    #[test]
    fn the_local_stack_can_be_made_strict() {
        assert_eq!(UrlPolicy::local(None), UrlPolicy::LOCAL_DEV);
        assert_eq!(UrlPolicy::local(Some("true")), UrlPolicy::LOCAL_DEV);
        assert_eq!(UrlPolicy::local(Some("false")), UrlPolicy::STRICT);
        assert_eq!(UrlPolicy::deployed(None), UrlPolicy::STRICT);
        assert_eq!(UrlPolicy::deployed(Some("yes")), UrlPolicy::STRICT);
        assert_eq!(UrlPolicy::deployed(Some("true")), UrlPolicy::LOCAL_DEV);
    }
}
