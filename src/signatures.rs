//! The signature algorithms accepted in certificates and in the handshake: ring's, plus
//! the ECDSA ones ring lacks and browsers and OpenSSL 3 accept (P-521, and SHA-512 on
//! P-256 and P-384), on the RustCrypto curves.
//!
//! These only verify public data (certificates and the server's handshake signature), so
//! the curves' variable-time arithmetic leaks nothing secret.

use ecdsa::signature::hazmat::PrehashVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{alg_id, AlgorithmIdentifier, InvalidSignature};
use rustls::pki_types::{
    SignatureVerificationAlgorithm as Algorithm, SignatureVerificationAlgorithm,
};
use rustls::SignatureScheme;
use webpki::ring as ring_algs;

use crate::signature_cache::Cached;

/// The hash an ECDSA signature is made over.
#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> ring::digest::Digest {
        // ring's hashes, already in the build, rather than a second implementation.
        let algorithm = match self {
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        };
        ring::digest::digest(algorithm, message)
    }

    fn signature_alg_id(self) -> AlgorithmIdentifier {
        match self {
            Self::Sha256 => alg_id::ECDSA_SHA256,
            Self::Sha384 => alg_id::ECDSA_SHA384,
            Self::Sha512 => alg_id::ECDSA_SHA512,
        }
    }
}

/// The curve of the signer's key.
#[derive(Debug, Clone, Copy)]
enum Curve {
    P256,
    P384,
    P521,
}

/// ECDSA with a DER-encoded signature (as in certificates and TLS), on a RustCrypto curve.
#[derive(Debug)]
struct Ecdsa {
    curve: Curve,
    hash: Hash,
}

impl Ecdsa {
    fn verify(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Option<()> {
        // The hash is truncated to the curve's order by the verifier (FIPS 186-4 6.4).
        let prehash = self.hash.digest(message);
        match self.curve {
            Curve::P256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key).ok()?;
                let sig = p256::ecdsa::Signature::from_der(signature).ok()?;
                key.verify_prehash(prehash.as_ref(), &sig).ok()
            }
            Curve::P384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key).ok()?;
                let sig = p384::ecdsa::Signature::from_der(signature).ok()?;
                key.verify_prehash(prehash.as_ref(), &sig).ok()
            }
            Curve::P521 => {
                let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(public_key).ok()?;
                let sig = p521::ecdsa::Signature::from_der(signature).ok()?;
                key.verify_prehash(prehash.as_ref(), &sig).ok()
            }
        }
    }
}

impl SignatureVerificationAlgorithm for Ecdsa {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        self.verify(public_key, message, signature)
            .ok_or(InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        match self.curve {
            Curve::P256 => alg_id::ECDSA_P256,
            Curve::P384 => alg_id::ECDSA_P384,
            Curve::P521 => alg_id::ECDSA_P521,
        }
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.hash.signature_alg_id()
    }
}

/// ECDSA P-256 with SHA-512.
pub(crate) static ECDSA_P256_SHA512: &dyn Algorithm = &Ecdsa {
    curve: Curve::P256,
    hash: Hash::Sha512,
};
/// ECDSA P-384 with SHA-512.
pub(crate) static ECDSA_P384_SHA512: &dyn Algorithm = &Ecdsa {
    curve: Curve::P384,
    hash: Hash::Sha512,
};
/// ECDSA P-521 with SHA-256.
pub(crate) static ECDSA_P521_SHA256: &dyn Algorithm = &Ecdsa {
    curve: Curve::P521,
    hash: Hash::Sha256,
};
/// ECDSA P-521 with SHA-384.
pub(crate) static ECDSA_P521_SHA384: &dyn Algorithm = &Ecdsa {
    curve: Curve::P521,
    hash: Hash::Sha384,
};
/// ECDSA P-521 with SHA-512.
pub(crate) static ECDSA_P521_SHA512: &dyn Algorithm = &Ecdsa {
    curve: Curve::P521,
    hash: Hash::Sha512,
};

/// ring's algorithms and ours, for certificate signatures (`all`, which look up the
/// configuration's cache of verified signatures: see [`crate::signature_cache`]) and for
/// the handshake signature (`mapping`, never cached). In TLS 1.3 a scheme names its
/// curve and rustls uses only the first algorithm of its entry; in TLS 1.2 it tries
/// each, whatever the key's curve.
pub(crate) static SUPPORTED: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        &Cached(&ring_algs::ECDSA_P256_SHA256),
        &Cached(&ring_algs::ECDSA_P256_SHA384),
        &Cached(&ECDSA_P256_SHA512),
        &Cached(&ring_algs::ECDSA_P384_SHA256),
        &Cached(&ring_algs::ECDSA_P384_SHA384),
        &Cached(&ECDSA_P384_SHA512),
        &Cached(&ECDSA_P521_SHA256),
        &Cached(&ECDSA_P521_SHA384),
        &Cached(&ECDSA_P521_SHA512),
        &Cached(&ring_algs::ED25519),
        &Cached(&ring_algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY),
        &Cached(&ring_algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY),
        &Cached(&ring_algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY),
        &Cached(&ring_algs::RSA_PKCS1_2048_8192_SHA256),
        &Cached(&ring_algs::RSA_PKCS1_2048_8192_SHA384),
        &Cached(&ring_algs::RSA_PKCS1_2048_8192_SHA512),
        &Cached(&ring_algs::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS),
        &Cached(&ring_algs::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS),
        &Cached(&ring_algs::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS),
    ],
    mapping: &[
        (
            SignatureScheme::ECDSA_NISTP384_SHA384,
            &[
                ring_algs::ECDSA_P384_SHA384,
                ring_algs::ECDSA_P256_SHA384,
                ECDSA_P521_SHA384,
            ],
        ),
        (
            SignatureScheme::ECDSA_NISTP256_SHA256,
            &[
                ring_algs::ECDSA_P256_SHA256,
                ring_algs::ECDSA_P384_SHA256,
                ECDSA_P521_SHA256,
            ],
        ),
        (
            SignatureScheme::ECDSA_NISTP521_SHA512,
            &[ECDSA_P521_SHA512, ECDSA_P256_SHA512, ECDSA_P384_SHA512],
        ),
        (SignatureScheme::ED25519, &[ring_algs::ED25519]),
        (
            SignatureScheme::RSA_PSS_SHA512,
            &[ring_algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA384,
            &[ring_algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PSS_SHA256,
            &[ring_algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA512,
            &[ring_algs::RSA_PKCS1_2048_8192_SHA512],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA384,
            &[ring_algs::RSA_PKCS1_2048_8192_SHA384],
        ),
        (
            SignatureScheme::RSA_PKCS1_SHA256,
            &[ring_algs::RSA_PKCS1_2048_8192_SHA256],
        ),
    ],
};

/// A signature or public-key algorithm in words, from the contents of its DER
/// `AlgorithmIdentifier` (the OID, then any parameters): `ECDSA with SHA-512
/// (1.2.840.10045.4.3.4)`.
pub(crate) fn describe_algorithm(alg_id: &[u8]) -> String {
    let Some(oid) = oid_of(alg_id) else {
        return "an unreadable algorithm".to_owned();
    };
    let dotted = crate::certinfo::dotted_oid(oid);
    let name = match dotted.as_str() {
        "1.2.840.10045.4.1" => Some("ECDSA with SHA-1"),
        "1.2.840.10045.4.3.1" => Some("ECDSA with SHA-224"),
        "1.2.840.10045.4.3.2" => Some("ECDSA with SHA-256"),
        "1.2.840.10045.4.3.3" => Some("ECDSA with SHA-384"),
        "1.2.840.10045.4.3.4" => Some("ECDSA with SHA-512"),
        "1.2.840.10045.2.1" => Some(match curve_of(alg_id).as_deref() {
            Some("1.2.840.10045.3.1.7") => "an ECDSA P-256 key",
            Some("1.3.132.0.34") => "an ECDSA P-384 key",
            Some("1.3.132.0.35") => "an ECDSA P-521 key",
            Some("1.3.132.0.10") => "an ECDSA secp256k1 key",
            _ => "an elliptic-curve key",
        }),
        "1.2.840.113549.1.1.1" => Some("an RSA key"),
        "1.2.840.113549.1.1.4" => Some("RSA PKCS#1 v1.5 with MD5"),
        "1.2.840.113549.1.1.5" => Some("RSA PKCS#1 v1.5 with SHA-1"),
        "1.2.840.113549.1.1.10" => Some("RSA-PSS"),
        "1.2.840.113549.1.1.11" => Some("RSA PKCS#1 v1.5 with SHA-256"),
        "1.2.840.113549.1.1.12" => Some("RSA PKCS#1 v1.5 with SHA-384"),
        "1.2.840.113549.1.1.13" => Some("RSA PKCS#1 v1.5 with SHA-512"),
        "1.2.840.113549.1.1.14" => Some("RSA PKCS#1 v1.5 with SHA-224"),
        "1.2.840.10040.4.3" => Some("DSA with SHA-1"),
        "2.16.840.1.101.3.4.3.2" => Some("DSA with SHA-256"),
        "1.3.101.112" => Some("Ed25519"),
        "1.3.101.113" => Some("Ed448"),
        "1.2.156.10197.1.501" => Some("SM2 with SM3"),
        "1.2.643.7.1.1.3.2" => Some("GOST R 34.10-2012 with 256-bit hash"),
        _ => None,
    };
    match name {
        Some(name) => format!("{name} ({dotted})"),
        None => format!("the algorithm {dotted}"),
    }
}

/// The OID's contents from an AlgorithmIdentifier's contents.
fn oid_of(alg_id: &[u8]) -> Option<&[u8]> {
    let (&tag, rest) = alg_id.split_first()?;
    let (&len, rest) = rest.split_first()?;
    (tag == 0x06 && len < 0x80).then_some(())?;
    rest.get(..usize::from(len))
}

/// The named curve of an id-ecPublicKey AlgorithmIdentifier, dotted.
fn curve_of(alg_id: &[u8]) -> Option<String> {
    let oid_len = 2 + oid_of(alg_id)?.len();
    oid_of(alg_id.get(oid_len..)?).map(crate::certinfo::dotted_oid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_algorithms_with_their_oids() {
        assert_eq!(
            describe_algorithm(alg_id::ECDSA_SHA512.as_ref()),
            "ECDSA with SHA-512 (1.2.840.10045.4.3.4)"
        );
        assert_eq!(
            describe_algorithm(alg_id::ECDSA_P521.as_ref()),
            "an ECDSA P-521 key (1.2.840.10045.2.1)"
        );
        assert_eq!(
            describe_algorithm(&[0x06, 0x03, 0x2b, 0x65, 0x71]),
            "Ed448 (1.3.101.113)"
        );
        assert_eq!(
            describe_algorithm(&[0x06, 0x02, 0x2a, 0x03]),
            "the algorithm 1.2.3"
        );
        assert_eq!(describe_algorithm(&[0x05, 0x00]), "an unreadable algorithm");
    }

    #[test]
    fn every_scheme_starts_with_its_tls13_curve() {
        // rustls verifies a TLS 1.3 CertificateVerify with the first entry only.
        let first = |scheme| {
            SUPPORTED
                .mapping
                .iter()
                .find(|(s, _)| *s == scheme)
                .map(|(_, algs)| algs[0].public_key_alg_id())
        };
        assert_eq!(
            first(SignatureScheme::ECDSA_NISTP521_SHA512),
            Some(alg_id::ECDSA_P521)
        );
        assert_eq!(
            first(SignatureScheme::ECDSA_NISTP384_SHA384),
            Some(alg_id::ECDSA_P384)
        );
    }
}
