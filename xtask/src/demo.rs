//! The main job on an embedded default: a local TLS server with a generated
//! certificate, `tls-client` against it, then the demo page with a relay.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo, install, pkg, run, serve};

/// Kills the process when dropped, so that no server outlives the demo.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|err| format!("no free port: {err}"))
}

fn wait_for_port(port: u16) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("nothing listens on 127.0.0.1:{port} after 10 s"))
}

/// A CA (`ca.pem`, `ca.key`) and a leaf for `localhost` and 127.0.0.1 (`server.pem`,
/// `server.key`) in `dir`, made with the openssl command; `org` names them.
pub fn make_pki(dir: &Path, org: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let script = r#"
set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -keyout ca.key -out ca.pem -subj "/O=$1/CN=$1 CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 \
  -out server.pem -extfile server.ext 2>/dev/null
"#;
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(org)
        .current_dir(dir)
        .status()
        .map_err(|err| format!("cannot run openssl: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "making the certificates with openssl failed ({status})"
        ))
    }
}

fn start_s_server(dir: &Path, port: u16) -> Result<Guard, String> {
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-alpn",
            "http/1.1",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start openssl s_server: {err}"))?;
    let guard = Guard(child);
    wait_for_port(port)?;
    Ok(guard)
}

/// Starts the relay on a free port; returns it and its ws:// URL.
pub fn start_relay(root: &Path, allow: &str) -> Result<(Guard, String), String> {
    let mut child = Command::new(root.join("target/release/wasm-tls-relay"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--allow",
            allow,
            "--allow-private",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start the relay: {err}"))?;
    let stderr = child.stderr.take().ok_or("no relay stderr")?;
    let guard = Guard(child);
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .ok_or("the relay exited before listening")?
            .map_err(|err| err.to_string())?;
        if let Some(url) = line.split("listening on ").nth(1) {
            break url.trim().to_owned();
        }
    };
    // Keep echoing the relay's log lines.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("relay: {line}");
        }
    });
    Ok((guard, url))
}

pub fn main(root: &Path, no_serve: bool) -> Result<(), String> {
    install::for_demo()?;
    run(&mut cargo(&[
        "build",
        "-j2",
        "--release",
        "--bin",
        "tls-client",
    ]))?;
    let dir: PathBuf = root.join("target/demo");
    make_pki(&dir, "wasm-tls demo")?;
    let port = free_port()?;
    let _server = start_s_server(&dir, port)?;
    eprintln!(
        "\nopenssl s_server is listening on 127.0.0.1:{port} with a certificate for localhost\n"
    );
    eprintln!(
        "+ tls-client --connect 127.0.0.1:{port} --servername localhost --alpn http/1.1 \\
         --cafile target/demo/ca.pem --request 'GET / HTTP/1.0\\r\\n\\r\\n' --trace"
    );
    let out = Command::new(root.join("target/release/tls-client"))
        .args(["--connect", &format!("127.0.0.1:{port}")])
        .args(["--servername", "localhost", "--alpn", "http/1.1"])
        .args(["--timeout", "5", "--trace"])
        .arg("--cafile")
        .arg(dir.join("ca.pem"))
        .args(["--request", "GET / HTTP/1.0\\r\\n\\r\\n"])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| format!("cannot run tls-client: {err}"))?;
    if !out.status.success() {
        return Err(format!("tls-client failed ({})", out.status));
    }
    let response = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "\nThe response: {} bytes, starting \"{}\"",
        out.stdout.len(),
        response.lines().next().unwrap_or("")
    );
    if no_serve {
        return Ok(());
    }

    install::for_pkg(root)?;
    pkg::build(root)?;
    run(&mut cargo(&[
        "build",
        "-j2",
        "--release",
        "-p",
        "wasm-tls-relay",
    ]))?;
    let (_relay, relay_url) = start_relay(root, &format!("127.0.0.1:{port}"))?;
    let listener = TcpListener::bind("127.0.0.1:8000")
        .or_else(|_| TcpListener::bind("127.0.0.1:0"))
        .map_err(|err| format!("cannot listen for the page: {err}"))?;
    let page_port = listener.local_addr().map_err(|e| e.to_string())?.port();
    serve::spawn(
        listener,
        root.to_path_buf(),
        vec![("/demo/ca.pem".to_owned(), dir.join("ca.pem"))],
    );
    eprintln!(
        "\nThe demo page: http://127.0.0.1:{page_port}/www/index.html?relay={relay_url}&target=127.0.0.1:{port}&servername=localhost&ca=/demo/ca.pem\n\
         The relay ({relay_url}) may reach only 127.0.0.1:{port}. Press Ctrl-C to stop."
    );
    loop {
        std::thread::park();
    }
}
