//! Records of any content, encrypted as a finished rustls server would: the way to send
//! a client well-formed records that break the protocol after the handshake.

use rustls::crypto::cipher::{MessageEncrypter, OutboundChunks, OutboundPlainMessage};
use rustls::SupportedCipherSuite;
use rustls::{ConnectionTrafficSecrets, ContentType, ProtocolVersion, ServerConnection};

/// Encrypts arbitrary records with a finished server's sending keys.
pub struct Sealer {
    encrypter: Box<dyn MessageEncrypter>,
    seq: u64,
}

impl Sealer {
    /// Takes over `server`'s sending keys. Its configuration must have
    /// `enable_secret_extraction` set, and it must have finished its handshake and sent
    /// everything. `None` if it cannot give its keys.
    pub fn new(server: ServerConnection) -> Option<Self> {
        let suite = server.negotiated_cipher_suite()?;
        let secrets = server.dangerous_extract_secrets().ok()?;
        let (seq, traffic) = secrets.tx;
        let (key, iv) = match traffic {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv }
            | ConnectionTrafficSecrets::Aes256Gcm { key, iv }
            | ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (key, iv),
            _ => return None,
        };
        let encrypter = match suite {
            SupportedCipherSuite::Tls13(s) => s.aead_alg.encrypter(key, iv),
            SupportedCipherSuite::Tls12(s) => {
                // TLS 1.2's AEAD nonce: the fixed part from the key block, the rest sent.
                let iv = iv.as_ref();
                let shape = s.aead_alg.key_block_shape();
                let (fixed, explicit) = iv.split_at(shape.fixed_iv_len.min(iv.len()));
                s.aead_alg.encrypter(key, fixed, explicit)
            }
        };
        Some(Self { encrypter, seq })
    }

    /// One record of content type `typ` carrying `payload`, encrypted. The payload may
    /// exceed the protocol's limits: that is the point.
    pub fn seal(&mut self, typ: u8, payload: &[u8]) -> Vec<u8> {
        let msg = OutboundPlainMessage {
            typ: ContentType::from(typ),
            // The legacy record version, TLS 1.2 in both versions' records.
            version: ProtocolVersion::TLSv1_2,
            payload: OutboundChunks::Single(payload),
        };
        let record = self
            .encrypter
            .encrypt(msg, self.seq)
            .map(|m| m.encode())
            .unwrap_or_default();
        self.seq += 1;
        record
    }
}
