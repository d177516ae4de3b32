//! The `paygate` binary as a new user runs it: `paygate dev` (with the servers already up), then
//! `listen` forwarding to a real receiver, then `trigger`; the delivery arrives signed and `listen`
//! prints it, and the HTTP API pages through what `trigger` made. Private tables and queues
//! (`PAYGATE_LOCAL_SUFFIX`) keep it apart from the other tests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use testkit::receiver::Receiver;

/// The `paygate` binary, which Cargo builds for this package's tests.
fn paygate() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_paygate"))
}

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(args: &[&str], suffix: &str) -> Running {
        let mut child = Command::new(paygate())
            .args(args)
            .env("PAYGATE_LOCAL_SUFFIX", suffix)
            .env("PAYGATE_RETRY_SCHEDULE", "1,1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines: rx }
    }

    /// The first line containing `needle` (waits at most 60 s).
    fn line_with(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200))
                && l.contains(needle)
            {
                return l;
            }
        }
        panic!("no line with {needle:?}");
    }

    /// SIGINT, as Ctrl-C sends, then wait for the exit.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        for _ in 0..100 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("did not stop on SIGINT");
    }
}

/// A test that fails half-way leaves nothing running.
impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_listen_trigger_as_a_new_user() {
    let suffix = format!("cli{}", ulid::Ulid::generate().to_string().to_lowercase());
    let mut dev = Running::start(&["dev", "--no-servers", "--addr", "127.0.0.1:0"], &suffix);
    let api = dev.line_with("HTTP API").split_whitespace().last().unwrap().to_owned();
    let account = dev.line_with("Demo account").split_whitespace().find(|w| w.starts_with("acct_")).unwrap().to_owned();
    let key = dev.line_with("test key").split_whitespace().last().unwrap().to_owned();
    assert!(key.starts_with("sk_test_"));

    let receiver = Receiver::start(vec![]).await;
    let mut listen = Running::start(&["listen", "--forward-to", &receiver.url, "--api-key", &key, "--events", "payment.*"], &suffix);
    let secret = listen.line_with("signing secret").split_whitespace().find(|w| w.starts_with("whsec_")).unwrap().to_owned();
    receiver.expect_secrets(&[&secret]);

    let out = Command::new(paygate())
        .args(["trigger", "payment.succeeded", "--api-key", &key, "--count", "3"])
        .env("PAYGATE_LOCAL_SUFFIX", &suffix)
        .output()
        .unwrap();
    assert!(out.status.success());
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e["data"]["object"]["currency"] == "GHS" && e["data"]["object"]["payment_method"] == "mobile_money"));

    let got = receiver.wait_for(3).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.verified), "signed with the secret listen printed");
    let line = listen.line_with(events[0]["id"].as_str().unwrap());
    assert!(line.contains("payment.succeeded") && line.contains("[200]"), "{line}");

    // The README's curl: the three events, newest first, paged with the printed key.
    let client = reqwest::Client::new();
    let page: serde_json::Value =
        client.get(format!("{api}/v1/events?type=payment.succeeded&limit=2")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["data"][0]["id"], events[2]["id"]);
    assert_eq!(page["has_more"], true);

    // A producer's file, published twice: the same events, nothing new; bad lines fail alone.
    let line = |key: Option<&str>, id: &str| {
        let mut v =
            serde_json::json!({"account_id": account, "mode": "test", "type": "payment.succeeded", "data": {"object": {"id": id, "object": "payment"}}});
        if let Some(k) = key {
            v["idempotency_key"] = serde_json::json!(k);
        }
        v.to_string()
    };
    let file = std::env::temp_dir().join(format!("paygate-publish-{suffix}.jsonl"));
    std::fs::write(&file, [line(Some("pay-a"), "pay_a"), line(Some("pay-b"), "pay_b"), String::new(), line(None, "pay_c"), "{oops".to_owned()].join("\n"))
        .unwrap();
    let publish = || {
        let out = Command::new(paygate()).args(["publish", "--file", file.to_str().unwrap()]).env("PAYGATE_LOCAL_SUFFIX", &suffix).output().unwrap();
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("2 of 4 lines were not published"), "{out:?}");
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).collect::<Vec<_>>()
    };
    let first = publish();
    assert_eq!(first.iter().map(|l| l["line"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 4, 5], "a line number for each non-blank line");
    assert_eq!(first[0]["event"]["data"]["object"]["id"], "pay_a");
    assert_eq!(first[2]["error"]["param"], "idempotency_key");
    assert!(first[3]["error"]["message"].as_str().unwrap().starts_with("not JSON"));
    let again = publish();
    assert_eq!(again[0]["event"]["id"], first[0]["event"]["id"], "run again: the same events");
    assert_eq!(again[1]["event"]["id"], first[1]["event"]["id"]);
    std::fs::remove_file(&file).unwrap();

    // What a newcomer gets wrong is refused with one line that says what to do instead.
    let fails = |args: &[&str], says: &str| {
        let out = Command::new(paygate()).args(args).env("PAYGATE_LOCAL_SUFFIX", &suffix).env("PAYGATE_KEY", &key).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success() && err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed {:?}", String::from_utf8_lossy(&out.stdout));
    };
    fails(&["trigger", "payment.sucess"], "a similar value exists: 'payment.succeeded'");
    fails(&["trigger", "payment.succeeded", "--set", "nosuchfield=1"], "a payment has no field `nosuchfield`");
    fails(&["trigger", "payment.succeeded", "--set", "amount=-5"], "`amount` is an amount in minor units, a whole number 0 or more (got -5)");
    fails(&["recover", "--endpoint", "we_01M86Q64Q75548AGQCZMZ8CETQ", "--since", "0"], "No such webhook endpoint");
    fails(&["recover", "--endpoint", "nonsense", "--since", "0"], "No such webhook endpoint");
    fails(&["listen", "--forward-to", "127.0.0.1:4242/webhooks"], "a webhook URL needs a scheme and a host, such as https://example.com/webhooks");
    fails(&["--deployed", "dev"], "--deployed does not apply to it");
    fails(&["--deployed", "env"], "--deployed does not apply to it");

    assert!(listen.interrupt().success());
    assert!(dev.interrupt().success());
}

/// Every flag of every command has a line of help.
#[test]
fn every_flag_has_a_description() {
    let commands: &[&[&str]] = &[
        &[],
        &["dev"],
        &["accounts", "create"],
        &["trigger"],
        &["publish"],
        &["env"],
        &["samples", "seed"],
        &["recover"],
        &["dlq", "redrive"],
        &["listen"],
        &["keys", "list"],
        &["keys", "create-restricted"],
        &["keys", "roll"],
        &["keys", "revoke"],
    ];
    for cmd in commands {
        let out = Command::new(paygate()).args(*cmd).arg("--help").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{cmd:?}: {text}");
        for line in text.lines().filter(|l| l.trim_start().starts_with('-')) {
            // "  -h, --help  Print help": the flag, two spaces at least, then its description.
            let described = line.trim().split_once("  ").is_some_and(|(_, d)| !d.trim().is_empty());
            assert!(described, "{cmd:?}: a flag without help: {line:?}");
        }
    }
}

/// `--help` never prints the secret key it would take from the environment.
#[test]
fn help_hides_the_key_from_the_environment() {
    for sub in ["trigger", "recover", "listen", "keys"] {
        let out = Command::new(paygate()).args([sub, "--help"]).env("PAYGATE_KEY", "sk_test_donotprintme").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("PAYGATE_KEY"), "{sub}: {text}");
        assert!(!text.contains("donotprintme"), "{sub} --help shows the key: {text}");
    }
}

/// `paygate keys` as a merchant whose key leaked uses it: a restricted key for a report, then the
/// secret key rolled at once; the old key is refused and the new one lists the keys.
#[test]
fn keys_list_create_roll_and_revoke() {
    let suffix = format!("keys{}", ulid::Ulid::generate().to_string().to_lowercase());
    let run = |args: &[&str], key: &str| {
        let out = Command::new(paygate()).args(args).env("PAYGATE_LOCAL_SUFFIX", &suffix).env("PAYGATE_KEY", key).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let json = |text: &str| serde_json::from_str::<serde_json::Value>(text.trim()).unwrap();
    let (ok, out, err) = run(&["accounts", "create"], "");
    assert!(ok, "{err}");
    let key = json(&out)["test_key"].as_str().unwrap().to_owned();

    let (ok, out, err) = run(&["keys", "list"], &key);
    assert!(ok, "{err}");
    let listed = json(&out);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let sk_id = listed["data"][0]["id"].as_str().unwrap().to_owned();

    let (ok, out, err) = run(&["keys", "create-restricted", "--name", "Reports", "--events", "read"], &key);
    assert!(ok, "{err}");
    let rk = json(&out);
    assert!(rk["secret"].as_str().unwrap().starts_with("rk_test_"));
    let (ok, _, err) = run(&["keys", "create-restricted", "--events", "write"], &key);
    assert!(!ok && err.contains("permissions[events] must be one of none, read"), "{err}");
    let (ok, _, err) = run(&["keys", "list"], rk["secret"].as_str().unwrap());
    assert!(!ok && err.contains("secret key") && err.contains("403"), "{err}");

    let (ok, _, err) = run(&["keys", "revoke", rk["id"].as_str().unwrap()], &key);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["keys", "revoke", &sk_id], &key);
    assert!(!ok && err.contains("roll it instead"), "{err}");
    let (ok, out, err) = run(&["keys", "roll", &sk_id, "--expires-in", "0"], &key);
    assert!(ok, "{err}");
    let new_key = json(&out)["secret"].as_str().unwrap().to_owned();
    let (ok, _, err) = run(&["keys", "list"], &key);
    assert!(!ok && err.contains("Expired API Key"), "the rolled key is refused: {err}");
    let (ok, out, err) = run(&["keys", "list"], &new_key);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["data"].as_array().unwrap().len(), 1, "the new secret key alone: {out}");
    let (ok, _, err) = run(&["keys", "roll", &sk_id, "--expires-in", "604801"], &new_key);
    assert!(!ok && err.contains("604801"), "{err}");
}

/// The example receiver refuses to start without a secret (an unset variable would otherwise
/// verify HMACs under an empty key, which a forger can make).
#[test]
fn the_example_receiver_refuses_to_start_without_a_secret() {
    let receiver = paygate().parent().unwrap().join("examples").join("receiver");
    assert!(receiver.exists(), "{} (cargo test builds the examples)", receiver.display());
    for secret in [None, Some(""), Some("   ")] {
        let mut cmd = Command::new(&receiver);
        cmd.env_remove("PAYGATE_WEBHOOK_SECRET").stdin(Stdio::null());
        if let Some(s) = secret {
            cmd.env("PAYGATE_WEBHOOK_SECRET", s);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{secret:?}: started");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: receiver whsec_"), "{secret:?}");
    }
}
