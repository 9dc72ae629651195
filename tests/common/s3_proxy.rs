//! A proxy of our own in front of the S3 server that fails requests the way S3 and networks
//! do: stretches of 503 SlowDown, lone 500s, a connection reset in the middle of an upload,
//! and answers lost after S3 did the work (the retry then finds it done). Faults are injected
//! while `failing` is set (always, unless a test switches it); `latency_ms` delays every
//! request as a distant S3 would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The proxy's switches and what it did, by kind.
pub struct Faults {
    pub failing: AtomicBool,
    pub latency_ms: AtomicU64,
    pub requests: AtomicU64,
    pub slow_down: AtomicU64,
    pub internal: AtomicU64,
    pub reset_mid_upload: AtomicU64,
    pub lost_answers: AtomicU64,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            failing: AtomicBool::new(true),
            latency_ms: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            slow_down: AtomicU64::new(0),
            internal: AtomicU64::new(0),
            reset_mid_upload: AtomicU64::new(0),
            lost_answers: AtomicU64::new(0),
        }
    }
}

impl Faults {
    /// Requests failed or cut so far, of every kind.
    pub fn injected(&self) -> u64 {
        self.slow_down.load(Ordering::Relaxed)
            + self.internal.load(Ordering::Relaxed)
            + self.reset_mid_upload.load(Ordering::Relaxed)
            + self.lost_answers.load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} SlowDown, {} 500, {} resets mid-upload, {} lost answers",
            self.requests.load(Ordering::Relaxed),
            self.slow_down.load(Ordering::Relaxed),
            self.internal.load(Ordering::Relaxed),
            self.reset_mid_upload.load(Ordering::Relaxed),
            self.lost_answers.load(Ordering::Relaxed),
        )
    }
}

/// The head of one HTTP/1.1 message (up to the empty line).
fn read_head(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            return Some(head);
        }
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The body after `head` (Content-Length or chunked; a response without either runs to the
/// end of the connection): the body and whether it was delimited.
fn read_body(r: &mut BufReader<TcpStream>, head: &str) -> Option<(Vec<u8>, bool)> {
    let mut body = Vec::new();
    if let Some(n) = header(head, "content-length").and_then(|n| n.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    } else if header(head, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            body.extend_from_slice(size.as_bytes());
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk);
            if n == 0 {
                break;
            }
        }
    } else if head.starts_with("HTTP/") && !head.starts_with("HTTP/1.1 204") {
        r.read_to_end(&mut body).ok()?;
        return Some((body, false));
    }
    Some((body, true))
}

fn error_response(status: &str, code: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves one client connection: each request is failed or forwarded by the schedule.
fn proxy_connection(client: TcpStream, upstream: &str, faults: &Faults) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut writer = client;
    while let Some(head) = read_head(&mut reader) {
        let n = faults.requests.fetch_add(1, Ordering::Relaxed);
        let failing = faults.failing.load(Ordering::Relaxed);
        let latency = faults.latency_ms.load(Ordering::Relaxed);
        if latency > 0 {
            std::thread::sleep(std::time::Duration::from_millis(latency));
        }
        let method = head.split(' ').next().unwrap_or("").to_string();
        let length: usize = header(&head, "content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        if failing && n % 29 == 7 && method == "PUT" && length > 1024 {
            // Hang up in the middle of the upload, half of its body read.
            faults.reset_mid_upload.fetch_add(1, Ordering::Relaxed);
            let mut half = vec![0; length / 2];
            let _ = reader.read_exact(&mut half);
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
        let Some((body, _)) = read_body(&mut reader, &head) else {
            return;
        };
        // Stretches of throttling, lone server errors, and answers lost after S3 did the
        // work (the retry then finds it done).
        if failing && n % 61 < 3 {
            faults.slow_down.fetch_add(1, Ordering::Relaxed);
            let _ = writer.write_all(&error_response("503 Slow Down", "SlowDown"));
            continue;
        }
        if failing && n % 37 == 5 {
            faults.internal.fetch_add(1, Ordering::Relaxed);
            let _ = writer.write_all(&error_response(
                "500 Internal Server Error",
                "InternalError",
            ));
            continue;
        }
        let Ok(mut up) = TcpStream::connect(upstream) else {
            return;
        };
        let mut request = Vec::new();
        for line in head.lines() {
            let lower = line.to_ascii_lowercase();
            // One request per upstream connection, and no interim `100 Continue` answers.
            if lower.starts_with("connection:") || lower.starts_with("expect:") || line.is_empty() {
                continue;
            }
            request.extend_from_slice(line.as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"Connection: close\r\n\r\n");
        request.extend_from_slice(&body);
        if up.write_all(&request).is_err() {
            return;
        }
        let mut up_reader = BufReader::new(up);
        let Some(response_head) = read_head(&mut up_reader) else {
            return;
        };
        let body_follows = method != "HEAD";
        let (response_body, delimited) = if body_follows {
            match read_body(&mut up_reader, &response_head) {
                Some(b) => b,
                None => return,
            }
        } else {
            (Vec::new(), true)
        };
        if failing && n % 31 == 11 && (method == "POST" || method == "PUT" || method == "DELETE") {
            // S3 acted; the client never hears of it.
            faults.lost_answers.fetch_add(1, Ordering::Relaxed);
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
        let mut response = Vec::new();
        for line in response_head.lines() {
            if line.to_ascii_lowercase().starts_with("connection:") || line.is_empty() {
                continue;
            }
            response.extend_from_slice(line.as_bytes());
            response.extend_from_slice(b"\r\n");
        }
        if !delimited {
            response.extend_from_slice(b"Connection: close\r\n");
        }
        response.extend_from_slice(b"\r\n");
        response.extend_from_slice(&response_body);
        if writer.write_all(&response).is_err() || !delimited {
            return;
        }
    }
}

/// Starts the proxy on a free port in front of `upstream` (`host:port`); returns its address.
pub fn start_proxy(upstream: String, faults: Arc<Faults>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let upstream = upstream.clone();
            let faults = faults.clone();
            std::thread::spawn(move || proxy_connection(client, &upstream, &faults));
        }
    });
    address
}
