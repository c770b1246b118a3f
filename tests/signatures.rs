//! Signature algorithms as browsers and OpenSSL 3 accept them, in certificates and in the
//! handshake, against `openssl s_server` with certificates made by the `openssl` command:
//! ECDSA P-256/P-384 with SHA-256/384/512, P-521, RSA PKCS#1 v1.5 and PSS, Ed25519. Then
//! the messages of what is refused: an unsupported algorithm named in words with its OID,
//! and names with control characters escaped.
//!
//! `native::` runs the core and the `tls-client` command; `wasmtime::` runs
//! `tls-client.wasm` under the wasmtime CLI, ignored by a plain `cargo test` (`cargo xtask
//! test` builds the component and runs them, naming it in `WASM_TLS_CLIENT_WASM`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use common::{config_for, fresh_dir, path_str, OpensslServer};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, SanType,
};
use wasm_tls::Error;

/// How a key is made: `openssl req -newkey` arguments, and whether it takes a digest.
#[derive(Clone, Copy, Debug)]
enum Key {
    Ec(&'static str),
    Rsa,
    Ed25519,
    Ed448,
}

impl Key {
    fn newkey(self) -> Vec<String> {
        let args: Vec<&str> = match self {
            Self::Ec(curve) => vec!["-newkey", "ec", "-pkeyopt", curve],
            Self::Rsa => vec!["-newkey", "rsa:2048"],
            Self::Ed25519 => vec!["-newkey", "ed25519"],
            Self::Ed448 => vec!["-newkey", "ed448"],
        };
        args.into_iter().map(str::to_owned).collect()
    }
}

const P256: Key = Key::Ec("ec_paramgen_curve:P-256");
const P384: Key = Key::Ec("ec_paramgen_curve:P-384");
const P521: Key = Key::Ec("ec_paramgen_curve:P-521");

fn openssl(dir: &Path, args: &[String]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// A CA and a leaf for `localhost` under it, made by `openssl`: the CA signs the leaf with
/// `digest` (none for EdDSA).
struct Made {
    dir: PathBuf,
    ca_pem: String,
}

impl Made {
    fn new(tag: &str, ca: Key, leaf: Key, digest: Option<&str>) -> Self {
        let dir = fresh_dir(&format!("sig-{tag}"));
        let mut args = strings(&["req", "-x509", "-new", "-nodes"]);
        args.extend(ca.newkey());
        args.extend(strings(&[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            &format!("/O=wasm-tls tests/CN=Signature CA {tag}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]));
        openssl(&dir, &args);
        let mut args = strings(&["req", "-new", "-nodes"]);
        args.extend(leaf.newkey());
        args.extend(strings(&[
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ]));
        openssl(&dir, &args);
        fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the extensions");
        let mut args = strings(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ]);
        if let Some(digest) = digest {
            args.push(format!("-{digest}"));
        }
        openssl(&dir, &args);
        let ca_pem = fs::read_to_string(dir.join("ca.pem")).expect("read ca.pem");
        Self { dir, ca_pem }
    }

    /// `s_server -www` with the leaf, and `extra`.
    fn serve(&self, extra: &[&str]) -> OpensslServer {
        let mut args = vec![
            "-cert".to_owned(),
            path_str(&self.dir.join("leaf.pem")),
            "-key".to_owned(),
            path_str(&self.dir.join("leaf.key")),
            "-www".to_owned(),
        ];
        args.extend(strings(extra));
        OpensslServer::start(&args)
    }
}

/// A case: certificates, then the server's protocol flags (`-sigalgs` pins the
/// handshake signature).
struct Case {
    name: &'static str,
    made: &'static Made,
    server: &'static [&'static str],
}

fn made(
    slot: &'static OnceLock<Made>,
    tag: &str,
    ca: Key,
    leaf: Key,
    d: Option<&str>,
) -> &'static Made {
    slot.get_or_init(|| Made::new(tag, ca, leaf, d))
}

fn cases() -> Vec<Case> {
    static P256_SHA512: OnceLock<Made> = OnceLock::new();
    static P384_SHA512: OnceLock<Made> = OnceLock::new();
    static P521_SHA512: OnceLock<Made> = OnceLock::new();
    static P384_BY_P521: OnceLock<Made> = OnceLock::new();
    static RSA_SHA512: OnceLock<Made> = OnceLock::new();
    static ED25519: OnceLock<Made> = OnceLock::new();
    let p256 = made(&P256_SHA512, "p256-sha512", P256, P256, Some("sha512"));
    let p384 = made(&P384_SHA512, "p384-sha512", P384, P384, Some("sha512"));
    let p521 = made(&P521_SHA512, "p521-sha512", P521, P521, Some("sha512"));
    let p521_ca = made(&P384_BY_P521, "p521-ca-sha384", P521, P384, Some("sha384"));
    let rsa = made(
        &RSA_SHA512,
        "rsa-sha512",
        Key::Rsa,
        Key::Rsa,
        Some("sha512"),
    );
    let ed = made(&ED25519, "ed25519", Key::Ed25519, Key::Ed25519, None);
    vec![
        Case {
            name: "P-256 CA signs with SHA-512, TLS 1.3",
            made: p256,
            server: &["-tls1_3"],
        },
        Case {
            name: "P-256 CA signs with SHA-512, TLS 1.2",
            made: p256,
            server: &["-tls1_2"],
        },
        Case {
            name: "P-256 key signs the handshake with SHA-512 (TLS 1.2)",
            made: p256,
            server: &["-tls1_2", "-sigalgs", "ECDSA+SHA512"],
        },
        Case {
            name: "P-384 CA signs with SHA-512, TLS 1.3",
            made: p384,
            server: &["-tls1_3"],
        },
        Case {
            name: "P-384 key signs the handshake with SHA-512 (TLS 1.2)",
            made: p384,
            server: &["-tls1_2", "-sigalgs", "ECDSA+SHA512"],
        },
        Case {
            name: "P-521 throughout, ecdsa_secp521r1_sha512 (TLS 1.3)",
            made: p521,
            server: &["-tls1_3", "-sigalgs", "ecdsa_secp521r1_sha512"],
        },
        // No P-521 server key in TLS 1.2: there the key's curve must be one of the
        // client's key-exchange groups (RFC 8422 5.1), and, as in browsers, secp521r1
        // is not one of them.
        Case {
            name: "P-521 CA signs with SHA-384, TLS 1.3",
            made: p521_ca,
            server: &["-tls1_3"],
        },
        Case {
            name: "P-521 CA signs with SHA-384, TLS 1.2",
            made: p521_ca,
            server: &["-tls1_2"],
        },
        Case {
            name: "RSA PKCS#1 v1.5 SHA-512 (TLS 1.2)",
            made: rsa,
            server: &["-tls1_2", "-sigalgs", "RSA+SHA512"],
        },
        Case {
            name: "RSA-PSS SHA-384 (TLS 1.3)",
            made: rsa,
            server: &["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha384"],
        },
        Case {
            name: "Ed25519 throughout, TLS 1.3",
            made: ed,
            server: &["-tls1_3"],
        },
    ]
}

/// The `tls-client` command, natively or under wasmtime.
#[derive(Clone, Copy, Debug)]
enum Client {
    Native,
    Wasm,
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Client {
    /// `tls-client` to `port` as `localhost`, trusting `ca.pem` in `dir` only.
    fn get(self, port: u16, dir: &Path) -> Run {
        let cafile = match self {
            Self::Native => path_str(&dir.join("ca.pem")),
            Self::Wasm => "/certs/ca.pem".to_owned(),
        };
        let args = strings(&[
            "--connect",
            &format!("127.0.0.1:{port}"),
            "--servername",
            "localhost",
            "--cafile",
            &cafile,
            "--no-default-roots",
            "--timeout",
            "10",
            "--request",
            "GET / HTTP/1.0\\r\\n\\r\\n",
        ]);
        let out = match self {
            Self::Native => common::run_tls_client(&args, None),
            Self::Wasm => common::run_tls_client_wasm(dir, &args),
        };
        Run {
            ok: out.status.success(),
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }
}

/// Every case with the command: the handshake succeeds and the page arrives.
fn command_accepts_every_algorithm(client: Client) {
    for case in cases() {
        let server = case.made.serve(case.server);
        let run = client.get(server.port, &case.made.dir);
        assert!(
            run.ok && run.stdout.starts_with("HTTP/1.0 200 ok"),
            "{}: {client:?} failed:\n{}\n--- server ---\n{}",
            case.name,
            run.stderr,
            server.log()
        );
    }
}

/// The command names an unsupported algorithm in words, with its OID.
fn command_names_an_unsupported_algorithm(client: Client) {
    let made = ed448();
    let server = made.serve(&[]);
    let run = client.get(server.port, &made.dir);
    assert!(!run.ok, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("error: {ED448_MESSAGE} [certificate-invalid]")),
        "{}",
        run.stderr
    );
}

fn ed448() -> &'static Made {
    static ED448: OnceLock<Made> = OnceLock::new();
    made(&ED448, "ed448-ca", Key::Ed448, P256, None)
}

const ED448_MESSAGE: &str = "invalid certificate: a certificate in the chain is signed with \
                             Ed448 (1.3.101.113), which is not supported";

mod native {
    use super::*;

    #[test]
    fn the_core_accepts_every_algorithm() {
        for case in cases() {
            let server = case.made.serve(case.server);
            let config = config_for("localhost", &case.made.ca_pem)
                .build()
                .expect("config");
            let (_, page, _) = common::get(server.port, &config)
                .unwrap_or_else(|err| panic!("{}: {err}\n{}", case.name, server.log()));
            common::assert_www_page(&page);
        }
    }

    #[test]
    fn command_accepts_every_algorithm() {
        super::command_accepts_every_algorithm(Client::Native)
    }

    #[test]
    fn command_names_an_unsupported_algorithm() {
        super::command_names_an_unsupported_algorithm(Client::Native)
    }

    #[test]
    fn an_unsupported_algorithm_is_named_with_its_oid() {
        let made = ed448();
        let server = made.serve(&[]);
        let config = config_for("localhost", &made.ca_pem)
            .build()
            .expect("config");
        let mut conn = common::TlsStream::open(server.port, &config);
        let err = conn.handshake().expect_err("an Ed448 CA is not supported");
        assert_eq!(err.code(), "certificate-invalid");
        assert_eq!(err.to_string(), ED448_MESSAGE);
        assert!(err.to_string().len() < 120, "{err}");
    }
}

mod wasmtime {
    use super::*;

    #[test]
    #[ignore = "needs tls-client.wasm: cargo xtask test runs it"]
    fn command_accepts_every_algorithm() {
        super::command_accepts_every_algorithm(Client::Wasm)
    }

    #[test]
    #[ignore = "needs tls-client.wasm: cargo xtask test runs it"]
    fn command_names_an_unsupported_algorithm() {
        super::command_names_an_unsupported_algorithm(Client::Wasm)
    }
}

// ---- names with control characters, escaped in messages ----

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

/// Which root the client trusts.
#[derive(Clone, Copy)]
enum Trust {
    /// The CA that issued the leaf.
    TheCa,
    /// Another CA with the same name, and another key.
    ItsNamesake,
    /// The test PKI's root, unrelated.
    Unrelated,
}

/// Serves a leaf for `localhost` (`edit` changes it) under a CA named `ca_cn`, and returns
/// the handshake's error when the client trusts `trust`.
fn rcgen_failure(ca_cn: &str, trust: Trust, edit: impl FnOnce(&mut CertificateParams)) -> Error {
    let dir = fresh_dir("sig-rcgen");
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name = dn(ca_cn);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let namesake = ca
        .self_signed(&KeyPair::generate().expect("another key"))
        .expect("namesake CA");
    let issuer = Issuer::new(ca, &ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = dn("leaf");
    leaf.subject_alt_names = vec![SanType::DnsName("localhost".try_into().expect("a name"))];
    edit(&mut leaf);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
    fs::write(dir.join("leaf.pem"), leaf_cert.pem()).expect("write");
    fs::write(dir.join("leaf.key"), leaf_key.serialize_pem()).expect("write");
    let server = OpensslServer::start(&[
        "-cert".to_owned(),
        path_str(&dir.join("leaf.pem")),
        "-key".to_owned(),
        path_str(&dir.join("leaf.key")),
        "-www".to_owned(),
    ]);
    let root = match trust {
        Trust::TheCa => ca_cert.pem(),
        Trust::ItsNamesake => namesake.pem(),
        Trust::Unrelated => common::pki().ecdsa.root_pem.clone(),
    };
    let config = config_for("localhost", &root).build().expect("config");
    let mut conn = common::TlsStream::open(server.port, &config);
    conn.handshake().expect_err("the certificate is refused")
}

#[test]
fn a_trusted_name_with_another_key_is_a_bad_signature() {
    // The trusted root has the issuer's name, so this is not an unknown issuer: the
    // signature is checked against its key, and fails.
    let err = rcgen_failure("Namesake CA", Trust::ItsNamesake, |_| {});
    assert_eq!(err, Error::CertificateBadSignature);
    assert_eq!(
        err.to_string(),
        "a signature in the certificate chain or handshake does not verify"
    );
}

#[test]
fn an_unknown_critical_extension_is_named() {
    let err = rcgen_failure("Extension CA", Trust::TheCa, |leaf| {
        let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![5, 0]);
        ext.set_criticality(true);
        leaf.custom_extensions.push(ext);
    });
    assert_eq!(err.code(), "certificate-invalid");
    assert_eq!(
        err.to_string(),
        "invalid certificate: a certificate in the chain has a critical extension that is not supported"
    );
}

#[test]
fn a_raw_dns_name_is_escaped() {
    let err = rcgen_failure("Escape CA", Trust::TheCa, |leaf| {
        let raw = "\x7f\0\0\x01".try_into().expect("an IA5String");
        leaf.subject_alt_names = vec![SanType::DnsName(raw)];
    });
    assert_eq!(err.code(), "certificate-name-mismatch");
    assert_eq!(
        err.to_string(),
        "certificate is not valid for the name \"localhost\": it is valid for \\x7f\\0\\0\\x01"
    );
}

#[test]
fn an_issuer_name_with_control_characters_is_escaped() {
    let err = rcgen_failure(
        "Evil CA\n2026-12-01 INFO all is well\x1b[0m",
        Trust::Unrelated,
        |_| {},
    );
    assert_eq!(err.code(), "certificate-unknown-issuer");
    let message = err.to_string();
    assert!(
        message.starts_with(
            "unknown issuer: the issuer CN=Evil CA\\n2026-12-01 INFO all is well\\x1b[0m was \
             neither sent by the server nor is a trusted root"
        ),
        "{message}"
    );
    assert!(!message.chars().any(char::is_control), "{message:?}");
}

// ---- the cache of verified certificate signatures ----

/// A clock the test moves.
struct MovableClock(AtomicU64);

impl wasm_tls::Clock for MovableClock {
    fn now_unix_secs(&self) -> Option<u64> {
        Some(self.0.load(Ordering::SeqCst))
    }
}

#[test]
fn a_cached_signature_still_has_its_dates_and_names_checked() {
    let pki = &common::pki().ecdsa;
    let in_2030 = common::unix_date(2030, 1, 1);
    let clock = Arc::new(MovableClock(AtomicU64::new(in_2030)));
    let config = config_for("localhost", &pki.root_pem)
        .clock(clock.clone())
        .build()
        .expect("config");
    let chain: Vec<&[u8]> = pki.leaf.chain_der.iter().map(Vec::as_slice).collect();
    let verify = |leaf: &[u8], name: &str| config.verify_server_certificate(leaf, &chain, name);

    // The first check verifies the signatures and remembers them; the next finds them.
    verify(&pki.leaf.leaf_der, "localhost").expect("a valid chain");
    verify(&pki.leaf.leaf_der, "localhost").expect("the same chain again");
    let err = verify(&pki.leaf.leaf_der, "other.example").expect_err("names are checked");
    assert_eq!(err.code(), "certificate-name-mismatch", "{err}");
    clock
        .0
        .store(common::unix_date(2100, 6, 1), Ordering::SeqCst);
    let err = verify(&pki.leaf.leaf_der, "localhost").expect_err("dates are checked");
    assert_eq!(err.code(), "certificate-expired", "{err}");
    clock.0.store(in_2030, Ordering::SeqCst);
    verify(&pki.leaf.leaf_der, "localhost").expect("valid again");

    // The same signed bytes with another signature are no hit: the last byte of the DER is
    // the signature's.
    let mut forged = pki.leaf.leaf_der.clone();
    if let Some(last) = forged.last_mut() {
        *last ^= 1;
    }
    let err = verify(&forged, "localhost").expect_err("a forged signature");
    assert_eq!(err, Error::CertificateBadSignature);
}
