//! The X25519MLKEM768 hybrid key exchange (draft-ietf-tls-ecdhe-mlkem): ML-KEM-768
//! (FIPS 203, RustCrypto `ml-kem`) beside ring's X25519, as Chrome, Firefox and
//! Cloudflare negotiate it by default.
//!
//! The shares and the shared secret put the ML-KEM part first, then X25519's. The X25519
//! half is also offered as a group of its own in the same ClientHello (rustls'
//! `hybrid_component`), so a server without ML-KEM picks X25519 with no HelloRetryRequest
//! and the client computes X25519 once for both.

use ml_kem::kem::{Decapsulate, KeyExport};
use ml_kem::{DecapsulationKey768, EncapsulationKey768, Seed};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::crypto::{ActiveKeyExchange, CompletedKeyExchange, SharedSecret, SupportedKxGroup};
use rustls::ffdhe_groups::FfdheGroup;
use rustls::{Error, NamedGroup, PeerMisbehaved, ProtocolVersion};
use zeroize::Zeroize;

/// The X25519MLKEM768 key exchange (codepoint 0x11EC) as a rustls key-exchange group:
/// what the client offers first (see
/// [`ConfigBuilder::post_quantum`](crate::ConfigBuilder::post_quantum)). In a provider's
/// `kx_groups` it goes before X25519, so that X25519's share rides in the same
/// ClientHello. It serves a rustls server too (the benchmarks' in-memory server uses it).
pub static X25519MLKEM768: &dyn SupportedKxGroup = &X25519MlKem768;

/// X25519's share and secret length.
const X25519_LEN: usize = 32;
/// ML-KEM-768's encapsulation key: the client's share.
const MLKEM768_ENCAPSULATION_KEY_LEN: usize = 1184;
/// ML-KEM-768's ciphertext: the server's share.
const MLKEM768_CIPHERTEXT_LEN: usize = 1088;

const INVALID_KEY_SHARE: Error = Error::PeerMisbehaved(PeerMisbehaved::InvalidKeyShare);

fn x25519() -> &'static dyn SupportedKxGroup {
    rustls::crypto::ring::kx_group::X25519
}

/// Fills `out` from ring's system random source: the one rustls already uses, which is
/// `crypto.getRandomValues` in a browser and the WASI random interface under WASI.
fn fill_random(out: &mut [u8]) -> Result<(), Error> {
    SystemRandom::new()
        .fill(out)
        .map_err(|_| Error::FailedToGetRandomBytes)
}

#[derive(Debug)]
struct X25519MlKem768;

impl SupportedKxGroup for X25519MlKem768 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let classical = x25519().start()?;
        // FIPS 203 key generation from a 64-byte seed (d || z), deterministic given it.
        let mut seed = Seed::default();
        fill_random(&mut seed)?;
        let decapsulation_key = Box::new(DecapsulationKey768::from_seed(seed));
        seed.zeroize();
        let encapsulation_key = decapsulation_key.encapsulation_key().to_bytes();
        let share = [encapsulation_key.as_slice(), classical.pub_key()].concat();
        Ok(Box::new(ActiveX25519MlKem768 {
            classical,
            decapsulation_key,
            share,
        }))
    }

    /// The server's side: encapsulates to the client's ML-KEM key and completes X25519.
    /// The client never calls it; it is here so that the group is whole (a server built
    /// on it interoperates, as the tests check).
    fn start_and_complete(&self, client_share: &[u8]) -> Result<CompletedKeyExchange, Error> {
        if client_share.len() != MLKEM768_ENCAPSULATION_KEY_LEN + X25519_LEN {
            return Err(INVALID_KEY_SHARE);
        }
        let (encapsulation_key, classical_share) =
            client_share.split_at(MLKEM768_ENCAPSULATION_KEY_LEN);
        let encapsulation_key = encapsulation_key
            .try_into()
            .ok()
            .and_then(|key| EncapsulationKey768::new(key).ok())
            .ok_or(INVALID_KEY_SHARE)?;
        let mut message = ml_kem::B32::default();
        fill_random(&mut message)?;
        let (ciphertext, mut pq_secret) = encapsulation_key.encapsulate_deterministic(&message);
        message.zeroize();
        let classical = x25519().start_and_complete(classical_share)?;
        let secret =
            SharedSecret::from([pq_secret.as_slice(), classical.secret.secret_bytes()].concat());
        pq_secret.zeroize();
        Ok(CompletedKeyExchange {
            group: NamedGroup::X25519MLKEM768,
            pub_key: [ciphertext.as_slice(), &classical.pub_key].concat(),
            secret,
        })
    }

    fn ffdhe_group(&self) -> Option<FfdheGroup<'static>> {
        None
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519MLKEM768
    }

    fn usable_for_version(&self, version: ProtocolVersion) -> bool {
        version == ProtocolVersion::TLSv1_3
    }
}

/// A client's X25519MLKEM768 exchange between ClientHello and ServerHello.
struct ActiveX25519MlKem768 {
    classical: Box<dyn ActiveKeyExchange>,
    // Boxed: the expanded key is some 3 KiB, moved with the exchange.
    decapsulation_key: Box<DecapsulationKey768>,
    share: Vec<u8>,
}

impl ActiveKeyExchange for ActiveX25519MlKem768 {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        if peer_pub_key.len() != MLKEM768_CIPHERTEXT_LEN + X25519_LEN {
            return Err(INVALID_KEY_SHARE);
        }
        let (ciphertext, classical_share) = peer_pub_key.split_at(MLKEM768_CIPHERTEXT_LEN);
        let ciphertext: &ml_kem::ml_kem_768::Ciphertext =
            ciphertext.try_into().map_err(|_| INVALID_KEY_SHARE)?;
        // ML-KEM decapsulation never fails: a bad ciphertext yields an unrelated secret
        // (implicit rejection), and the handshake then fails at Finished.
        let mut pq_secret = self.decapsulation_key.decapsulate(ciphertext);
        let classical_secret = self.classical.complete(classical_share)?;
        let secret =
            SharedSecret::from([pq_secret.as_slice(), classical_secret.secret_bytes()].concat());
        pq_secret.zeroize();
        Ok(secret)
    }

    fn hybrid_component(&self) -> Option<(NamedGroup, &[u8])> {
        Some((self.classical.group(), self.classical.pub_key()))
    }

    fn complete_hybrid_component(
        self: Box<Self>,
        peer_pub_key: &[u8],
    ) -> Result<SharedSecret, Error> {
        self.classical.complete(peer_pub_key)
    }

    fn pub_key(&self) -> &[u8] {
        &self.share
    }

    fn ffdhe_group(&self) -> Option<FfdheGroup<'static>> {
        None
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519MLKEM768
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_halves_agree() {
        let client = X25519MLKEM768.start().expect("start");
        assert_eq!(
            client.pub_key().len(),
            MLKEM768_ENCAPSULATION_KEY_LEN + X25519_LEN
        );
        let (group, classical) = client.hybrid_component().expect("hybrid");
        assert_eq!(group, NamedGroup::X25519);
        assert_eq!(
            classical,
            &client.pub_key()[MLKEM768_ENCAPSULATION_KEY_LEN..]
        );
        let server = X25519MLKEM768
            .start_and_complete(client.pub_key())
            .expect("server");
        assert_eq!(server.pub_key.len(), MLKEM768_CIPHERTEXT_LEN + X25519_LEN);
        let client_secret = client.complete(&server.pub_key).expect("complete");
        assert_eq!(client_secret.secret_bytes().len(), 64);
        assert_eq!(client_secret.secret_bytes(), server.secret.secret_bytes());
    }

    #[test]
    fn a_tampered_ciphertext_gives_another_secret() {
        let client = X25519MLKEM768.start().expect("start");
        let server = X25519MLKEM768
            .start_and_complete(client.pub_key())
            .expect("server");
        let mut tampered = server.pub_key.clone();
        tampered[0] ^= 1;
        let secret = client.complete(&tampered).expect("complete");
        assert_ne!(
            secret.secret_bytes()[..32],
            server.secret.secret_bytes()[..32]
        );
        assert_eq!(
            secret.secret_bytes()[32..],
            server.secret.secret_bytes()[32..]
        );
    }

    #[test]
    fn shares_of_the_wrong_length_are_refused() {
        assert!(X25519MLKEM768.start_and_complete(&[0; 32]).is_err());
        let client = X25519MLKEM768.start().expect("start");
        assert!(client.complete(&[0; MLKEM768_CIPHERTEXT_LEN]).is_err());
    }
}
