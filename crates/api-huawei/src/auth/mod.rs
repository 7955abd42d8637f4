//! SDK-HMAC-SHA256 verification (server side of Huawei Cloud API signing), following
//! `shared/reference/huawei-dcs.md` §2 step by step:
//!
//! 1. `Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b>, Signature=<hex>`;
//! 2. the access key must be known;
//! 3. `X-Sdk-Date` (`YYYYMMDDTHHMMSSZ`) within 15 minutes of the server clock;
//! 4. canonical URI: the raw path percent-decoded as a whole, split on `/`, each segment
//!    re-encoded (unreserved `A-Z a-z 0-9 - _ . ~` kept), with a trailing `/`;
//! 5. canonical query: pairs decoded, sorted by name then value, re-encoded;
//! 6. canonical headers in the SignedHeaders order, `name:trimmed value\n`;
//! 7. payload hash (empty body, `X-Sdk-Content-Sha256` literal, or SHA-256 of the body);
//! 8. HMAC-SHA256 with the secret key over `SDK-HMAC-SHA256\n<date>\n<hex(sha256(CR))>`,
//!    compared in constant time.
//!
//! Everything is checked against the raw request (path still percent-encoded, Host as sent,
//! body bytes as received). Nothing here panics on hostile input, and no error carries the
//! secret or the expected signature.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sessiond_api_common::timefmt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// Largest accepted distance between `X-Sdk-Date` and the server clock, both directions.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const MAX_ECHO: usize = 64;

/// A request as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The raw path, still percent-encoded, without the query.
    pub raw_path: &'a str,
    /// The raw query after `?` ("" if none).
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key: String,
    /// Unix seconds of `X-Sdk-Date`.
    pub timestamp: i64,
}

/// Why authentication failed; all answer 401 `APIGW.0301`, the message says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the request is not signed: send an Authorization header `SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<headers>, Signature=<hex>` (the Huawei Cloud SDK does this)")]
    Missing,
    #[error("the Authorization header is malformed: {0}")]
    Malformed(String),
    #[error("the signing algorithm {0:?} is not supported; sign with SDK-HMAC-SHA256")]
    Algorithm(String),
    #[error("the access key {0:?} is unknown to this server; check the AK the client uses")]
    UnknownKey(String),
    #[error("the X-Sdk-Date header is missing or not YYYYMMDDTHHMMSSZ (UTC)")]
    BadDate,
    #[error("the signature has expired: X-Sdk-Date {date} is {skew} s away from the server time {server}, outside the allowed 15 minutes; check the client's clock")]
    Expired {
        date: String,
        server: String,
        skew: i64,
    },
    #[error("the header {0} is signed but missing from the request")]
    MissingSignedHeader(String),
    #[error("the header {0} was sent more than once")]
    DuplicateHeader(String),
    #[error("SignedHeaders must include host and x-sdk-date")]
    UnsignedRequiredHeader,
    #[error("temporary security credentials (X-Security-Token) are not supported by this server; sign with a permanent AK/SK")]
    SecurityToken,
    #[error("verify aksk signature fail: the signature does not match; check the secret key and that no proxy changed the signed headers, path, query or body")]
    Mismatch,
}

fn echo(s: &str) -> String {
    s.chars()
        .take(MAX_ECHO)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

struct Authorization<'a> {
    access: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = value
        .split_once(' ')
        .ok_or_else(|| AuthError::Malformed("expected `SDK-HMAC-SHA256 Access=…`".into()))?;
    if algorithm != ALGORITHM {
        return Err(AuthError::Algorithm(echo(algorithm)));
    }
    let (mut access, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| AuthError::Malformed(format!("{:?} is not name=value", echo(part))))?;
        let slot = match name.trim() {
            "Access" => &mut access,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            other => {
                return Err(AuthError::Malformed(format!(
                    "unknown field {:?}",
                    echo(other)
                )))
            }
        };
        if slot.replace(value.trim()).is_some() {
            return Err(AuthError::Malformed(format!(
                "{} appears twice",
                name.trim()
            )));
        }
    }
    let access = access
        .filter(|a| !a.is_empty())
        .ok_or_else(|| AuthError::Malformed("Access is missing".into()))?;
    let signed = signed
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AuthError::Malformed("SignedHeaders is missing".into()))?;
    let signature = signature.ok_or_else(|| AuthError::Malformed("Signature is missing".into()))?;
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(AuthError::Malformed(
            "Signature must be 64 lower-case hex digits".into(),
        ));
    }
    let signed_headers: Vec<&str> = signed.split(';').collect();
    if signed_headers.iter().any(|h| {
        h.is_empty()
            || h.bytes()
                .any(|b| b.is_ascii_uppercase() || b.is_ascii_whitespace())
    }) {
        return Err(AuthError::Malformed(
            "SignedHeaders must be lower-case header names separated by ';'".into(),
        ));
    }
    Ok(Authorization {
        access,
        signed_headers,
        signature,
    })
}

fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h [u8]>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::DuplicateHeader(name.to_string()));
    }
    Ok(first.map(|v| v.as_bytes()))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes bytes (a `%` not followed by two hex digits stays as is; `+` stays `+`).
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex_value(input[i + 1]), hex_value(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

/// Percent-encodes everything but `A-Z a-z 0-9 - _ . ~` (upper-case hex), as Python's
/// `quote(s, safe='~')` does.
pub fn percent_encode(input: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in input {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

pub fn canonical_uri(raw_path: &str) -> String {
    let decoded = percent_decode(raw_path.as_bytes());
    let mut out = String::with_capacity(decoded.len() + 8);
    for (i, segment) in decoded.split(|b| *b == b'/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        percent_encode(segment, &mut out);
    }
    if !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// Decoded `name=value` pairs of a raw query, in wire order (empty pieces skipped).
pub fn query_pairs(raw_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k.as_bytes()), percent_decode(v.as_bytes()))
        })
        .collect()
}

pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs = query_pairs(raw_query);
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(k, &mut out);
        out.push('=');
        percent_encode(v, &mut out);
    }
    out
}

fn trim_bytes(mut v: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = v {
        if first.is_ascii_whitespace() {
            v = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = v {
        if last.is_ascii_whitespace() {
            v = rest;
        } else {
            break;
        }
    }
    v
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| {
        <Hmac<Sha256> as Mac>::new_from_slice(&[]).expect("an empty HMAC key is valid")
    });
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The string to sign of a request (for the verifier and for clients such as the load tool).
pub fn string_to_sign(
    request: &SignedRequest<'_>,
    signed_headers: &[&str],
    date: &str,
) -> Result<Vec<u8>, AuthError> {
    let mut canonical = Vec::with_capacity(512);
    canonical.extend_from_slice(request.method.to_ascii_uppercase().as_bytes());
    canonical.push(b'\n');
    canonical.extend_from_slice(canonical_uri(request.raw_path).as_bytes());
    canonical.push(b'\n');
    canonical.extend_from_slice(canonical_query(request.raw_query).as_bytes());
    canonical.push(b'\n');
    for name in signed_headers {
        let value = single_header(request.headers, name)?
            .ok_or_else(|| AuthError::MissingSignedHeader(echo(name)))?;
        canonical.extend_from_slice(name.as_bytes());
        canonical.push(b':');
        canonical.extend_from_slice(trim_bytes(value));
        canonical.push(b'\n');
    }
    // The header block ends with `\n` and the parts are joined with `\n`: a blank line.
    canonical.push(b'\n');
    canonical.extend_from_slice(signed_headers.join(";").as_bytes());
    canonical.push(b'\n');
    let payload = if request.body.is_empty() {
        EMPTY_SHA256.to_string()
    } else if let Some(literal) = single_header(request.headers, "x-sdk-content-sha256")? {
        String::from_utf8_lossy(literal).into_owned()
    } else {
        hex::encode(Sha256::digest(request.body))
    };
    canonical.extend_from_slice(payload.as_bytes());
    let mut sts = Vec::with_capacity(128);
    sts.extend_from_slice(ALGORITHM.as_bytes());
    sts.push(b'\n');
    sts.extend_from_slice(date.as_bytes());
    sts.push(b'\n');
    sts.extend_from_slice(hex::encode(Sha256::digest(&canonical)).as_bytes());
    Ok(sts)
}

/// The lower-case hex signature of a string to sign.
pub fn sign(secret: &[u8], string_to_sign: &[u8]) -> String {
    hex::encode(hmac_sha256(secret, string_to_sign))
}

/// Verifies a request signed with SDK-HMAC-SHA256 at server time `now_unix`; `secret_of`
/// gives the secret key of an access key.
pub fn verify(
    request: &SignedRequest<'_>,
    now_unix: i64,
    secret_of: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<Verified, AuthError> {
    let authorization =
        single_header(request.headers, "authorization")?.ok_or(AuthError::Missing)?;
    let authorization =
        std::str::from_utf8(authorization).map_err(|_| AuthError::Malformed("not ASCII".into()))?;
    let auth = parse_authorization(authorization)?;
    if !auth.signed_headers.contains(&"host") || !auth.signed_headers.contains(&"x-sdk-date") {
        return Err(AuthError::UnsignedRequiredHeader);
    }
    if single_header(request.headers, "x-security-token")?.is_some() {
        return Err(AuthError::SecurityToken);
    }
    let secret = secret_of(auth.access).ok_or_else(|| AuthError::UnknownKey(echo(auth.access)))?;
    let date = single_header(request.headers, "x-sdk-date")?
        .and_then(|d| std::str::from_utf8(d).ok())
        .map(str::trim)
        .ok_or(AuthError::BadDate)?;
    let timestamp = timefmt::parse_compact(date).ok_or(AuthError::BadDate)?;
    let skew = (now_unix - timestamp).abs();
    if skew > MAX_CLOCK_SKEW_SECS {
        return Err(AuthError::Expired {
            date: date.to_string(),
            server: timefmt::format_compact(now_unix),
            skew,
        });
    }
    let sts = string_to_sign(request, &auth.signed_headers, date)?;
    let expected = sign(&secret, &sts);
    if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        return Err(AuthError::Mismatch);
    }
    Ok(Verified {
        access_key: auth.access.to_string(),
        timestamp,
    })
}

#[cfg(test)]
mod tests;
