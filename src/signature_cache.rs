//! A bounded cache, one per configuration, of certificate signatures already verified.
//!
//! A client that connects again to the same server (resumption off, or its ticket spent)
//! gets the same chain, and checking the certificates' signatures is most of the
//! verification's cost in WebAssembly. An entry is the SHA-256 of everything the maths
//! depends on: the algorithm, the issuer's public key, the signed bytes and the signature.
//! A hit skips the maths only: rustls-webpki still parses the chain and checks validity
//! dates, names, usages and constraints on every handshake.
//!
//! Only the certificate-signature algorithms (`WebPkiSupportedAlgorithms::all`) look the
//! cache up, and only while [`SignatureCache::activate`] holds for the verifier's
//! certificate check; the handshake's own signature (CertificateVerify, which covers the
//! transcript) goes through `mapping` and is never cached.

use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use rustls::pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};

/// How many verified signatures a configuration remembers: a chain has one per
/// certificate it sends, so this covers some sixty servers' chains.
const CAPACITY: usize = 128;

type Digest = [u8; 32];

thread_local! {
    /// The cache of the certificate check running on this thread, if any: the
    /// algorithms are statics shared by every configuration, so the verifier hands
    /// them its own cache here for the length of the check.
    static ACTIVE: RefCell<Option<Arc<SignatureCache>>> = const { RefCell::new(None) };
}

/// Verified certificate signatures, oldest first out.
#[derive(Debug, Default)]
pub(crate) struct SignatureCache {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    known: HashSet<Digest>,
    order: VecDeque<Digest>,
}

/// Clears the thread's active cache when the certificate check ends, even by a panic.
pub(crate) struct Activation {
    previous: Option<Arc<SignatureCache>>,
}

impl Drop for Activation {
    fn drop(&mut self) {
        let previous = self.previous.take();
        ACTIVE.with(|slot| *slot.borrow_mut() = previous);
    }
}

impl SignatureCache {
    /// Makes this the cache the certificate-signature algorithms use on this thread
    /// until the returned guard drops.
    pub(crate) fn activate(self: &Arc<Self>) -> Activation {
        let previous = ACTIVE.with(|slot| slot.borrow_mut().replace(self.clone()));
        Activation { previous }
    }

    fn contains(&self, digest: &Digest) -> bool {
        self.entries
            .lock()
            .map(|entries| entries.known.contains(digest))
            .unwrap_or(false)
    }

    fn insert(&self, digest: Digest) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if !entries.known.insert(digest) {
            return;
        }
        entries.order.push_back(digest);
        if entries.order.len() > CAPACITY {
            if let Some(oldest) = entries.order.pop_front() {
                entries.known.remove(&oldest);
            }
        }
    }

    /// How many signatures are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.order.len()).unwrap_or(0)
    }
}

/// SHA-256 over each input, length-prefixed so that no two inputs run together.
fn digest_of(parts: &[&[u8]]) -> Digest {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    let mut digest = [0; 32];
    digest.copy_from_slice(context.finish().as_ref());
    digest
}

/// A certificate-signature algorithm that first looks in the active cache.
#[derive(Debug)]
pub(crate) struct Cached(pub(crate) &'static &'static dyn SignatureVerificationAlgorithm);

impl SignatureVerificationAlgorithm for Cached {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let inner = *self.0;
        let Some(cache) = ACTIVE.with(|slot| slot.borrow().clone()) else {
            return inner.verify_signature(public_key, message, signature);
        };
        let digest = digest_of(&[
            inner.public_key_alg_id().as_ref(),
            inner.signature_alg_id().as_ref(),
            public_key,
            message,
            signature,
        ]);
        if cache.contains(&digest) {
            return Ok(());
        }
        inner.verify_signature(public_key, message, signature)?;
        cache.insert(digest);
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.0.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.0.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.0.fips()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the verifications that reach it; accepts a signature equal to the message.
    #[derive(Debug)]
    struct Counting;

    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    impl SignatureVerificationAlgorithm for Counting {
        fn verify_signature(&self, _: &[u8], m: &[u8], s: &[u8]) -> Result<(), InvalidSignature> {
            CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if m == s {
                Ok(())
            } else {
                Err(InvalidSignature)
            }
        }
        fn public_key_alg_id(&self) -> AlgorithmIdentifier {
            rustls::pki_types::alg_id::ECDSA_P256
        }
        fn signature_alg_id(&self) -> AlgorithmIdentifier {
            rustls::pki_types::alg_id::ECDSA_SHA256
        }
    }

    static COUNTING: &dyn SignatureVerificationAlgorithm = &Counting;

    fn calls() -> usize {
        CALLS.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[test]
    fn a_verified_signature_skips_the_maths_only_while_its_cache_is_active() {
        let alg = Cached(&COUNTING);
        let cache = Arc::new(SignatureCache::default());
        let before = calls();
        {
            let _active = cache.activate();
            assert!(alg.verify_signature(b"key", b"tbs", b"tbs").is_ok());
            assert!(alg.verify_signature(b"key", b"tbs", b"tbs").is_ok());
            assert_eq!(calls() - before, 1, "the second is a hit");
            // Another key, message or signature is not a hit, and failures are not kept.
            assert!(alg.verify_signature(b"other key", b"tbs", b"tbs").is_ok());
            assert!(alg.verify_signature(b"key", b"tbs", b"forged").is_err());
            assert!(alg.verify_signature(b"key", b"tbs", b"forged").is_err());
            assert_eq!(calls() - before, 4);
        }
        // Not active: always verified.
        assert!(alg.verify_signature(b"key", b"tbs", b"tbs").is_ok());
        assert_eq!(calls() - before, 5);
        // Another configuration's cache knows nothing of this one's.
        let other = Arc::new(SignatureCache::default());
        let _active = other.activate();
        assert!(alg.verify_signature(b"key", b"tbs", b"tbs").is_ok());
        assert_eq!(calls() - before, 6);
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = SignatureCache::default();
        for i in 0..CAPACITY as u32 + 10 {
            cache.insert(digest_of(&[&i.to_be_bytes()]));
        }
        assert_eq!(cache.len(), CAPACITY);
        assert!(!cache.contains(&digest_of(&[&0u32.to_be_bytes()])));
        assert!(cache.contains(&digest_of(&[&(CAPACITY as u32 + 9).to_be_bytes()])));
    }
}
