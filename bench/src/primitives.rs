//! ring's primitives alone, to say what bounds the handshakes and the bulk figures:
//! P-256 and RSA-2048 signature checks, an X25519 key generation and agreement, and the
//! AEADs sealing 16 KiB records. Beside them, the candidates and additions of the core:
//! RustCrypto's P-256 verify, and the client's side of X25519MLKEM768.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::agreement::{self, EphemeralPrivateKey, UnparsedPublicKey as PeerKey};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use rustls::pki_types::PrivateKeyDer;
use serde::Serialize;

use crate::clock::now_us;
use crate::median;
use crate::pki::Identity;
use crate::Input;

#[derive(Debug, Serialize)]
pub struct PrimitiveFigure {
    pub id: String,
    pub name: String,
    /// Median over rounds, µs per operation (for the AEADs: MB/s).
    pub value: f64,
    pub unit: String,
    pub rounds: Vec<f64>,
}

fn per_op(
    id: &str,
    name: &str,
    n: usize,
    rounds: usize,
    mut op: impl FnMut() -> Result<(), String>,
) -> Result<PrimitiveFigure, String> {
    op()?;
    let mut values = Vec::new();
    for _ in 0..rounds {
        let start = now_us();
        for _ in 0..n {
            op()?;
        }
        values.push((now_us() - start) / n as f64);
    }
    Ok(PrimitiveFigure {
        id: id.into(),
        name: name.into(),
        value: median(&values),
        unit: "µs".into(),
        rounds: values,
    })
}

fn pkcs8(id: &Identity) -> &[u8] {
    match &id.key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der(),
        _ => &[],
    }
}

const MESSAGE: &[u8] = &[0x42; 130];

/// Measures the primitives `input` asks for: `input.handshakes` operations per round
/// (the AEADs: `input.bulk_bytes / 2` bytes), `input.rounds` rounds.
pub fn measure(
    ecdsa: &Identity,
    rsa: Option<&Identity>,
    input: &Input,
    out: &mut Vec<PrimitiveFigure>,
    errors: &mut Vec<String>,
) {
    let (n, rounds, aead_bytes) = (input.handshakes, input.rounds, input.bulk_bytes / 2);
    let wants = |id: &str| input.wants("primitives", id);
    let rng = SystemRandom::new();
    let mut push = |r: Result<PrimitiveFigure, String>| match r {
        Ok(f) => out.push(f),
        Err(e) => errors.push(format!("primitives: {e}")),
    };

    if wants("p256-verify") {
        push((|| {
            let key = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                pkcs8(ecdsa),
                &rng,
            )
            .map_err(|e| format!("P-256 key: {e}"))?;
            let sig = key.sign(&rng, MESSAGE).map_err(|e| e.to_string())?;
            let public =
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, key.public_key());
            per_op(
                "p256-verify",
                "ECDSA P-256 SHA-256 verify",
                n,
                rounds,
                || {
                    public
                        .verify(MESSAGE, sig.as_ref())
                        .map_err(|_| "P-256 verify failed".to_string())
                },
            )
        })());
    }

    // RustCrypto's verifier as the core would call it: parse the key and the DER
    // signature, hash with ring, verify the prehash; every time, as a handshake would.
    macro_rules! rustcrypto_p256 {
        ($id:literal, $name:literal, $krate:ident) => {
            if wants($id) {
                push((|| {
                    use $krate::ecdsa::signature::hazmat::PrehashVerifier;
                    let key = EcdsaKeyPair::from_pkcs8(
                        &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                        pkcs8(ecdsa),
                        &rng,
                    )
                    .map_err(|e| format!("P-256 key: {e}"))?;
                    let sig = key.sign(&rng, MESSAGE).map_err(|e| e.to_string())?;
                    let public = key.public_key().as_ref().to_vec();
                    per_op($id, $name, n, rounds, || {
                        let key = $krate::ecdsa::VerifyingKey::from_sec1_bytes(&public)
                            .map_err(|e| e.to_string())?;
                        let sig = $krate::ecdsa::Signature::from_der(sig.as_ref())
                            .map_err(|e| e.to_string())?;
                        let digest = ring::digest::digest(&ring::digest::SHA256, MESSAGE);
                        key.verify_prehash(digest.as_ref(), &sig)
                            .map_err(|_| "P-256 verify failed".to_string())
                    })
                })());
            }
        };
    }
    rustcrypto_p256!(
        "p256-verify-rustcrypto-0.13",
        "ECDSA P-256 SHA-256 verify, RustCrypto p256 0.13",
        p256
    );
    rustcrypto_p256!(
        "p256-verify-rustcrypto-0.14",
        "ECDSA P-256 SHA-256 verify, RustCrypto p256 0.14 (basepoint table)",
        p256_next
    );

    if wants("x25519mlkem768") {
        push((|| {
            // A server's share once (untimed); the client's side each time: X25519 and
            // ML-KEM-768 key generation, then X25519 agreement and decapsulation.
            let client = wasm_tls::X25519MLKEM768
                .start()
                .map_err(|e| e.to_string())?;
            let server = wasm_tls::X25519MLKEM768
                .start_and_complete(client.pub_key())
                .map_err(|e| e.to_string())?;
            per_op(
                "x25519mlkem768",
                "X25519MLKEM768 key generation and agreement (client)",
                n,
                rounds,
                || {
                    let client = wasm_tls::X25519MLKEM768
                        .start()
                        .map_err(|e| e.to_string())?;
                    // Another key than the server encapsulated to: decapsulation does
                    // the same work and yields another secret (implicit rejection).
                    client
                        .complete(&server.pub_key)
                        .map(drop)
                        .map_err(|e| e.to_string())
                },
            )
        })());
    }

    let peer = EphemeralPrivateKey::generate(&agreement::X25519, &rng)
        .and_then(|k| k.compute_public_key())
        .map(|k| k.as_ref().to_vec());
    if wants("x25519") {
        push(per_op(
            "x25519",
            "X25519 key generation and agreement",
            n,
            rounds,
            || {
                let peer = peer.as_ref().map_err(|e| e.to_string())?;
                let mine = EphemeralPrivateKey::generate(&agreement::X25519, &rng)
                    .map_err(|e| e.to_string())?;
                let _public = mine.compute_public_key().map_err(|e| e.to_string())?;
                agreement::agree_ephemeral(
                    mine,
                    &PeerKey::new(&agreement::X25519, &peer[..]),
                    |_| (),
                )
                .map_err(|e| e.to_string())
            },
        ));
    }

    if let Some(rsa) = rsa.filter(|_| wants("rsa2048-verify")) {
        push((|| {
            let key = RsaKeyPair::from_pkcs8(pkcs8(rsa)).map_err(|e| format!("RSA key: {e}"))?;
            let mut sig = vec![0; key.public().modulus_len()];
            key.sign(&signature::RSA_PSS_SHA256, &rng, MESSAGE, &mut sig)
                .map_err(|e| e.to_string())?;
            let public = UnparsedPublicKey::new(
                &signature::RSA_PSS_2048_8192_SHA256,
                key.public().as_ref().to_vec(),
            );
            per_op(
                "rsa2048-verify",
                "RSA-2048 PSS SHA-256 verify",
                n,
                rounds,
                || {
                    public
                        .verify(MESSAGE, &sig)
                        .map_err(|_| "RSA verify failed".to_string())
                },
            )
        })());
    }

    for (id, name, alg) in [
        ("aead-aes128gcm", "AES-128-GCM seal", &aead::AES_128_GCM),
        ("aead-aes256gcm", "AES-256-GCM seal", &aead::AES_256_GCM),
        (
            "aead-chacha20",
            "ChaCha20-Poly1305 seal",
            &aead::CHACHA20_POLY1305,
        ),
    ] {
        if !wants(id) {
            continue;
        }
        push((|| {
            let key_bytes = vec![7u8; alg.key_len()];
            let key =
                LessSafeKey::new(UnboundKey::new(alg, &key_bytes).map_err(|e| e.to_string())?);
            let mut record = vec![0x5au8; 16 * 1024];
            let records = (aead_bytes / record.len()).max(1);
            let mut values = Vec::new();
            for _ in 0..rounds {
                let start = now_us();
                for i in 0..records {
                    let mut nonce = [0u8; 12];
                    nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
                    let _tag = key
                        .seal_in_place_separate_tag(
                            Nonce::assume_unique_for_key(nonce),
                            Aad::from([0x17, 3, 3, 0x40, 0x11]),
                            &mut record,
                        )
                        .map_err(|e| e.to_string())?;
                }
                values.push((records * record.len()) as f64 / (now_us() - start));
            }
            Ok(PrimitiveFigure {
                id: id.into(),
                name: name.into(),
                value: median(&values),
                unit: "MB/s".into(),
                rounds: values,
            })
        })());
    }
}
