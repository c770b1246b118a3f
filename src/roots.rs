//! Trust anchors as a compact byte bundle, so that Mozilla's roots can ship as a file of
//! their own that only the applications which need them load (the browser package's
//! `roots.bin`), instead of inside every build of the code.
//!
//! The format: the magic `WTA1`, then for each anchor three length-prefixed fields (u16,
//! big-endian): `subject`, `subjectPublicKeyInfo` and `nameConstraints` (empty if none),
//! exactly as rustls-webpki's `TrustAnchor` holds them.

use rustls::pki_types::{Der, TrustAnchor};

use crate::error::Error;

const MAGIC: &[u8; 4] = b"WTA1";

/// Encodes trust anchors as a bundle for [`ConfigBuilder::add_trust_anchors`](crate::ConfigBuilder::add_trust_anchors).
///
/// An anchor with a field of 64 KiB or more cannot be encoded and is left out (no real
/// anchor comes near that), so a bundle never trusts more than its input.
pub fn encode_trust_anchors(anchors: &[TrustAnchor<'_>]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for anchor in anchors {
        let nc: &[u8] = anchor.name_constraints.as_deref().unwrap_or(&[]);
        let fields = [
            anchor.subject.as_ref(),
            anchor.subject_public_key_info.as_ref(),
            nc,
        ];
        if fields.iter().any(|f| u16::try_from(f.len()).is_err()) {
            continue;
        }
        for field in fields {
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field);
        }
    }
    out
}

/// Mozilla's roots (webpki-roots) as a bundle.
#[cfg(feature = "bundled-roots")]
pub fn bundled_trust_anchors() -> Vec<u8> {
    encode_trust_anchors(webpki_roots::TLS_SERVER_ROOTS)
}

/// Decodes a bundle made by [`encode_trust_anchors`].
pub(crate) fn decode_trust_anchors(bundle: &[u8]) -> Result<Vec<TrustAnchor<'static>>, Error> {
    let bad =
        |why: &str| Error::invalid_config(format!("the trust-anchor bundle is not valid: {why}"));
    let mut rest = bundle
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| bad("it does not start with WTA1"))?;
    let field = |rest: &mut &[u8]| -> Result<Vec<u8>, Error> {
        let (len, tail) = rest
            .split_first_chunk::<2>()
            .ok_or_else(|| bad("it ends inside a length"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(bad("it ends inside a field"));
        }
        let (value, tail) = tail.split_at(len);
        *rest = tail;
        Ok(value.to_vec())
    };
    let mut anchors = Vec::new();
    while !rest.is_empty() {
        let subject = field(&mut rest)?;
        let spki = field(&mut rest)?;
        let nc = field(&mut rest)?;
        if subject.is_empty() || spki.is_empty() {
            return Err(bad("an anchor has an empty subject or key"));
        }
        anchors.push(TrustAnchor {
            subject: Der::from(subject),
            subject_public_key_info: Der::from(spki),
            name_constraints: (!nc.is_empty()).then(|| Der::from(nc)),
        });
    }
    if anchors.is_empty() {
        return Err(bad("it holds no anchors"));
    }
    Ok(anchors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "bundled-roots")]
    fn the_bundled_roots_round_trip() {
        let bundle = bundled_trust_anchors();
        let decoded = decode_trust_anchors(&bundle).expect("decodes");
        assert_eq!(decoded.len(), webpki_roots::TLS_SERVER_ROOTS.len());
        for (a, b) in decoded.iter().zip(webpki_roots::TLS_SERVER_ROOTS) {
            assert_eq!(a.subject.as_ref(), b.subject.as_ref());
            assert_eq!(
                a.subject_public_key_info.as_ref(),
                b.subject_public_key_info.as_ref()
            );
            assert_eq!(a.name_constraints.as_deref(), b.name_constraints.as_deref());
        }
    }

    #[test]
    fn bad_bundles_are_typed_errors() {
        for bundle in [
            &b""[..],
            b"WTA0",
            b"WTA1",
            b"WTA1\x00",
            b"WTA1\x00\x05ab",
            b"WTA1\x00\x00\x00\x00\x00\x00",
        ] {
            let err = decode_trust_anchors(bundle).expect_err("must fail");
            assert_eq!(err.code(), "invalid-config");
        }
    }
}
