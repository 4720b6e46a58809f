//! A TCP proxy that can be taken down, hung and brought back: a real network endpoint (an RPC
//! server, say) going away, hanging and returning, with no fake on either side.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Forwards every connection to `127.0.0.1:<upstream>` while up. While down, new connections
/// are dropped at once and an open one is cut when a request comes on it (as a host that went
/// away answers nothing); both are counted, so a test knows a request was tried. While hung,
/// requests are taken and not answered (as a host that hangs), and the connections holding one
/// are counted; taken down, those are cut; brought back, their requests go on.
pub struct Proxy {
    port: u16,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    down: AtomicBool,
    dropped: AtomicUsize,
    hung: AtomicBool,
    held: AtomicUsize,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if shared.down.load(Ordering::SeqCst) {
                    shared.dropped.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                // Bytes from the client while down cut the connection, and while hung are
                // held (and a connection holding some is cut when taken down, sent on when
                // brought back); answers always pass.
                let pipe = |mut from: TcpStream, mut to: TcpStream, watch: Option<Arc<State>>| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        let mut holding: Option<Vec<u8>> = None;
                        if watch.is_some() {
                            // Wakes up to see a held request let go or cut.
                            let _ = from.set_read_timeout(Some(Duration::from_millis(10)));
                        }
                        loop {
                            let n = match from.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => n,
                                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => 0,
                                Err(_) => break,
                            };
                            if let Some(state) = &watch {
                                if state.down.load(Ordering::SeqCst) && (n > 0 || holding.is_some()) {
                                    state.dropped.fetch_add(1, Ordering::SeqCst);
                                    break;
                                }
                                let hung = state.hung.load(Ordering::SeqCst);
                                if n > 0 && hung && holding.is_none() {
                                    holding = Some(Vec::new());
                                    state.held.fetch_add(1, Ordering::SeqCst);
                                }
                                if let Some(mut held) = holding.take() {
                                    held.extend_from_slice(&buf[..n]);
                                    if hung {
                                        holding = Some(held);
                                        continue;
                                    }
                                    if to.write_all(&held).is_err() {
                                        break;
                                    }
                                    continue;
                                }
                            }
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                };
                let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) else { continue };
                pipe(c, s, Some(shared.clone()));
                pipe(server, client, None);
            }
        });
        Proxy { port, state }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn take_down(&self) {
        self.state.down.store(true, Ordering::SeqCst);
    }

    /// Requests from now on are held, until [`Proxy::bring_back`] sends them on (or
    /// [`Proxy::take_down`] cuts them).
    pub fn hang(&self) {
        self.state.hung.store(true, Ordering::SeqCst);
    }

    pub fn bring_back(&self) {
        self.state.down.store(false, Ordering::SeqCst);
        self.state.hung.store(false, Ordering::SeqCst);
    }

    /// The connections dropped or cut while down.
    pub fn dropped(&self) -> usize {
        self.state.dropped.load(Ordering::SeqCst)
    }

    /// How often a connection began to hold a request (once per hang).
    pub fn held(&self) -> usize {
        self.state.held.load(Ordering::SeqCst)
    }
}

/// An HTTP JSON-RPC proxy to `127.0.0.1:<upstream>` that passes every request on and hands each
/// answer's `result` to `rewrite` first: what an RPC endpoint of another chain would answer
/// (Arbitrum's blocks carry `l1BlockNumber`, which anvil's do not). HTTP/1.1 with keep-alive;
/// bodies by `Content-Length` or chunked. It keeps the `method` of every request.
pub struct RewritingProxy {
    port: u16,
    methods: Arc<Mutex<Vec<String>>>,
}

impl RewritingProxy {
    pub fn start(upstream: u16, rewrite: fn(&mut serde_json::Value)) -> RewritingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let methods = Arc::new(Mutex::new(Vec::new()));
        let seen = methods.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { return };
                    // Each message goes out in a few writes: no Nagle delay between them.
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let _ = relay(client, server, rewrite, &seen);
                });
            }
        });
        RewritingProxy { port, methods }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The methods of the requests so far (each of a batch), in order.
    pub fn methods(&self) -> Vec<String> {
        self.methods.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Requests from `client` to `server` unchanged, answers back rewritten, until either closes.
fn relay(
    client: TcpStream,
    mut server: TcpStream,
    rewrite: fn(&mut serde_json::Value),
    methods: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    use std::io::BufReader;
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut from_server = BufReader::new(server.try_clone()?);
    let mut client = client;
    loop {
        let (head, body) = read_message(&mut from_client)?;
        if let Ok(request) = serde_json::from_slice::<serde_json::Value>(&body) {
            let requests = match &request {
                serde_json::Value::Array(all) => all.iter().collect(),
                one => vec![one],
            };
            let named = requests.into_iter().filter_map(|r| Some(r.get("method")?.as_str()?.to_string()));
            methods.lock().unwrap_or_else(|e| e.into_inner()).extend(named);
        }
        server.write_all(head.as_bytes())?;
        server.write_all(&body)?;
        let (head, body) = read_message(&mut from_server)?;
        // Not JSON (an error page): passed on as it came.
        let body = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(mut answer) => {
                let answers: Vec<&mut serde_json::Value> = match &mut answer {
                    serde_json::Value::Array(all) => all.iter_mut().collect(),
                    one => vec![one],
                };
                for result in answers.into_iter().filter_map(|a| a.get_mut("result")) {
                    rewrite(result);
                }
                serde_json::to_vec(&answer).map_err(std::io::Error::other)?
            }
            Err(_) => body,
        };
        let status = head.lines().next().unwrap_or("HTTP/1.1 200 OK");
        write!(client, "{status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len())?;
        client.write_all(&body)?;
    }
}

/// One HTTP message: its head (through the blank line; `Transfer-Encoding` taken out and
/// `Content-Length` set when the body came chunked) and its body.
fn read_message(from: &mut impl std::io::BufRead) -> std::io::Result<(String, Vec<u8>)> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if from.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        lines.push(line);
    }
    let header = |name: &str| {
        lines.iter().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_ascii_lowercase())
        })
    };
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            from.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).map_err(std::io::Error::other)?;
            let mut chunk = vec![0; size + 2];
            from.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
        lines.retain(|l| !l.to_ascii_lowercase().starts_with("transfer-encoding"));
        lines.push(format!("content-length: {}\r\n", body.len()));
    } else if let Some(n) = header("content-length").and_then(|v| v.parse().ok()) {
        body.resize(n, 0);
        from.read_exact(&mut body)?;
    }
    Ok((lines.concat() + "\r\n", body))
}
