//! Runs the x509-limbo test vectors (<https://x509-limbo.com>) through
//! [`Config::verify_server_certificate`], which uses exactly the verifier and clock that
//! connections use.
//!
//! Only what a TLS client verifying a server can express is run: server validation
//! against a DNS name or an IP address, with trust anchors, untrusted intermediates and
//! a validation time. Cases that need something else (CRLs, a chain-depth limit, client
//! validation, key-usage requirements) are skipped and counted by reason.
//!
//! A case whose trusted certificates give no usable root cannot be expressed either: a
//! [`Config`] without roots does not build. Our client then refuses every server, so
//! such a case passes when limbo expects FAILURE and fails when it expects SUCCESS.
//! Validation times are truncated to whole seconds, as the [`wasm_tls::Clock`] counts.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use serde_json::Value;
use wasm_tls::{Config, FixedClock};

const LIMBO_JSON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/testdata/limbo-nobettertls.json"
);

/// The most intermediates rustls-webpki accepts in a chain (its `MAX_SUB_CA_COUNT`). A
/// limbo `max_chain_depth` at or above it restricts nothing more than webpki already
/// does, so such cases run; a lower one is a limit our verifier cannot be given.
const WEBPKI_MAX_INTERMEDIATES: u64 = 6;

/// Cases where rustls-webpki is known to decide differently from limbo's expectation,
/// with the reason. The test fails if one of these starts to agree, so the list stays
/// honest.
///
/// The classes of difference:
///
/// - Issuance rules. RFC 5280 and the CA/Browser Forum baseline requirements say what
///   a conforming CA MUST put in a certificate (AKI and SKI, serial numbers, critical
///   bits, a CN copied from the SAN, well-formed AIA, ...). webpki checks what a path
///   needs to be valid and secure, not whether the CA followed every issuance rule, and
///   it never reads the subject CN.
/// - Trust anchors are a name and a key. webpki reduces a root to its subject, public
///   key and name constraints, so a root's validity period, extensions, basic
///   constraints and criticality are not looked at.
/// - Subscriber keys. webpki checks the server's key when it verifies the handshake
///   signature, not while it builds the path (a P-192, DSA or RSA-1024 key would still
///   fail a real handshake; an RSA-2052 key would not).
/// - Public-suffix wildcards. webpki has no public suffix list.
/// - webpki is stricter than RFC 5280 on purpose: a CA certificate is never accepted as
///   the end entity, and self-issued intermediates get no exemption from path-length or
///   name constraints.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    // webpki is stricter than RFC 5280.
    (
        "pathlen::validation-ignores-pathlen-in-leaf",
        "a CA certificate as end entity is refused",
    ),
    (
        "rfc5280::ca-as-leaf",
        "a CA certificate as end entity is refused",
    ),
    (
        "pathlen::self-issued-certs-pathlen",
        "no path-length exemption for self-issued intermediates",
    ),
    (
        "rfc5280::nc::permitted-self-issued",
        "no name-constraint exemption for self-issued intermediates",
    ),
    // Issuance rules webpki does not enforce.
    ("rfc5280::aki::leaf-missing-aki", "AKI presence not checked"),
    (
        "rfc5280::aki::intermediate-missing-aki",
        "AKI presence not checked",
    ),
    (
        "rfc5280::aki::cross-signed-root-missing-aki",
        "AKI presence not checked",
    ),
    (
        "rfc5280::ski::intermediate-missing-ski",
        "SKI presence not checked",
    ),
    (
        "rfc5280::nc::permitted-dns-match-noncritical",
        "name constraints need not be critical",
    ),
    (
        "rfc5280::nc::invalid-dnsname-leading-period",
        "a leading period in a DNS constraint is accepted",
    ),
    (
        "rfc5280::nc::not-allowed-in-ee-noncritical",
        "name constraints in an end entity are ignored",
    ),
    (
        "rfc5280::nc::not-allowed-in-ee-critical",
        "name constraints in an end entity are ignored",
    ),
    (
        "rfc5280::pc::ica-noncritical-pc",
        "certificate policies are not processed",
    ),
    (
        "rfc5280::san::noncritical-with-empty-subject",
        "SAN criticality not checked",
    ),
    (
        "webpki::san::san-critical-with-nonempty-subject",
        "SAN criticality not checked",
    ),
    (
        "rfc5280::san::underscore-dns",
        "underscores in DNS names are accepted for compatibility",
    ),
    (
        "rfc5280::serial::too-long",
        "serial number size not checked",
    ),
    ("rfc5280::serial::zero", "serial number value not checked"),
    (
        "rfc5280::ca-empty-subject",
        "an empty CA subject is accepted",
    ),
    (
        "rfc5280::leaf-ku-keycertsign",
        "key usage of the end entity not checked",
    ),
    (
        "webpki::nc::intermediate-permitted-excluded-subtrees-both-null",
        "empty name constraints are accepted",
    ),
    (
        "webpki::nc::intermediate-permitted-excluded-subtrees-both-empty-sequences",
        "empty name constraints are accepted",
    ),
    ("webpki::malformed-aia", "AIA is not parsed"),
    ("webpki::eku::ee-anyeku", "anyExtendedKeyUsage is accepted"),
    (
        "webpki::eku::ee-critical-eku",
        "EKU criticality not checked",
    ),
    (
        "webpki::eku::ee-without-eku",
        "an end entity without EKU is accepted",
    ),
    (
        "webpki::cn::ipv4-hex-mismatch",
        "the subject CN is never read",
    ),
    (
        "webpki::cn::ipv4-leading-zeros-mismatch",
        "the subject CN is never read",
    ),
    (
        "webpki::cn::ipv6-uppercase-mismatch",
        "the subject CN is never read",
    ),
    (
        "webpki::cn::ipv6-uncompressed-mismatch",
        "the subject CN is never read",
    ),
    (
        "webpki::cn::ipv6-non-rfc5952-mismatch",
        "the subject CN is never read",
    ),
    (
        "webpki::cn::punycode-not-in-san",
        "the subject CN is never read",
    ),
    (
        "webpki::cn::utf8-vs-punycode-mismatch",
        "the subject CN is never read",
    ),
    ("webpki::cn::not-in-san", "the subject CN is never read"),
    ("webpki::cn::case-mismatch", "the subject CN is never read"),
    // Trust anchors are a name and a key.
    (
        "rfc5280::validity::expired-root",
        "a root's validity is not checked",
    ),
    (
        "rfc5280::aki::critical-aki",
        "a root's extensions are not checked",
    ),
    (
        "rfc5280::ski::critical-ski",
        "a root's extensions are not checked",
    ),
    (
        "rfc5280::ski::root-missing-ski",
        "a root's extensions are not checked",
    ),
    (
        "rfc5280::unknown-critical-extension-root",
        "a root's extensions are not checked",
    ),
    (
        "rfc5280::root-missing-basic-constraints",
        "a root's basic constraints are not checked",
    ),
    (
        "rfc5280::root-non-critical-basic-constraints",
        "a root's basic constraints are not checked",
    ),
    (
        "rfc5280::root-inconsistent-ca-extensions",
        "a root's key usage is not checked",
    ),
    (
        "webpki::aki::root-with-aki-missing-keyidentifier",
        "a root's extensions are not checked",
    ),
    (
        "webpki::aki::root-with-aki-authoritycertissuer",
        "a root's extensions are not checked",
    ),
    (
        "webpki::aki::root-with-aki-authoritycertserialnumber",
        "a root's extensions are not checked",
    ),
    (
        "webpki::aki::root-with-aki-all-fields",
        "a root's extensions are not checked",
    ),
    (
        "webpki::aki::root-with-aki-ski-mismatch",
        "a root's extensions are not checked",
    ),
    (
        "webpki::eku::root-has-eku",
        "a root's extensions are not checked",
    ),
    (
        "webpki::forbidden-rsa-not-divisible-by-8-in-root",
        "a root's key size is not checked",
    ),
    // Subscriber keys are checked by the handshake signature.
    (
        "webpki::forbidden-p192-leaf",
        "the server key is checked at handshake time",
    ),
    (
        "webpki::forbidden-dsa-leaf",
        "the server key is checked at handshake time",
    ),
    (
        "webpki::forbidden-weak-rsa-in-leaf",
        "the server key is checked at handshake time",
    ),
    (
        "webpki::forbidden-rsa-key-not-divisible-by-8-in-leaf",
        "RSA key sizes not divisible by 8 are accepted",
    ),
    // No public suffix list.
    (
        "webpki::san::public-suffix-multi-label-wildcard-san",
        "no public suffix list",
    ),
    (
        "webpki::san::public-suffix-private-namespace-wildcard-san",
        "no public suffix list",
    ),
];

/// One limbo case as far as it is needed here.
struct Case<'a> {
    id: &'a str,
    expect_success: bool,
    trusted: Vec<&'a str>,
    intermediates: Vec<CertificateDer<'static>>,
    leaf: CertificateDer<'static>,
    peer_name: &'a str,
    time: u64,
}

/// Why a case cannot be run through our client path, or `None` if it can.
fn skip_reason(case: &Value) -> Option<&'static str> {
    if case["validation_kind"] != "SERVER" {
        return Some("client validation");
    }
    match case["expected_peer_name"]["kind"].as_str() {
        Some("DNS") | Some("IP") => {}
        Some(_) => return Some("peer name not DNS or IP"),
        None => return Some("no expected peer name"),
    }
    if case["crls"].as_array().is_some_and(|crls| !crls.is_empty()) {
        return Some("CRLs");
    }
    if let Some(depth) = case["max_chain_depth"].as_u64() {
        if depth < WEBPKI_MAX_INTERMEDIATES {
            return Some("max chain depth");
        }
    }
    if case["key_usage"]
        .as_array()
        .is_some_and(|usages| !usages.is_empty())
    {
        return Some("key-usage requirement");
    }
    // webpki verifies a server for serverAuth: that is the only EKU requirement we can express.
    if let Some(ekus) = case["extended_key_usage"].as_array() {
        if ekus.iter().any(|eku| eku != "serverAuth") {
            return Some("EKU requirement other than serverAuth");
        }
    }
    None
}

fn parse_case(case: &Value, now: u64) -> Case<'_> {
    let id = case["id"].as_str().expect("a testcase without an id");
    let pem_list = |key: &str| -> Vec<&str> {
        case[key]
            .as_array()
            .unwrap_or_else(|| panic!("{id}: {key} is not a list"))
            .iter()
            .map(|pem| pem.as_str().expect("a PEM string"))
            .collect()
    };
    let parse_cert = |pem: &str| -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap_or_else(|err| panic!("{id}: a certificate PEM does not parse: {err}"))
    };
    // The Clock counts whole seconds: a fractional validation time is truncated, as
    // webpki itself truncates UnixTime to seconds.
    let time = match case["validation_time"].as_str() {
        Some(text) => {
            parse_rfc3339(text).unwrap_or_else(|| panic!("{id}: bad validation time {text:?}"))
        }
        None => now,
    };
    Case {
        id,
        expect_success: match case["expected_result"].as_str() {
            Some("SUCCESS") => true,
            Some("FAILURE") => false,
            other => panic!("{id}: unexpected expected_result {other:?}"),
        },
        trusted: pem_list("trusted_certs"),
        intermediates: pem_list("untrusted_intermediates")
            .into_iter()
            .map(parse_cert)
            .collect(),
        leaf: parse_cert(
            case["peer_certificate"]
                .as_str()
                .expect("a peer certificate"),
        ),
        peer_name: case["expected_peer_name"]["value"]
            .as_str()
            .expect("a peer name value"),
        time,
    }
}

/// Whether our client accepts the case's chain. `Err` describes a rejection.
fn verify(case: &Case<'_>) -> Result<(), String> {
    let mut builder = Config::builder(case.peer_name)
        .without_bundled_roots()
        .clock(Arc::new(FixedClock(case.time)));
    for pem in &case.trusted {
        builder = builder.add_roots_pem(pem);
    }
    // A configuration without usable roots does not build (InvalidConfig): our client
    // refuses every server then, which is the right answer for a case expecting FAILURE.
    let config = builder
        .build()
        .map_err(|err| format!("configuration refused: {err}"))?;
    let intermediates: Vec<&[u8]> = case.intermediates.iter().map(|c| c.as_ref()).collect();
    config
        .verify_server_certificate(&case.leaf, &intermediates, case.peer_name)
        .map_err(|err| format!("{}: {err}", err.code()))
}

/// Parses an RFC 3339 timestamp (`2024-01-01T00:00:00Z`, `...+01:00`, fractions
/// truncated) into seconds since the Unix epoch.
fn parse_rfc3339(text: &str) -> Option<u64> {
    let num = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year = num(date_parts.next()?)?;
    let month = num(date_parts.next()?)?;
    let day = num(date_parts.next()?)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }

    let zone_at = rest.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = rest.split_at(zone_at);
    let clock = clock.split('.').next()?;
    let mut clock_parts = clock.splitn(3, ':');
    let hour = num(clock_parts.next()?)?;
    let minute = num(clock_parts.next()?)?;
    let second = num(clock_parts.next()?)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':')?;
            sign * (num(h)? * 3600 + num(m)? * 60)
        }
    };

    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[test]
fn rfc3339_parser() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339("1970-01-01T00:00:03+00:00"), Some(3));
    assert_eq!(
        parse_rfc3339("2024-01-01T00:00:00+00:00"),
        Some(1_704_067_200)
    );
    assert_eq!(
        parse_rfc3339("2024-03-01T00:00:00.999+00:00"),
        Some(1_709_251_200)
    );
    assert_eq!(
        parse_rfc3339("2024-03-01T01:00:00+01:00"),
        Some(1_709_251_200)
    );
    assert_eq!(
        parse_rfc3339("2024-02-29T23:00:00-01:00"),
        Some(1_709_251_200)
    );
    assert_eq!(parse_rfc3339("2969-05-03T00:00:01Z"), Some(31_536_000_001));
    assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
    assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
    assert_eq!(parse_rfc3339("yesterday"), None);
}

#[test]
fn limbo() {
    let json = match std::fs::read_to_string(LIMBO_JSON) {
        Ok(json) => json,
        Err(err) => {
            println!("limbo: skipped, cannot read {LIMBO_JSON}: {err}");
            return;
        }
    };
    let limbo: Value = serde_json::from_str(&json).expect("the limbo JSON parses");
    let cases = limbo["testcases"]
        .as_array()
        .expect("the limbo JSON has a testcases list");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the system clock is after 1970")
        .as_secs();

    let mut passed = 0;
    let mut refused_without_roots = 0;
    let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
    let mut known = Vec::new();
    let mut failures = Vec::new();
    let mut seen_exceptions = Vec::new();

    for raw in cases {
        if let Some(reason) = skip_reason(raw) {
            *skipped.entry(reason).or_default() += 1;
            continue;
        }
        let case = parse_case(raw, now);
        let outcome = verify(&case);
        let agrees = outcome.is_ok() == case.expect_success;
        let exception = KNOWN_DIFFERENCES.iter().find(|(id, _)| *id == case.id);
        let outcome_text = match &outcome {
            Ok(()) => "accepted".to_owned(),
            Err(why) => format!("rejected ({why})"),
        };
        let expected_text = if case.expect_success {
            "SUCCESS"
        } else {
            "FAILURE"
        };
        match (agrees, exception) {
            (true, None) => {
                passed += 1;
                if outcome
                    .as_ref()
                    .is_err_and(|why| why.starts_with("configuration refused"))
                {
                    refused_without_roots += 1;
                }
            }
            (false, Some((id, reason))) => {
                seen_exceptions.push(*id);
                known.push(format!(
                    "{id}: expected {expected_text}, {outcome_text}: {reason}"
                ));
            }
            (true, Some((id, _))) => {
                seen_exceptions.push(*id);
                failures.push(format!(
                    "{id}: listed as a known difference, but now agrees ({outcome_text}); remove it from KNOWN_DIFFERENCES"
                ));
            }
            (false, None) => failures.push(format!(
                "{}: expected {expected_text}, {outcome_text}",
                case.id
            )),
        }
    }
    for (id, _) in KNOWN_DIFFERENCES {
        if !seen_exceptions.contains(id) {
            failures.push(format!(
                "{id}: listed in KNOWN_DIFFERENCES but not run (unknown id or skipped)"
            ));
        }
    }

    let skipped_total: usize = skipped.values().sum();
    let reasons: Vec<String> = skipped
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    println!(
        "limbo: {passed} passed ({refused_without_roots} of them by refusing a configuration without usable roots), {} known differences, {skipped_total} skipped ({})",
        known.len(),
        reasons.join(", ")
    );
    for line in &known {
        println!("  known difference: {line}");
    }
    assert!(
        failures.is_empty(),
        "{} limbo cases disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
