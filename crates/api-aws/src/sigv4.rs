//! AWS Signature Version 4 verification for rest-json services, exactly as
//! `shared/reference/gamesparks.md` §6 states it: the raw request path with every segment
//! percent-encoded again (so `%3A` is signed as `%253A`), the canonical query rebuilt from the
//! decoded pairs, the body hashed here (AWS clients send no `x-amz-content-sha256`), the
//! credential scope checked against the served region and service, ±15 minutes of clock skew,
//! and a constant-time comparison of the signature.

use hmac::{Hmac, Mac};
use sessiond_api_common::timefmt;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
/// Allowed clock skew between the client and sessiond.
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;

type HmacSha256 = Hmac<Sha256>;

/// What is needed of a request to verify its signature: the raw values as received.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as on the request line, still percent-encoded, without the query.
    pub raw_path: &'a str,
    /// The raw query string (without `?`), empty when there is none.
    pub raw_query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
}

/// A request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
}

/// Why a signature is refused; each maps to the AWS error code clients know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No Authorization header (MissingAuthenticationTokenException).
    Missing,
    /// The Authorization header or a signed header is malformed or missing
    /// (IncompleteSignatureException).
    Incomplete(String),
    /// The access key is not known, or a session token was sent (UnrecognizedClientException).
    UnknownKey(String),
    /// Signature mismatch, wrong scope, or outside the time window (InvalidSignatureException).
    Invalid(String),
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnknownKey(_) => "UnrecognizedClientException",
            AuthError::Invalid(_) => "InvalidSignatureException",
        }
    }

    pub fn message(&self) -> String {
        match self {
            AuthError::Missing => "Missing Authentication Token".into(),
            AuthError::Incomplete(m) | AuthError::UnknownKey(m) | AuthError::Invalid(m) => {
                m.clone()
            }
        }
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authorization {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    terminator: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_authorization(value: &str) -> Result<Authorization, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once(' ').ok_or_else(|| {
        AuthError::Incomplete(format!(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters; got {:?}",
            truncate(value, 64)
        ))
    })?;
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!(
            "Unsupported Authorization algorithm {:?}; sign with {ALGORITHM}",
            truncate(algorithm, 64)
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(AuthError::Incomplete(format!(
                "Authorization header parameter {:?} is not of the form key=value",
                truncate(part, 64)
            )));
        };
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed_headers = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let missing: Vec<&str> = [
        ("Credential", credential.is_none()),
        ("SignedHeaders", signed_headers.is_none()),
        ("Signature", signature.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(n, _)| *n)
    .collect();
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(format!(
            "Authorization header requires '{}' parameter(s)",
            missing.join("', '")
        )));
    }
    let credential = credential.unwrap_or_default();
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope.iter().any(|s| s.is_empty()) {
        return Err(AuthError::Incomplete(format!(
            "Credential should be <access key>/<YYYYMMDD>/<region>/<service>/aws4_request; got {:?}",
            truncate(credential, 128)
        )));
    }
    let signed_headers: Vec<String> = signed_headers
        .unwrap_or_default()
        .split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if signed_headers.iter().any(|h| h.is_empty()) {
        return Err(AuthError::Incomplete(
            "SignedHeaders contains an empty header name".into(),
        ));
    }
    let signature = signature.unwrap_or_default();
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::Incomplete(
            "Signature must be 64 hexadecimal characters".into(),
        ));
    }
    Ok(Authorization {
        access_key_id: scope[0].to_string(),
        date: scope[1].to_string(),
        region: scope[2].to_string(),
        service: scope[3].to_string(),
        terminator: scope[4].to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The request time: `X-Amz-Date`, else the `Date` header (RFC 7231 IMF-fixdate).
fn request_time(headers: &http::HeaderMap) -> Result<(String, i64), AuthError> {
    if let Some(v) = header_str(headers, "x-amz-date") {
        let t = timefmt::parse_compact(v).ok_or_else(|| {
            AuthError::Incomplete(format!(
                "X-Amz-Date {:?} is not of the form YYYYMMDD'T'HHMMSS'Z'",
                truncate(v, 32)
            ))
        })?;
        return Ok((v.to_string(), t));
    }
    if let Some(v) = header_str(headers, "date") {
        let t = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822)
            .map_err(|_| {
                AuthError::Incomplete(format!("Date header {:?} cannot be read", truncate(v, 40)))
            })?
            .unix_timestamp();
        return Ok((timefmt::format_compact(t), t));
    }
    Err(AuthError::Incomplete(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header"
            .into(),
    ))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes every byte but `A-Z a-z 0-9 - _ . ~` (upper-case hex).
pub fn uri_encode(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// The canonical URI of a rest-json request: each segment of the raw path encoded again.
pub fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".into();
    }
    let mut out = String::with_capacity(raw_path.len() * 2);
    for (i, segment) in raw_path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        uri_encode(segment.as_bytes(), &mut out);
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(s).collect()
}

/// The canonical query: pairs decoded, re-encoded, sorted by name then value.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let mut name = String::new();
            uri_encode(&percent_decode(k), &mut name);
            let mut value = String::new();
            uri_encode(&percent_decode(v), &mut value);
            (name, value)
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trims a header value and collapses inner runs of spaces.
fn canonical_header_value(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.trim().chars() {
        if c == ' ' || c == '\t' {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this never fails; an empty result would only make
    // the signature mismatch.
    match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// The signing key for (secret, date, region, service).
pub fn signing_key(secret: &[u8], date: &str, region: &str, service: &str) -> Vec<u8> {
    let mut k = b"AWS4".to_vec();
    k.extend_from_slice(secret);
    let k_date = hmac(&k, date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, TERMINATOR.as_bytes())
}

/// CanonicalRequest of §6 step 9 for the given signed headers and payload hash.
pub fn canonical_request(
    req: &SignedRequest<'_>,
    signed_headers: &[String],
    payload_hash: &str,
) -> Result<String, AuthError> {
    let mut headers_block = String::new();
    for name in signed_headers {
        let values: Vec<String> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| canonical_header_value(v.as_bytes()))
            .collect();
        if values.is_empty() {
            return Err(AuthError::Incomplete(format!(
                "'{name}' is named in SignedHeaders but is not in the request"
            )));
        }
        headers_block.push_str(name);
        headers_block.push(':');
        headers_block.push_str(&values.join(","));
        headers_block.push('\n');
    }
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.raw_path),
        canonical_query(req.raw_query),
        headers_block,
        signed_headers.join(";"),
        payload_hash
    ))
}

/// Computes the signature a client with `secret` would send for this request (used by the
/// verifier and by tests and tools that sign requests).
pub fn sign(
    req: &SignedRequest<'_>,
    secret: &[u8],
    amz_date: &str,
    region: &str,
    service: &str,
    signed_headers: &[String],
) -> Result<String, AuthError> {
    let payload_hash = sha256_hex(req.body);
    let canonical = canonical_request(req, signed_headers, &payload_hash)?;
    let date = amz_date.get(..8).unwrap_or("");
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{date}/{region}/{service}/{TERMINATOR}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(secret, date, region, service);
    Ok(hex::encode(hmac(&key, string_to_sign.as_bytes())))
}

/// Verifies a SigV4-signed request. `lookup` gives the secret of an access key id.
pub fn verify(
    req: &SignedRequest<'_>,
    now_unix: i64,
    region: &str,
    service: &str,
    lookup: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<Verified, AuthError> {
    let header = match req.headers.get(http::header::AUTHORIZATION) {
        None => return Err(AuthError::Missing),
        Some(v) => v
            .to_str()
            .map_err(|_| AuthError::Incomplete("Authorization header is not ASCII".into()))?,
    };
    let auth = parse_authorization(header)?;
    if auth.terminator != TERMINATOR {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            truncate(&auth.terminator, 32)
        )));
    }
    if auth.service != service {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped to correct service: '{service}'. "
        )));
    }
    if auth.region != region {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped to a valid region, not '{}'. sessiond serves '{region}'.",
            truncate(&auth.region, 32)
        )));
    }
    let (amz_date, t) = request_time(req.headers)?;
    let date_part = amz_date.get(..8).unwrap_or("");
    if auth.date != date_part {
        return Err(AuthError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            truncate(&auth.date, 16),
            date_part
        )));
    }
    if now_unix - t > MAX_SKEW_SECONDS {
        return Err(AuthError::Invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            timefmt::format_compact(now_unix - MAX_SKEW_SECONDS),
            timefmt::format_compact(now_unix)
        )));
    }
    if t - now_unix > MAX_SKEW_SECONDS {
        return Err(AuthError::Invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            timefmt::format_compact(now_unix + MAX_SKEW_SECONDS),
            timefmt::format_compact(now_unix)
        )));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::Incomplete(
            "'Host' must be a signed header (SignedHeaders lacks host)".into(),
        ));
    }
    for required in ["x-amz-date", "x-amz-security-token", "x-amz-content-sha256"] {
        if req.headers.contains_key(required) && !auth.signed_headers.iter().any(|h| h == required)
        {
            return Err(AuthError::Incomplete(format!(
                "'{required}' is in the request but not in SignedHeaders; it must be signed"
            )));
        }
    }
    let secret = lookup(&auth.access_key_id).ok_or_else(|| {
        AuthError::UnknownKey("The security token included in the request is invalid.".into())
    })?;
    if req.headers.contains_key("x-amz-security-token") {
        // sessiond issues no temporary credentials, so no session token can be valid.
        return Err(AuthError::UnknownKey(
            "The security token included in the request is invalid.".into(),
        ));
    }
    let body_hash = sha256_hex(req.body);
    if let Some(claimed) = header_str(req.headers, "x-amz-content-sha256") {
        if !bool::from(claimed.as_bytes().ct_eq(body_hash.as_bytes())) {
            return Err(AuthError::Invalid(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ));
        }
    }
    let expected = sign(
        req,
        &secret,
        &amz_date,
        &auth.region,
        &auth.service,
        &auth.signed_headers,
    )?;
    if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        return Err(AuthError::Invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
                .into(),
        ));
    }
    Ok(Verified {
        access_key_id: auth.access_key_id,
        region: auth.region,
    })
}

#[cfg(test)]
mod tests;
