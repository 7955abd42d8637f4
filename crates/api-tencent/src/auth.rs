//! Signature verification (TC3-HMAC-SHA256 and v1 HmacSHA1/HmacSHA256).
//!
//! Server side of Tencent Cloud API 3.0 request signing, following
//! `shared/reference/tencent-api3.md` §3 (TC3) and §4 (v1) exactly:
//!
//! * An `Authorization` header starting with `TC3-HMAC-SHA256` selects TC3.
//! * Otherwise a `Signature` parameter (query for GET, form body for POST)
//!   selects v1 (`HmacSHA1` by default, `HmacSHA256` on request).
//! * Otherwise the request is unsigned and rejected.
//!
//! Checks run in this order: parse → SecretId known → ±300 s clock window →
//! signature → session token (we have no STS, so any token is rejected).
//! Every signature comparison is constant time. Nothing in here panics on
//! hostile input: header values are handled as raw bytes, numbers are parsed
//! with overflow checks.
//!
//! Everything is verified against the raw request: the `Host` header as sent
//! (it may be the literal `http://127.0.0.1:8080`), the raw query string and
//! the raw body bytes. Never re-serialise or normalise before calling
//! [`verify`].

use std::borrow::Cow;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, HOST};
use http::HeaderMap;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Largest accepted distance between the request timestamp and the server
/// clock, in seconds (both directions).
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// Algorithm name of Tencent signature v3.
pub const TC3_ALGORITHM: &str = "TC3-HMAC-SHA256";

const TC3_TERMINATOR: &str = "tc3_request";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const X_TC_TIMESTAMP: HeaderName = HeaderName::from_static("x-tc-timestamp");
const X_TC_TOKEN: HeaderName = HeaderName::from_static("x-tc-token");
const X_TC_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-tc-content-sha256");
/// Longest untrusted string echoed back in an error message.
const MAX_ECHO_CHARS: usize = 128;

/// A request as received, with everything the signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `"GET"` or `"POST"` (others: caller rejects before).
    pub method: &'a str,
    /// The raw query string after '?', still percent-encoded ("" if none).
    pub raw_query: &'a str,
    /// As received; Host may be the literal "http://127.0.0.1:8080".
    pub headers: &'a HeaderMap,
    /// Raw body bytes.
    pub body: &'a [u8],
    /// Decoded form/query parameters (form rules: '+' = space, %XX), in wire order, for v1.
    /// For GET these come from the query, for POST form from the body. Empty for JSON POST.
    pub params: &'a [(String, String)],
}

/// The signing scheme a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureMethod {
    /// Signature v3 (`Authorization: TC3-HMAC-SHA256 …`).
    Tc3HmacSha256,
    /// Signature v1 with `SignatureMethod=HmacSHA1` or no `SignatureMethod`.
    HmacSha1,
    /// Signature v1 with `SignatureMethod=HmacSHA256`.
    HmacSha256,
}

impl SignatureMethod {
    /// The name clients use for this method.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureMethod::Tc3HmacSha256 => TC3_ALGORITHM,
            SignatureMethod::HmacSha1 => "HmacSHA1",
            SignatureMethod::HmacSha256 => "HmacSHA256",
        }
    }
}

/// Outcome of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The SecretId that signed the request.
    pub secret_id: String,
    /// The scheme used.
    pub method: SignatureMethod,
    /// TC3 only: the service named in the credential scope ("gse", "dcdb"); None for v1.
    /// The caller must check it names the product being called.
    pub scope_service: Option<String>,
}

/// Why a request failed authentication. [`AuthError::code`] gives the Tencent
/// error code, `Display` a message for the `Error.Message` field. No variant
/// ever carries secret key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither a TC3 `Authorization` header nor a v1 `Signature` parameter.
    #[error(
        "The request is not signed. Send an `Authorization: TC3-HMAC-SHA256 Credential=<SecretId>/<YYYY-MM-DD>/<service>/tc3_request, SignedHeaders=content-type;host, Signature=<hex>` header, or v1 parameters including `Signature`."
    )]
    MissingAuthorization,

    /// The TC3 `Authorization` header is malformed.
    #[error(
        "The Authorization header is malformed: {0}. Expected `TC3-HMAC-SHA256 Credential=<SecretId>/<YYYY-MM-DD>/<service>/tc3_request, SignedHeaders=content-type;host, Signature=<64 hex digits>`."
    )]
    InvalidAuthorization(String),

    /// A header the signature depends on was sent more than once.
    #[error(
        "The header `{0}` was sent more than once; a signed request must carry it exactly once."
    )]
    DuplicateHeader(String),

    /// A header named in `SignedHeaders` (or `Host` for v1) is absent.
    #[error("The header `{0}` is covered by the signature but missing from the request.")]
    MissingSignedHeader(String),

    /// The SecretId is unknown or disabled.
    #[error("The SecretId `{secret_id}` was not found: it is unknown to this server or disabled. Check the SecretId the client is configured with.")]
    SecretIdNotFound {
        /// The SecretId as sent (truncated, control characters replaced).
        secret_id: String,
    },

    /// The request timestamp is outside the ±300 s window.
    #[error(
        "The signature has expired: request timestamp {timestamp} is {skew_secs} s away from server time {server_time}, outside the allowed window of ±300 s. Check the client's clock and sign each request just before sending it."
    )]
    SignatureExpire {
        /// Timestamp the request carries (Unix seconds).
        timestamp: i64,
        /// Server clock (Unix seconds).
        server_time: i64,
        /// `|server_time − timestamp|`.
        skew_secs: u64,
    },

    /// TC3 credential-scope date is not the UTC date of `X-TC-Timestamp`.
    #[error(
        "The provided credentials could not be validated: the date `{credential_date}` in the Authorization Credential must be the UTC date of X-TC-Timestamp ({timestamp_date})."
    )]
    CredentialDateMismatch {
        /// Date from the credential scope (truncated).
        credential_date: String,
        /// UTC date of the request timestamp.
        timestamp_date: String,
    },

    /// The signature does not match.
    #[error(
        "The provided credentials could not be validated. Please check your signature is correct."
    )]
    SignatureFailure,

    /// An STS session token was sent; temporary credentials are not supported.
    #[error(
        "The session token (X-TC-Token / Token) is invalid: this server does not issue temporary (STS) credentials. Sign with a permanent SecretId/SecretKey and send no token."
    )]
    TokenFailure,

    /// A required common parameter is absent (v1 `SecretId`, `Timestamp`,
    /// `Nonce`; TC3 `X-TC-Timestamp`).
    #[error("The request is missing a required parameter `{0}`.")]
    MissingParameter(&'static str),

    /// A common parameter has a value of the wrong form.
    #[error("The value of parameter `{name}` is invalid: {reason}.")]
    InvalidParameterValue {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A v1 authentication parameter appears more than once.
    #[error("The parameter `{0}` was sent more than once; it must appear exactly once.")]
    DuplicateParameter(&'static str),
}

impl AuthError {
    /// The Tencent error code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthorization
            | AuthError::InvalidAuthorization(_)
            | AuthError::DuplicateHeader(_)
            | AuthError::MissingSignedHeader(_) => "AuthFailure.InvalidAuthorization",
            AuthError::SecretIdNotFound { .. } => "AuthFailure.SecretIdNotFound",
            AuthError::SignatureExpire { .. } => "AuthFailure.SignatureExpire",
            AuthError::CredentialDateMismatch { .. } | AuthError::SignatureFailure => {
                "AuthFailure.SignatureFailure"
            }
            AuthError::TokenFailure => "AuthFailure.TokenFailure",
            AuthError::MissingParameter(_) => "MissingParameter",
            AuthError::InvalidParameterValue { .. } => "InvalidParameterValue",
            AuthError::DuplicateParameter(_) => "InvalidParameter",
        }
    }

    fn invalid_auth(reason: impl Into<String>) -> Self {
        AuthError::InvalidAuthorization(reason.into())
    }
}

/// Verifies the signature of `req`.
///
/// `secret_for(secret_id)` returns the secret key bytes of a known SecretId,
/// `None` if unknown. `now_unix` is the server clock in Unix seconds.
pub fn verify(
    req: &SignedRequest<'_>,
    now_unix: i64,
    secret_for: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<Verified, AuthError> {
    if let Some(auth) = single_header(req.headers, &AUTHORIZATION)? {
        if auth.as_bytes().starts_with(TC3_ALGORITHM.as_bytes()) {
            return verify_tc3(req, auth, now_unix, &secret_for);
        }
    }
    if req.params.iter().any(|(k, _)| k == "Signature") {
        return verify_v1(req, now_unix, &secret_for);
    }
    Err(AuthError::MissingAuthorization)
}

// ---------------------------------------------------------------------------
// TC3-HMAC-SHA256
// ---------------------------------------------------------------------------

/// The parts of a TC3 `Authorization` header.
#[derive(Debug)]
struct Tc3Authorization<'h> {
    secret_id: &'h str,
    date: &'h str,
    service: &'h str,
    /// `SignedHeaders` exactly as given (goes into the canonical request).
    signed_headers: &'h str,
    /// `SignedHeaders` parsed into header names (lower case).
    header_names: Vec<HeaderName>,
    signature: &'h str,
}

fn parse_tc3_authorization(value: &str) -> Result<Tc3Authorization<'_>, AuthError> {
    let value = value.trim();
    let (algorithm, rest) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if algorithm != TC3_ALGORITHM {
        return Err(AuthError::invalid_auth(
            "the algorithm must be `TC3-HMAC-SHA256` followed by a space",
        ));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(AuthError::invalid_auth(format!(
                "`{}` is not a key=value pair",
                echo(part)
            )));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(val.trim()).is_some() {
            return Err(AuthError::invalid_auth(format!(
                "`{}` appears more than once",
                key.trim()
            )));
        }
    }
    let credential = credential
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AuthError::invalid_auth("`Credential` is missing"))?;
    let signed_headers = signed_headers
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AuthError::invalid_auth("`SignedHeaders` is missing"))?;
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AuthError::invalid_auth("`Signature` is missing"))?;

    let mut scope = credential.split('/');
    let (Some(secret_id), Some(date), Some(service), Some(terminator), None) = (
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
        scope.next(),
    ) else {
        return Err(AuthError::invalid_auth(
            "`Credential` must have four parts: <SecretId>/<YYYY-MM-DD>/<service>/tc3_request",
        ));
    };
    if secret_id.is_empty() || date.is_empty() || service.is_empty() {
        return Err(AuthError::invalid_auth(
            "`Credential` has an empty SecretId, date or service",
        ));
    }
    if terminator != TC3_TERMINATOR {
        return Err(AuthError::invalid_auth(
            "the `Credential` scope must end in `tc3_request`",
        ));
    }

    let mut header_names = Vec::new();
    for name in signed_headers.split(';') {
        let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            AuthError::invalid_auth(format!(
                "`SignedHeaders` contains an invalid header name `{}`",
                echo(name)
            ))
        })?;
        header_names.push(parsed);
    }
    for required in ["content-type", "host"] {
        if !header_names.iter().any(|n| n.as_str() == required) {
            return Err(AuthError::invalid_auth(format!(
                "`SignedHeaders` must include `{required}`"
            )));
        }
    }

    Ok(Tc3Authorization {
        secret_id,
        date,
        service,
        signed_headers,
        header_names,
        signature,
    })
}

fn verify_tc3(
    req: &SignedRequest<'_>,
    authorization: &HeaderValue,
    now_unix: i64,
    secret_for: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Verified, AuthError> {
    // 1. Parse.
    let auth_str = authorization.to_str().map_err(|_| {
        AuthError::invalid_auth("the header contains characters outside visible ASCII")
    })?;
    let auth = parse_tc3_authorization(auth_str)?;
    let timestamp_value = single_header(req.headers, &X_TC_TIMESTAMP)?
        .ok_or(AuthError::MissingParameter("X-TC-Timestamp"))?;
    let timestamp_str =
        timestamp_value
            .to_str()
            .map(str::trim)
            .map_err(|_| AuthError::InvalidParameterValue {
                name: "X-TC-Timestamp",
                reason: "it must be Unix seconds as a decimal integer",
            })?;
    let timestamp = parse_timestamp("X-TC-Timestamp", timestamp_str)?;

    // 2. SecretId known.
    let secret = secret_for(auth.secret_id).ok_or_else(|| AuthError::SecretIdNotFound {
        secret_id: echo(auth.secret_id),
    })?;

    // 3. Clock window, then the scope date.
    check_window(timestamp, now_unix)?;
    let timestamp_date = utc_date(timestamp).ok_or(AuthError::InvalidParameterValue {
        name: "X-TC-Timestamp",
        reason: "it is not a representable date",
    })?;
    if auth.date != timestamp_date {
        return Err(AuthError::CredentialDateMismatch {
            credential_date: echo(auth.date),
            timestamp_date,
        });
    }

    // 4. Signature.
    let provided = hex::decode(auth.signature).map_err(|_| AuthError::SignatureFailure)?;
    let is_get = req.method == "GET";
    let unsigned_payload = single_header(req.headers, &X_TC_CONTENT_SHA256)?
        .is_some_and(|v| v.as_bytes().trim_ascii() == UNSIGNED_PAYLOAD.as_bytes());
    let payload: &[u8] = if unsigned_payload {
        UNSIGNED_PAYLOAD.as_bytes()
    } else if is_get {
        b""
    } else {
        req.body
    };
    let payload_hash = hex::encode(Sha256::digest(payload));
    let canonical_query = if is_get { req.raw_query } else { "" };

    // Raw trimmed values first, then lower-cased values (public docs) as a
    // fallback. Header names are already lower case, so lower-casing the whole
    // block only touches the values.
    let raw_block = canonical_headers(req.headers, &auth.header_names)?;
    let lower_block = raw_block.to_ascii_lowercase();
    let mut blocks = vec![raw_block];
    if lower_block != blocks[0] {
        blocks.push(lower_block);
    }
    let mut matched = false;
    for headers_block in &blocks {
        let canonical_request = tc3_canonical_request(
            req.method,
            canonical_query,
            headers_block,
            auth.signed_headers,
            &payload_hash,
        );
        let string_to_sign = tc3_string_to_sign(
            timestamp_str,
            auth.date,
            auth.service,
            &hex::encode(Sha256::digest(&canonical_request)),
        );
        let expected = tc3_signature(&secret, auth.date, auth.service, &string_to_sign);
        matched |= ct_eq(&expected, &provided);
    }
    if !matched {
        return Err(AuthError::SignatureFailure);
    }

    // 5. Session token: no STS here.
    if single_header(req.headers, &X_TC_TOKEN)?
        .is_some_and(|v| !v.as_bytes().trim_ascii().is_empty())
    {
        return Err(AuthError::TokenFailure);
    }

    Ok(Verified {
        secret_id: auth.secret_id.to_owned(),
        method: SignatureMethod::Tc3HmacSha256,
        scope_service: Some(auth.service.to_owned()),
    })
}

/// Canonical headers block: `lowercase(name):trim(value)\n` per signed header,
/// in the order listed, values as sent.
fn canonical_headers(headers: &HeaderMap, names: &[HeaderName]) -> Result<Vec<u8>, AuthError> {
    let mut out = Vec::new();
    for name in names {
        let value = single_header(headers, name)?
            .ok_or_else(|| AuthError::MissingSignedHeader(name.as_str().to_owned()))?;
        out.extend_from_slice(name.as_str().as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_bytes().trim_ascii());
        out.push(b'\n');
    }
    Ok(out)
}

/// The six-line TC3 canonical request (no trailing newline).
fn tc3_canonical_request(
    method: &str,
    canonical_query: &str,
    canonical_headers: &[u8],
    signed_headers: &str,
    payload_hash_hex: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        method.len() + canonical_query.len() + canonical_headers.len() + signed_headers.len() + 72,
    );
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(b"\n/\n");
    out.extend_from_slice(canonical_query.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_headers);
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash_hex.as_bytes());
    out
}

fn tc3_string_to_sign(
    timestamp: &str,
    date: &str,
    service: &str,
    canonical_request_hash_hex: &str,
) -> String {
    format!(
        "{TC3_ALGORITHM}\n{timestamp}\n{date}/{service}/{TC3_TERMINATOR}\n{canonical_request_hash_hex}"
    )
}

/// `HMAC(kSigning, StringToSign)` with the TC3 key derivation.
fn tc3_signature(secret: &[u8], date: &str, service: &str, string_to_sign: &str) -> [u8; 32] {
    let mut key = Vec::with_capacity(3 + secret.len());
    key.extend_from_slice(b"TC3");
    key.extend_from_slice(secret);
    let k_date = hmac_sha256(&key, date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, TC3_TERMINATOR.as_bytes());
    hmac_sha256(&k_signing, string_to_sign.as_bytes())
}

// ---------------------------------------------------------------------------
// v1 (HmacSHA1 / HmacSHA256)
// ---------------------------------------------------------------------------

fn verify_v1(
    req: &SignedRequest<'_>,
    now_unix: i64,
    secret_for: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Verified, AuthError> {
    // 1. Parse.
    let signature =
        unique_param(req.params, "Signature")?.ok_or(AuthError::MissingAuthorization)?;
    let secret_id = unique_param(req.params, "SecretId")?
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::MissingParameter("SecretId"))?;
    let timestamp = unique_param(req.params, "Timestamp")?
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::MissingParameter("Timestamp"))?;
    let timestamp = parse_timestamp("Timestamp", timestamp)?;
    unique_param(req.params, "Nonce")?
        .filter(|s| !s.is_empty())
        .ok_or(AuthError::MissingParameter("Nonce"))?;
    let method = match unique_param(req.params, "SignatureMethod")? {
        None | Some("HmacSHA1") => SignatureMethod::HmacSha1,
        Some("HmacSHA256") => SignatureMethod::HmacSha256,
        Some(_) => {
            return Err(AuthError::InvalidParameterValue {
                name: "SignatureMethod",
                reason: "it must be `HmacSHA1` or `HmacSHA256`",
            })
        }
    };
    let token = unique_param(req.params, "Token")?;

    // 2. SecretId known.
    let secret = secret_for(secret_id).ok_or_else(|| AuthError::SecretIdNotFound {
        secret_id: echo(secret_id),
    })?;

    // 3. Clock window.
    check_window(timestamp, now_unix)?;

    // 4. Signature.
    let host = single_header(req.headers, &HOST)?
        .ok_or_else(|| AuthError::MissingSignedHeader("host".to_owned()))?;
    let string_to_sign = v1_string_to_sign(req.method, host.as_bytes(), req.params);
    let expected = match method {
        SignatureMethod::HmacSha256 => hmac_sha256(&secret, &string_to_sign).to_vec(),
        _ => hmac_sha1(&secret, &string_to_sign).to_vec(),
    };
    let expected = base64::engine::general_purpose::STANDARD.encode(expected);
    if !ct_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(AuthError::SignatureFailure);
    }

    // 5. Session token: no STS here.
    if token.is_some_and(|t| !t.is_empty()) {
        return Err(AuthError::TokenFailure);
    }

    Ok(Verified {
        secret_id: secret_id.to_owned(),
        method,
        scope_service: None,
    })
}

/// `<METHOD><Host>/?<k=v&…>`: all parameters but `Signature`, keys with `_`
/// replaced by `.`, sorted by key bytes (stable), decoded values.
fn v1_string_to_sign(method: &str, host: &[u8], params: &[(String, String)]) -> Vec<u8> {
    let mut pairs: Vec<(Cow<'_, str>, &str)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .map(|(k, v)| {
            let key = if k.contains('_') {
                Cow::Owned(k.replace('_', "."))
            } else {
                Cow::Borrowed(k.as_str())
            };
            (key, v.as_str())
        })
        .collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

    let mut out = Vec::new();
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(host);
    out.extend_from_slice(b"/?");
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(key.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// The value of a parameter that must appear at most once.
fn unique_param<'p>(
    params: &'p [(String, String)],
    name: &'static str,
) -> Result<Option<&'p str>, AuthError> {
    let mut found = None;
    for (key, value) in params {
        if key == name && found.replace(value.as_str()).is_some() {
            return Err(AuthError::DuplicateParameter(name));
        }
    }
    Ok(found)
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// The single value of header `name`; error if it was sent more than once.
fn single_header<'m>(
    headers: &'m HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'m HeaderValue>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthError::DuplicateHeader(name.as_str().to_owned()));
    }
    Ok(first)
}

/// Strict Unix-seconds parser: ASCII digits only, must fit in `i64`.
fn parse_timestamp(name: &'static str, value: &str) -> Result<i64, AuthError> {
    let invalid = AuthError::InvalidParameterValue {
        name,
        reason: "it must be Unix seconds as a decimal integer",
    };
    if value.is_empty() {
        return Err(AuthError::MissingParameter(name));
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid);
    }
    value.parse::<i64>().map_err(|_| invalid)
}

fn check_window(timestamp: i64, now_unix: i64) -> Result<(), AuthError> {
    let skew_secs = timestamp.abs_diff(now_unix);
    if skew_secs > MAX_CLOCK_SKEW_SECS {
        return Err(AuthError::SignatureExpire {
            timestamp,
            server_time: now_unix,
            skew_secs,
        });
    }
    Ok(())
}

/// `YYYY-MM-DD` of a Unix timestamp in UTC.
fn utc_date(timestamp: i64) -> Option<String> {
    let date = time::OffsetDateTime::from_unix_timestamp(timestamp)
        .ok()?
        .date();
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Constant-time equality; a length mismatch simply fails.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// An untrusted string made safe to echo in a message: at most
/// [`MAX_ECHO_CHARS`] characters, control characters replaced.
fn echo(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_ECHO_CHARS)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if s.chars().nth(MAX_ECHO_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::path::PathBuf;

    const GOLDEN_TIME: i64 = 1_700_000_000;
    const CANONICAL_FAILURE: &str =
        "The provided credentials could not be validated. Please check your signature is correct.";

    // -- vector loading -----------------------------------------------------

    /// One request from a vector file, with its key pair and server time.
    struct Record {
        label: String,
        method: String,
        raw_query: String,
        headers: HeaderMap,
        body: Vec<u8>,
        secret_id: String,
        secret_key: String,
        server_time: i64,
        expect_method: SignatureMethod,
        expect_service: Option<String>,
    }

    impl Record {
        fn params(&self) -> Vec<(String, String)> {
            params_for(&self.method, &self.raw_query, &self.headers, &self.body)
        }

        fn keys(&self) -> impl Fn(&str) -> Option<Vec<u8>> + '_ {
            move |id: &str| (id == self.secret_id).then(|| self.secret_key.as_bytes().to_vec())
        }

        /// Verifies this record with a replaced query/body/headers.
        fn verify_with(
            &self,
            raw_query: &str,
            headers: &HeaderMap,
            body: &[u8],
            now: i64,
            secret_for: impl Fn(&str) -> Option<Vec<u8>>,
        ) -> Result<Verified, AuthError> {
            let params = params_for(&self.method, raw_query, headers, body);
            let req = SignedRequest {
                method: &self.method,
                raw_query,
                headers,
                body,
                params: &params,
            };
            verify(&req, now, secret_for)
        }

        fn verify_at(&self, now: i64) -> Result<Verified, AuthError> {
            self.verify_with(&self.raw_query, &self.headers, &self.body, now, self.keys())
        }

        fn is_tc3(&self) -> bool {
            self.expect_method == SignatureMethod::Tc3HmacSha256
        }
    }

    /// v1 parameters as the HTTP layer would decode them: query for GET,
    /// form body for POST form, nothing for JSON.
    fn params_for(
        method: &str,
        raw_query: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Vec<(String, String)> {
        let source: &[u8] = if method == "GET" {
            raw_query.as_bytes()
        } else if headers.get(http::header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes()
                .starts_with(b"application/x-www-form-urlencoded")
        }) {
            body
        } else {
            return Vec::new();
        };
        form_urlencoded::parse(source).into_owned().collect()
    }

    fn vectors_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/vectors")
    }

    fn header_map(obj: &Value) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in obj.as_object().expect("headers object") {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value.as_str().expect("header value")).expect("value"),
            );
        }
        headers
    }

    #[allow(clippy::too_many_arguments)]
    fn record_from_json(
        v: &Value,
        label: String,
        secret_id: &str,
        secret_key: &str,
        server_time: i64,
        expect_method: SignatureMethod,
        expect_service: Option<String>,
    ) -> Record {
        let path = v["path"].as_str().expect("path");
        let raw_query = path.split_once('?').map_or("", |(_, q)| q).to_owned();
        Record {
            label,
            method: v["method"].as_str().expect("method").to_owned(),
            raw_query,
            headers: header_map(&v["headers"]),
            body: v["body"].as_str().expect("body").as_bytes().to_vec(),
            secret_id: secret_id.to_owned(),
            secret_key: secret_key.to_owned(),
            server_time,
            expect_method,
            expect_service,
        }
    }

    fn golden_records() -> Vec<Record> {
        let text = std::fs::read_to_string(vectors_dir().join("tencent-golden.json"))
            .expect("read tencent-golden.json");
        let doc: Value = serde_json::from_str(&text).expect("golden json");
        let id = doc["secret_id"].as_str().expect("secret_id");
        let key = doc["secret_key"].as_str().expect("secret_key");
        doc["requests"]
            .as_array()
            .expect("requests")
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let case = r["case"].as_str().expect("case");
                let (method, service) = if case.starts_with("TC3-HMAC-SHA256") {
                    (SignatureMethod::Tc3HmacSha256, Some("gse".to_owned()))
                } else if case.starts_with("HmacSHA256") {
                    (SignatureMethod::HmacSha256, None)
                } else if case.starts_with("HmacSHA1") {
                    (SignatureMethod::HmacSha1, None)
                } else {
                    panic!("unexpected case {case}")
                };
                let label = format!("golden #{} ({case}, {})", i + 1, r["action"]);
                record_from_json(r, label, id, key, GOLDEN_TIME, method, service)
            })
            .collect()
    }

    fn dcdb_records() -> Vec<Record> {
        let text = std::fs::read_to_string(vectors_dir().join("tencent-dcdb-captured.jsonl"))
            .expect("read tencent-dcdb-captured.jsonl");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let r: Value = serde_json::from_str(line).expect("jsonl line");
                assert_eq!(r["algorithm"], "TC3-HMAC-SHA256");
                assert_eq!(r["expected"], "valid");
                record_from_json(
                    &r,
                    format!("{} ({})", r["id"].as_str().expect("id"), r["client"]),
                    r["secret_id"].as_str().expect("secret_id"),
                    r["secret_key"].as_str().expect("secret_key"),
                    r["server_time"].as_i64().expect("server_time"),
                    SignatureMethod::Tc3HmacSha256,
                    Some(r["service"].as_str().expect("service").to_owned()),
                )
            })
            .collect()
    }

    fn all_records() -> Vec<Record> {
        let mut all = golden_records();
        all.extend(dcdb_records());
        all
    }

    // -- signing helpers for hand-built requests ------------------------------

    #[allow(clippy::too_many_arguments)]
    fn tc3_sign(
        method: &str,
        raw_query: &str,
        headers: &HeaderMap,
        signed_headers: &str,
        payload: &[u8],
        secret: &str,
        date: &str,
        service: &str,
        timestamp: &str,
        lowercase_values: bool,
    ) -> String {
        let names: Vec<HeaderName> = signed_headers
            .split(';')
            .map(|n| HeaderName::from_bytes(n.as_bytes()).expect("name"))
            .collect();
        let mut block = canonical_headers(headers, &names).expect("canonical headers");
        if lowercase_values {
            block = block.to_ascii_lowercase();
        }
        let canonical = tc3_canonical_request(
            method,
            raw_query,
            &block,
            signed_headers,
            &hex::encode(Sha256::digest(payload)),
        );
        let sts = tc3_string_to_sign(
            timestamp,
            date,
            service,
            &hex::encode(Sha256::digest(&canonical)),
        );
        hex::encode(tc3_signature(secret.as_bytes(), date, service, &sts))
    }

    fn tc3_authorization(secret_id: &str, scope: &str, signed: &str, sig: &str) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "TC3-HMAC-SHA256 Credential={secret_id}/{scope}/tc3_request, SignedHeaders={signed}, Signature={sig}"
        ))
        .expect("authorization value")
    }

    /// Form-encodes `params` and appends a v1 signature over them.
    fn v1_signed_query(
        method: &str,
        host: &str,
        params: &[(&str, &str)],
        secret: &str,
        sha256: bool,
    ) -> String {
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sts = v1_string_to_sign(method, host.as_bytes(), &owned);
        let mac = if sha256 {
            hmac_sha256(secret.as_bytes(), &sts).to_vec()
        } else {
            hmac_sha1(secret.as_bytes(), &sts).to_vec()
        };
        let sig = base64::engine::general_purpose::STANDARD.encode(mac);
        let mut ser = form_urlencoded::Serializer::new(String::new());
        ser.extend_pairs(params.iter().copied());
        ser.append_pair("Signature", &sig);
        ser.finish()
    }

    fn keys_for<'k>(id: &'k str, key: &'k str) -> impl Fn(&str) -> Option<Vec<u8>> + 'k {
        move |q: &str| (q == id).then(|| key.as_bytes().to_vec())
    }

    fn verify_get(
        headers: &HeaderMap,
        raw_query: &str,
        now: i64,
        keys: impl Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<Verified, AuthError> {
        let params = params_for("GET", raw_query, headers, b"");
        let req = SignedRequest {
            method: "GET",
            raw_query,
            headers,
            body: b"",
            params: &params,
        };
        verify(&req, now, keys)
    }

    fn verify_post(
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
        keys: impl Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<Verified, AuthError> {
        let params = params_for("POST", "", headers, body);
        let req = SignedRequest {
            method: "POST",
            raw_query: "",
            headers,
            body,
            params: &params,
        };
        verify(&req, now, keys)
    }

    fn assert_code(result: Result<Verified, AuthError>, code: &str, what: &str) -> AuthError {
        match result {
            Ok(v) => panic!("{what}: expected {code}, got success {v:?}"),
            Err(e) => {
                assert_eq!(e.code(), code, "{what}: wrong error {e:?} ({e})");
                e
            }
        }
    }

    // -- vectors ---------------------------------------------------------------

    #[test]
    fn every_vector_verifies_at_its_server_time() {
        let records = all_records();
        assert_eq!(records.len(), 13, "8 golden + 5 dcdb records");
        for rec in &records {
            let verified = rec
                .verify_at(rec.server_time)
                .unwrap_or_else(|e| panic!("{}: {e:?} ({e})", rec.label));
            assert_eq!(verified.secret_id, rec.secret_id, "{}", rec.label);
            assert_eq!(verified.method, rec.expect_method, "{}", rec.label);
            assert_eq!(verified.scope_service, rec.expect_service, "{}", rec.label);
        }
        let methods: Vec<SignatureMethod> = records.iter().map(|r| r.expect_method).collect();
        for m in [
            SignatureMethod::Tc3HmacSha256,
            SignatureMethod::HmacSha1,
            SignatureMethod::HmacSha256,
        ] {
            assert!(methods.contains(&m), "vectors cover {}", m.as_str());
        }
    }

    #[test]
    fn window_edges_are_inclusive() {
        for rec in all_records() {
            for delta in [-300, 300] {
                rec.verify_at(rec.server_time + delta)
                    .unwrap_or_else(|e| panic!("{} at {delta:+}: {e}", rec.label));
            }
        }
    }

    #[test]
    fn clock_off_by_301_seconds_is_expired() {
        for rec in all_records() {
            for delta in [301, -301] {
                let now = rec.server_time + delta;
                let err = assert_code(
                    rec.verify_at(now),
                    "AuthFailure.SignatureExpire",
                    &format!("{} at {delta:+}", rec.label),
                );
                assert_eq!(
                    err,
                    AuthError::SignatureExpire {
                        timestamp: rec.server_time,
                        server_time: now,
                        skew_secs: 301
                    }
                );
                let msg = err.to_string();
                assert!(msg.contains(&rec.server_time.to_string()), "{msg}");
                assert!(msg.contains(&now.to_string()), "{msg}");
                assert!(msg.contains("±300 s"), "{msg}");
            }
        }
    }

    #[test]
    fn wrong_secret_fails() {
        for rec in all_records() {
            let wrong = |id: &str| (id == rec.secret_id).then(|| b"not-the-secret".to_vec());
            let err = assert_code(
                rec.verify_with(
                    &rec.raw_query,
                    &rec.headers,
                    &rec.body,
                    rec.server_time,
                    wrong,
                ),
                "AuthFailure.SignatureFailure",
                &rec.label,
            );
            assert_eq!(err, AuthError::SignatureFailure);
            assert_eq!(err.to_string(), CANONICAL_FAILURE);
            // A secret that differs only in its last byte fails too.
            let mut near = rec.secret_key.as_bytes().to_vec();
            if let Some(last) = near.last_mut() {
                *last ^= 1;
            }
            let near_keys = |id: &str| (id == rec.secret_id).then(|| near.clone());
            assert_code(
                rec.verify_with(
                    &rec.raw_query,
                    &rec.headers,
                    &rec.body,
                    rec.server_time,
                    near_keys,
                ),
                "AuthFailure.SignatureFailure",
                &rec.label,
            );
        }
    }

    #[test]
    fn unknown_secret_id_is_not_found() {
        for rec in all_records() {
            let err = assert_code(
                rec.verify_with(
                    &rec.raw_query,
                    &rec.headers,
                    &rec.body,
                    rec.server_time,
                    |_| None,
                ),
                "AuthFailure.SecretIdNotFound",
                &rec.label,
            );
            assert!(err.to_string().contains(&rec.secret_id), "{err}");
            // SecretId is checked before the clock window.
            assert_code(
                rec.verify_with(
                    &rec.raw_query,
                    &rec.headers,
                    &rec.body,
                    rec.server_time + 10_000,
                    |_| None,
                ),
                "AuthFailure.SecretIdNotFound",
                &rec.label,
            );
        }
    }

    #[test]
    fn expiry_is_checked_before_the_signature() {
        for rec in all_records() {
            let wrong = |id: &str| (id == rec.secret_id).then(|| b"wrong".to_vec());
            assert_code(
                rec.verify_with(
                    &rec.raw_query,
                    &rec.headers,
                    &rec.body,
                    rec.server_time + 301,
                    wrong,
                ),
                "AuthFailure.SignatureExpire",
                &rec.label,
            );
        }
    }

    /// Values of the v1 fields checked before the signature; a flip that
    /// leaves them alone must surface as a plain signature failure.
    fn v1_auth_fields(params: &[(String, String)]) -> Vec<(String, String)> {
        const FIELDS: [&str; 6] = [
            "Signature",
            "SecretId",
            "Timestamp",
            "Nonce",
            "SignatureMethod",
            "Token",
        ];
        params
            .iter()
            .filter(|(k, _)| FIELDS.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    #[test]
    fn flipping_any_byte_of_body_or_query_fails() {
        let mut body_flips = 0;
        let mut query_flips = 0;
        let mut exact_failures = 0;
        for rec in all_records() {
            let flip_body = rec.method == "POST" && !rec.body.is_empty();
            let len = if flip_body {
                rec.body.len()
            } else {
                rec.raw_query.len()
            };
            assert!(len > 0, "{}: nothing to flip", rec.label);
            let original_fields = v1_auth_fields(&rec.params());
            // 0x80 makes invalid UTF-8; only usable on the byte-typed body.
            let masks: &[u8] = if flip_body && rec.is_tc3() {
                &[0x01, 0x80]
            } else {
                &[0x01]
            };
            for pos in 0..len {
                for &mask in masks {
                    let (query, body) = if flip_body {
                        let mut body = rec.body.clone();
                        body[pos] ^= mask;
                        body_flips += 1;
                        (rec.raw_query.clone(), body)
                    } else {
                        let mut query = rec.raw_query.clone().into_bytes();
                        query[pos] ^= mask;
                        query_flips += 1;
                        (String::from_utf8(query).expect("ascii"), rec.body.clone())
                    };
                    let what = format!("{} flip {mask:#04x} at byte {pos}", rec.label);
                    let result =
                        rec.verify_with(&query, &rec.headers, &body, rec.server_time, rec.keys());
                    let params = params_for(&rec.method, &query, &rec.headers, &body);
                    if rec.is_tc3() || v1_auth_fields(&params) == original_fields {
                        assert_code(result, "AuthFailure.SignatureFailure", &what);
                        exact_failures += 1;
                    } else {
                        // The flip hit a v1 authentication field (its name or
                        // value): rejected by an earlier check.
                        assert!(result.is_err(), "{what}: accepted");
                    }
                }
            }
        }
        assert!(body_flips > 1000, "body flips: {body_flips}");
        assert!(query_flips > 900, "query flips: {query_flips}");
        assert!(exact_failures > 1500, "exact failures: {exact_failures}");
        println!("flips: {body_flips} body, {query_flips} query, {exact_failures} exact SignatureFailure");
    }

    #[test]
    fn tc3_get_ignores_a_body() {
        for rec in all_records()
            .into_iter()
            .filter(|r| r.is_tc3() && r.method == "GET")
        {
            rec.verify_with(
                &rec.raw_query,
                &rec.headers,
                b"{\"extra\": 1}",
                rec.server_time,
                rec.keys(),
            )
            .unwrap_or_else(|e| panic!("{}: {e}", rec.label));
        }
    }

    #[test]
    fn method_is_signed() {
        for rec in all_records() {
            let other = if rec.method == "GET" { "POST" } else { "GET" };
            let params = params_for(other, &rec.raw_query, &rec.headers, &rec.body);
            let req = SignedRequest {
                method: other,
                raw_query: &rec.raw_query,
                headers: &rec.headers,
                body: &rec.body,
                params: &params,
            };
            let result = verify(&req, rec.server_time, rec.keys());
            assert!(result.is_err(), "{} as {other}: accepted", rec.label);
        }
    }

    #[test]
    fn dcdb_tccli_record_with_http_host_verifies() {
        let rec = dcdb_records()
            .into_iter()
            .find(|r| r.label.starts_with("dcdb-05"))
            .expect("dcdb-05 record");
        assert_eq!(rec.headers[HOST], "http://127.0.0.1:18999");
        let verified = rec
            .verify_at(rec.server_time)
            .expect("tccli record verifies");
        assert_eq!(verified.secret_id, "AKIDtest");
        assert_eq!(verified.method, SignatureMethod::Tc3HmacSha256);
        assert_eq!(verified.scope_service.as_deref(), Some("dcdb"));

        // The literal Host is what was signed: a normalised Host fails.
        let mut headers = rec.headers.clone();
        headers.insert(HOST, HeaderValue::from_static("127.0.0.1:18999"));
        assert_code(
            rec.verify_with(
                &rec.raw_query,
                &headers,
                &rec.body,
                rec.server_time,
                rec.keys(),
            ),
            "AuthFailure.SignatureFailure",
            "normalised host",
        );
    }

    #[test]
    fn v1_form_record_with_http_host_verifies_and_host_is_signed() {
        for rec in golden_records()
            .into_iter()
            .filter(|r| r.expect_method == SignatureMethod::HmacSha256)
        {
            assert_eq!(rec.headers[HOST], "http://127.0.0.1:18080");
            rec.verify_at(rec.server_time).expect("valid");
            let mut headers = rec.headers.clone();
            headers.insert(HOST, HeaderValue::from_static("127.0.0.1:18080"));
            assert_code(
                rec.verify_with(
                    &rec.raw_query,
                    &headers,
                    &rec.body,
                    rec.server_time,
                    rec.keys(),
                ),
                "AuthFailure.SignatureFailure",
                &rec.label,
            );
        }
    }

    // -- official vectors --------------------------------------------------------

    const DOC_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
    const DOC_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

    #[test]
    fn official_tc3_vector_verifies() {
        let body = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        assert_eq!(
            hex::encode(Sha256::digest(body)),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        headers.insert(HOST, HeaderValue::from_static("cvm.tencentcloudapi.com"));
        headers.insert("X-TC-Action", HeaderValue::from_static("DescribeInstances"));
        headers.insert("X-TC-Version", HeaderValue::from_static("2017-03-12"));
        headers.insert("X-TC-Region", HeaderValue::from_static("ap-guangzhou"));
        headers.insert("X-TC-Timestamp", HeaderValue::from_static("1551113065"));

        // Intermediate values from the documentation.
        let names = [http::header::CONTENT_TYPE, HOST];
        let block = canonical_headers(&headers, &names).expect("block");
        let canonical = tc3_canonical_request(
            "POST",
            "",
            &block,
            "content-type;host",
            &hex::encode(Sha256::digest(body)),
        );
        assert_eq!(
            hex::encode(Sha256::digest(&canonical)),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );

        headers.insert(
            AUTHORIZATION,
            tc3_authorization(
                DOC_ID,
                "2019-02-25/cvm",
                "content-type;host",
                "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
            ),
        );
        let verified =
            verify_post(&headers, body, 1_551_113_065, keys_for(DOC_ID, DOC_KEY)).expect("valid");
        assert_eq!(
            verified,
            Verified {
                secret_id: DOC_ID.to_owned(),
                method: SignatureMethod::Tc3HmacSha256,
                scope_service: Some("cvm".to_owned()),
            }
        );

        // Upper-case hex digits in the provided signature are accepted too.
        headers.insert(
            AUTHORIZATION,
            tc3_authorization(
                DOC_ID,
                "2019-02-25/cvm",
                "content-type;host",
                "72E494EA809AD7A8C8F7A4507B9BDDCBAA8E581F516E8DA2F66E2C5A96525168",
            ),
        );
        verify_post(&headers, body, 1_551_113_065, keys_for(DOC_ID, DOC_KEY)).expect("upper hex");

        // A truncated or garbage signature fails cleanly.
        for sig in [
            "72e494",
            "zz",
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a9652516800",
        ] {
            headers.insert(
                AUTHORIZATION,
                tc3_authorization(DOC_ID, "2019-02-25/cvm", "content-type;host", sig),
            );
            assert_code(
                verify_post(&headers, body, 1_551_113_065, keys_for(DOC_ID, DOC_KEY)),
                "AuthFailure.SignatureFailure",
                sig,
            );
        }
    }

    #[test]
    fn official_v1_vector_verifies() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("cvm.tencentcloudapi.com"));
        let query = format!(
            "Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20&Nonce=11886&Offset=0\
             &Region=ap-guangzhou&SecretId={DOC_ID}&Timestamp=1465185768&Version=2017-03-12\
             &Signature=EliP9YW3pW28FpsEdkXt%2F%2BWcGeI%3D"
        );
        let params = params_for("GET", &query, &headers, b"");
        assert_eq!(
            String::from_utf8(v1_string_to_sign(
                "GET",
                b"cvm.tencentcloudapi.com",
                &params
            ))
            .expect("utf8"),
            format!(
                "GETcvm.tencentcloudapi.com/?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg\
                 &Limit=20&Nonce=11886&Offset=0&Region=ap-guangzhou&SecretId={DOC_ID}\
                 &Timestamp=1465185768&Version=2017-03-12"
            )
        );
        let verified =
            verify_get(&headers, &query, 1_465_185_768, keys_for(DOC_ID, DOC_KEY)).expect("valid");
        assert_eq!(
            verified,
            Verified {
                secret_id: DOC_ID.to_owned(),
                method: SignatureMethod::HmacSha1,
                scope_service: None,
            }
        );

        // Parameter order on the wire does not matter for v1.
        let mut shuffled: Vec<&str> = query.split('&').collect();
        shuffled.reverse();
        verify_get(
            &headers,
            &shuffled.join("&"),
            1_465_185_768,
            keys_for(DOC_ID, DOC_KEY),
        )
        .expect("reordered");

        // An explicit SignatureMethod=HmacSHA1 is signed, so adding it breaks
        // this signature; HmacSHA256 is signed the same way.
        let with_method = query.replace("&Signature=", "&SignatureMethod=HmacSHA1&Signature=");
        assert_code(
            verify_get(
                &headers,
                &with_method,
                1_465_185_768,
                keys_for(DOC_ID, DOC_KEY),
            ),
            "AuthFailure.SignatureFailure",
            "added SignatureMethod",
        );
    }

    // -- TC3 details -------------------------------------------------------------

    fn tc3_base_headers(
        host: &'static str,
        content_type: &'static str,
        ts: &'static str,
    ) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        headers.insert(HOST, HeaderValue::from_static(host));
        headers.insert("X-TC-Action", HeaderValue::from_static("KillSession"));
        headers.insert("X-TC-Timestamp", HeaderValue::from_static(ts));
        headers
    }

    #[test]
    fn tc3_lower_cased_header_values_are_accepted_as_fallback() {
        let body = b"{\"FlowId\": 11}";
        for signed in ["content-type;host", "content-type;host;x-tc-action"] {
            let mut headers =
                tc3_base_headers("DCDB.Example.COM:8080", "Application/JSON", "1700000000");
            let sig = tc3_sign(
                "POST",
                "",
                &headers,
                signed,
                body,
                "k",
                "2023-11-14",
                "dcdb",
                "1700000000",
                true,
            );
            headers.insert(
                AUTHORIZATION,
                tc3_authorization("id", "2023-11-14/dcdb", signed, &sig),
            );
            let v = verify_post(&headers, body, GOLDEN_TIME, keys_for("id", "k"))
                .unwrap_or_else(|e| panic!("{signed}: {e}"));
            assert_eq!(v.scope_service.as_deref(), Some("dcdb"));

            // Raw values still work for the same request shape.
            let sig = tc3_sign(
                "POST",
                "",
                &headers,
                signed,
                body,
                "k",
                "2023-11-14",
                "dcdb",
                "1700000000",
                false,
            );
            headers.insert(
                AUTHORIZATION,
                tc3_authorization("id", "2023-11-14/dcdb", signed, &sig),
            );
            verify_post(&headers, body, GOLDEN_TIME, keys_for("id", "k")).expect("raw values");
        }
    }

    #[test]
    fn tc3_header_values_are_trimmed() {
        let body = b"{}";
        let mut headers = tc3_base_headers("h:1", "application/json", "1700000000");
        let sig = tc3_sign(
            "POST",
            "",
            &headers,
            "content-type;host",
            body,
            "k",
            "2023-11-14",
            "gse",
            "1700000000",
            false,
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("  application/json\t"),
        );
        headers.insert(
            AUTHORIZATION,
            tc3_authorization("id", "2023-11-14/gse", "content-type;host", &sig),
        );
        verify_post(&headers, body, GOLDEN_TIME, keys_for("id", "k")).expect("trimmed");
    }

    #[test]
    fn tc3_unsigned_payload() {
        let body = b"{\"Anything\": true}";
        let mut headers = tc3_base_headers("h:1", "application/json", "1700000000");
        headers.insert(
            "X-TC-Content-SHA256",
            HeaderValue::from_static("UNSIGNED-PAYLOAD"),
        );
        let sig = tc3_sign(
            "POST",
            "",
            &headers,
            "content-type;host",
            b"UNSIGNED-PAYLOAD",
            "k",
            "2023-11-14",
            "gse",
            "1700000000",
            false,
        );
        headers.insert(
            AUTHORIZATION,
            tc3_authorization("id", "2023-11-14/gse", "content-type;host", &sig),
        );
        verify_post(&headers, body, GOLDEN_TIME, keys_for("id", "k")).expect("unsigned payload");
        // The body is not covered in this mode.
        verify_post(&headers, b"{}", GOLDEN_TIME, keys_for("id", "k")).expect("other body");
        // Without the header the real body hash is expected.
        headers.remove("X-TC-Content-SHA256");
        assert_code(
            verify_post(&headers, body, GOLDEN_TIME, keys_for("id", "k")),
            "AuthFailure.SignatureFailure",
            "header removed",
        );
    }

    #[test]
    fn tc3_credential_date_must_match_timestamp() {
        let rec = &golden_records()[0];
        let mut headers = rec.headers.clone();
        let auth = headers[AUTHORIZATION]
            .to_str()
            .expect("ascii")
            .replace("2023-11-14", "2023-11-15");
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&auth).expect("value"));
        let err = assert_code(
            rec.verify_with(
                &rec.raw_query,
                &headers,
                &rec.body,
                rec.server_time,
                rec.keys(),
            ),
            "AuthFailure.SignatureFailure",
            "date mismatch",
        );
        assert!(
            matches!(err, AuthError::CredentialDateMismatch { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("2023-11-14"), "{err}");
    }

    #[test]
    fn tc3_service_and_terminator() {
        let rec = &golden_records()[0];
        let original = rec.headers[AUTHORIZATION]
            .to_str()
            .expect("ascii")
            .to_owned();
        // Another service in the scope is a different key: signature failure.
        let other_service = original.replace("/gse/", "/dcdb/");
        let bad_terminator = original.replace("tc3_request", "tc3_requestx");
        for (auth, code) in [
            (other_service, "AuthFailure.SignatureFailure"),
            (bad_terminator, "AuthFailure.InvalidAuthorization"),
        ] {
            let mut headers = rec.headers.clone();
            headers.insert(AUTHORIZATION, HeaderValue::from_str(&auth).expect("value"));
            assert_code(
                rec.verify_with(
                    &rec.raw_query,
                    &headers,
                    &rec.body,
                    rec.server_time,
                    rec.keys(),
                ),
                code,
                &auth,
            );
        }
    }

    #[test]
    fn tokens_are_rejected() {
        // TC3: X-TC-Token is not signed; a valid request carrying one fails.
        for rec in all_records().into_iter().filter(Record::is_tc3) {
            let mut headers = rec.headers.clone();
            headers.insert("X-TC-Token", HeaderValue::from_static("sts-token"));
            let err = assert_code(
                rec.verify_with(
                    &rec.raw_query,
                    &headers,
                    &rec.body,
                    rec.server_time,
                    rec.keys(),
                ),
                "AuthFailure.TokenFailure",
                &rec.label,
            );
            assert!(err.to_string().contains("X-TC-Token"));
            // An empty token is no token.
            headers.insert("X-TC-Token", HeaderValue::from_static(""));
            rec.verify_with(
                &rec.raw_query,
                &headers,
                &rec.body,
                rec.server_time,
                rec.keys(),
            )
            .unwrap_or_else(|e| panic!("{}: empty token: {e}", rec.label));
        }

        // v1: Token is a signed parameter.
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("gse.tencentcloudapi.com"));
        let base = [
            ("Action", "DescribeFleets"),
            ("Nonce", "42"),
            ("SecretId", "id"),
            ("Timestamp", "1700000000"),
            ("Version", "2019-11-12"),
        ];
        let query = v1_signed_query("GET", "gse.tencentcloudapi.com", &base, "k", false);
        verify_get(&headers, &query, GOLDEN_TIME, keys_for("id", "k")).expect("no token");
        let mut with_token = base.to_vec();
        with_token.push(("Token", "sts-token"));
        let query = v1_signed_query("GET", "gse.tencentcloudapi.com", &with_token, "k", false);
        assert_code(
            verify_get(&headers, &query, GOLDEN_TIME, keys_for("id", "k")),
            "AuthFailure.TokenFailure",
            "v1 token",
        );
    }

    #[test]
    fn malformed_authorization_headers_are_rejected() {
        let rec = &golden_records()[0];
        let good = rec.headers[AUTHORIZATION]
            .to_str()
            .expect("ascii")
            .to_owned();
        let fixed: Vec<String> = vec![
            "TC3-HMAC-SHA256".into(),
            "TC3-HMAC-SHA256 ".into(),
            "TC3-HMAC-SHA256X Credential=a/b/c/tc3_request".into(),
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLEEXAMPLEEXAMPLE/2023-11-14/gse".into(),
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLEEXAMPLEEXAMPLE/2023-11-14/gse/tc3_request/x, SignedHeaders=content-type;host, Signature=00".into(),
            "TC3-HMAC-SHA256 Credential=/2023-11-14/gse/tc3_request, SignedHeaders=content-type;host, Signature=00".into(),
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLEEXAMPLEEXAMPLE/2023-11-14/gse/tc3_request, Signature=00".into(),
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLEEXAMPLEEXAMPLE/2023-11-14/gse/tc3_request, SignedHeaders=content-type;host".into(),
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLEEXAMPLEEXAMPLE/2023-11-14/gse/tc3_request, SignedHeaders=host, Signature=00".into(),
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLEEXAMPLEEXAMPLE/2023-11-14/gse/tc3_request, SignedHeaders=content-type;;host, Signature=00".into(),
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLEEXAMPLEEXAMPLE/2023-11-14/gse/tc3_request, SignedHeaders=content-type;host;x(y), Signature=00".into(),
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLEEXAMPLEEXAMPLE/2023-11-14/gse/tc3_request, Credential=x/y/z/tc3_request, SignedHeaders=content-type;host, Signature=00".into(),
            "TC3-HMAC-SHA256 Credential, SignedHeaders=content-type;host, Signature=00".into(),
            // A signed header that the request does not carry.
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLEEXAMPLEEXAMPLE/2023-11-14/gse/tc3_request, SignedHeaders=content-type;host;x-missing, Signature=00".into(),
        ];
        // Every truncation of a real header: rejected, never a panic.
        let truncations: Vec<String> = (0..good.len())
            .map(|i| good[..i].to_owned())
            .filter(|s| s.starts_with(TC3_ALGORITHM))
            .collect();
        for auth in fixed.iter().chain(&truncations) {
            let mut headers = rec.headers.clone();
            headers.insert(AUTHORIZATION, HeaderValue::from_str(auth).expect("value"));
            let result = rec.verify_with(
                &rec.raw_query,
                &headers,
                &rec.body,
                rec.server_time,
                rec.keys(),
            );
            let err = result.expect_err(auth);
            assert!(
                matches!(
                    err.code(),
                    "AuthFailure.InvalidAuthorization" | "AuthFailure.SignatureFailure"
                ),
                "{auth}: {err:?}"
            );
        }
        for auth in &fixed {
            let mut headers = rec.headers.clone();
            headers.insert(AUTHORIZATION, HeaderValue::from_str(auth).expect("value"));
            assert_code(
                rec.verify_with(
                    &rec.raw_query,
                    &headers,
                    &rec.body,
                    rec.server_time,
                    rec.keys(),
                ),
                "AuthFailure.InvalidAuthorization",
                auth,
            );
        }

        // Non-UTF-8 / obs-text bytes in the header.
        let mut headers = rec.headers.clone();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_bytes(
                b"TC3-HMAC-SHA256 Credential=\xff\xfe/2023-11-14/gse/tc3_request",
            )
            .expect("obs-text"),
        );
        assert_code(
            rec.verify_with(
                &rec.raw_query,
                &headers,
                &rec.body,
                rec.server_time,
                rec.keys(),
            ),
            "AuthFailure.InvalidAuthorization",
            "non-utf8",
        );
    }

    #[test]
    fn tc3_timestamp_problems() {
        let rec = &golden_records()[0];
        let cases: [(&[u8], &str); 8] = [
            (b"abc", "InvalidParameterValue"),
            (b"-1", "InvalidParameterValue"),
            (b"+1700000000", "InvalidParameterValue"),
            (b"1700000000.5", "InvalidParameterValue"),
            (b"99999999999999999999999999", "InvalidParameterValue"),
            (b"17000\xff0000", "InvalidParameterValue"),
            (b"9223372036854775807", "AuthFailure.SignatureExpire"),
            (b"", "MissingParameter"),
        ];
        for (value, code) in cases {
            let mut headers = rec.headers.clone();
            headers.insert(
                "X-TC-Timestamp",
                HeaderValue::from_bytes(value).expect("value"),
            );
            assert_code(
                rec.verify_with(
                    &rec.raw_query,
                    &headers,
                    &rec.body,
                    rec.server_time,
                    rec.keys(),
                ),
                code,
                &String::from_utf8_lossy(value),
            );
        }
        let mut headers = rec.headers.clone();
        headers.remove("X-TC-Timestamp");
        let err = assert_code(
            rec.verify_with(
                &rec.raw_query,
                &headers,
                &rec.body,
                rec.server_time,
                rec.keys(),
            ),
            "MissingParameter",
            "no timestamp",
        );
        assert!(err.to_string().contains("X-TC-Timestamp"));

        // Extreme server clocks do not overflow.
        for now in [i64::MIN, i64::MAX, 0] {
            assert_code(
                rec.verify_at(now),
                "AuthFailure.SignatureExpire",
                "extreme clock",
            );
        }
    }

    #[test]
    fn duplicate_and_missing_headers() {
        let rec = &golden_records()[0];
        for name in [
            AUTHORIZATION,
            HOST,
            HeaderName::from_static("x-tc-timestamp"),
        ] {
            let mut headers = rec.headers.clone();
            let value = headers[&name].clone();
            headers.append(name.clone(), value);
            let err = assert_code(
                rec.verify_with(
                    &rec.raw_query,
                    &headers,
                    &rec.body,
                    rec.server_time,
                    rec.keys(),
                ),
                "AuthFailure.InvalidAuthorization",
                name.as_str(),
            );
            assert_eq!(err, AuthError::DuplicateHeader(name.as_str().to_owned()));
        }
        let mut headers = rec.headers.clone();
        headers.remove(http::header::CONTENT_TYPE);
        let err = assert_code(
            rec.verify_with(
                &rec.raw_query,
                &headers,
                &rec.body,
                rec.server_time,
                rec.keys(),
            ),
            "AuthFailure.InvalidAuthorization",
            "missing content-type",
        );
        assert_eq!(err, AuthError::MissingSignedHeader("content-type".into()));
    }

    #[test]
    fn non_utf8_header_values_are_signed_as_bytes() {
        let body = b"{}";
        let mut headers = tc3_base_headers("h:1", "application/json", "1700000000");
        headers.insert(
            HOST,
            HeaderValue::from_bytes(b"h\xe9st:1").expect("obs-text"),
        );
        let sig = tc3_sign(
            "POST",
            "",
            &headers,
            "content-type;host",
            body,
            "k",
            "2023-11-14",
            "gse",
            "1700000000",
            false,
        );
        headers.insert(
            AUTHORIZATION,
            tc3_authorization("id", "2023-11-14/gse", "content-type;host", &sig),
        );
        verify_post(&headers, body, GOLDEN_TIME, keys_for("id", "k")).expect("tc3 obs-text host");

        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_bytes(b"h\xe9st:1").expect("obs-text"),
        );
        let params = [
            ("Nonce", "1"),
            ("SecretId", "id"),
            ("Timestamp", "1700000000"),
        ];
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sig = base64::engine::general_purpose::STANDARD.encode(hmac_sha1(
            b"k",
            &v1_string_to_sign("GET", b"h\xe9st:1", &owned),
        ));
        let mut ser = form_urlencoded::Serializer::new(String::new());
        ser.extend_pairs(params);
        ser.append_pair("Signature", &sig);
        verify_get(&headers, &ser.finish(), GOLDEN_TIME, keys_for("id", "k"))
            .expect("v1 obs-text host");
    }

    // -- v1 details --------------------------------------------------------------

    #[test]
    fn v1_underscores_in_keys_are_signed_as_dots() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("gse.tencentcloudapi.com"));
        let params = [
            ("Action", "DescribeFleets"),
            ("Filters_0_Name", "a b&c=d"),
            ("Nonce", "7"),
            ("SecretId", "id"),
            ("SignatureMethod", "HmacSHA256"),
            ("Timestamp", "1700000000"),
        ];
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let sts = v1_string_to_sign("POST", b"gse.tencentcloudapi.com", &owned);
        assert_eq!(
            String::from_utf8(sts).expect("utf8"),
            "POSTgse.tencentcloudapi.com/?Action=DescribeFleets&Filters.0.Name=a b&c=d&Nonce=7\
             &SecretId=id&SignatureMethod=HmacSHA256&Timestamp=1700000000"
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let body = v1_signed_query("POST", "gse.tencentcloudapi.com", &params, "k", true);
        let v = verify_post(&headers, body.as_bytes(), GOLDEN_TIME, keys_for("id", "k"))
            .expect("valid");
        assert_eq!(v.method, SignatureMethod::HmacSha256);
        assert_eq!(v.scope_service, None);
    }

    #[test]
    fn v1_parameter_problems() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("gse.tencentcloudapi.com"));
        let base = [
            ("Action", "DescribeFleets"),
            ("Nonce", "42"),
            ("SecretId", "id"),
            ("Timestamp", "1700000000"),
        ];
        let check = |params: &[(&str, &str)], code: &str, what: &str| -> AuthError {
            let query = v1_signed_query("GET", "gse.tencentcloudapi.com", params, "k", false);
            assert_code(
                verify_get(&headers, &query, GOLDEN_TIME, keys_for("id", "k")),
                code,
                what,
            )
        };
        for missing in ["SecretId", "Timestamp", "Nonce"] {
            let params: Vec<(&str, &str)> = base
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = check(&params, "MissingParameter", missing);
            assert_eq!(err, AuthError::MissingParameter(missing));
            let mut empty = params.clone();
            empty.push((missing, ""));
            check(&empty, "MissingParameter", missing);
        }
        for bad in [
            "abc",
            "-5",
            "+1700000000",
            "1e9",
            "99999999999999999999999999",
            " 1700000000",
        ] {
            let mut params = base.to_vec();
            params[3] = ("Timestamp", bad);
            check(&params, "InvalidParameterValue", bad);
        }
        for bad in ["HmacSHA512", "hmacsha256", "TC3-HMAC-SHA256", ""] {
            let mut params = base.to_vec();
            params.push(("SignatureMethod", bad));
            check(&params, "InvalidParameterValue", bad);
        }
        for dup in ["SecretId", "Timestamp", "Nonce"] {
            let mut params = base.to_vec();
            params.push((dup, "1700000000"));
            let err = check(&params, "InvalidParameter", dup);
            assert_eq!(err, AuthError::DuplicateParameter(dup));
        }
        // Duplicate Signature.
        let query = v1_signed_query("GET", "gse.tencentcloudapi.com", &base, "k", false);
        assert_code(
            verify_get(
                &headers,
                &format!("{query}&Signature=x"),
                GOLDEN_TIME,
                keys_for("id", "k"),
            ),
            "InvalidParameter",
            "two signatures",
        );
        // Garbage signature values.
        for sig in ["", "x", "%00", "AAAA", "not base64 at all!!"] {
            let query =
                format!("Action=A&Nonce=1&SecretId=id&Timestamp=1700000000&Signature={sig}");
            assert_code(
                verify_get(&headers, &query, GOLDEN_TIME, keys_for("id", "k")),
                "AuthFailure.SignatureFailure",
                sig,
            );
        }
        // No Host header.
        let query = v1_signed_query("GET", "gse.tencentcloudapi.com", &base, "k", false);
        assert_code(
            verify_get(&HeaderMap::new(), &query, GOLDEN_TIME, keys_for("id", "k")),
            "AuthFailure.InvalidAuthorization",
            "no host",
        );
    }

    #[test]
    fn unsigned_requests_are_rejected() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("gse.tencentcloudapi.com"));
        let err = assert_code(
            verify_get(
                &headers,
                "Action=DescribeFleets&SecretId=id",
                GOLDEN_TIME,
                |_| None,
            ),
            "AuthFailure.InvalidAuthorization",
            "no signature",
        );
        assert_eq!(err, AuthError::MissingAuthorization);
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwYXNz"),
        );
        assert_code(
            verify_post(&headers, b"{}", GOLDEN_TIME, |_| None),
            "AuthFailure.InvalidAuthorization",
            "basic auth",
        );
        // A non-TC3 Authorization header does not hide a v1 signature.
        let query = v1_signed_query(
            "GET",
            "gse.tencentcloudapi.com",
            &[
                ("Nonce", "1"),
                ("SecretId", "id"),
                ("Timestamp", "1700000000"),
            ],
            "k",
            false,
        );
        verify_get(&headers, &query, GOLDEN_TIME, keys_for("id", "k")).expect("v1 wins");
    }

    #[test]
    fn error_codes_and_messages() {
        let all = [
            AuthError::MissingAuthorization,
            AuthError::InvalidAuthorization("x".into()),
            AuthError::DuplicateHeader("host".into()),
            AuthError::MissingSignedHeader("host".into()),
            AuthError::SecretIdNotFound {
                secret_id: "id".into(),
            },
            AuthError::SignatureExpire {
                timestamp: 1,
                server_time: 400,
                skew_secs: 399,
            },
            AuthError::CredentialDateMismatch {
                credential_date: "a".into(),
                timestamp_date: "b".into(),
            },
            AuthError::SignatureFailure,
            AuthError::TokenFailure,
            AuthError::MissingParameter("Nonce"),
            AuthError::InvalidParameterValue {
                name: "Timestamp",
                reason: "r",
            },
            AuthError::DuplicateParameter("Nonce"),
        ];
        let codes: Vec<&str> = all.iter().map(AuthError::code).collect();
        for code in [
            "AuthFailure.InvalidAuthorization",
            "AuthFailure.SecretIdNotFound",
            "AuthFailure.SignatureExpire",
            "AuthFailure.SignatureFailure",
            "AuthFailure.TokenFailure",
            "MissingParameter",
            "InvalidParameterValue",
        ] {
            assert!(codes.contains(&code), "{code}");
        }
        for e in &all {
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(AuthError::SignatureFailure.to_string(), CANONICAL_FAILURE);
        let expire = all[5].to_string();
        for needle in ["1", "400", "399 s", "±300 s"] {
            assert!(expire.contains(needle), "{expire}");
        }
    }

    #[test]
    fn messages_never_contain_the_secret_key() {
        for rec in all_records() {
            let mut results = vec![
                rec.verify_at(rec.server_time + 301),
                rec.verify_with(
                    &rec.raw_query,
                    &rec.headers,
                    &rec.body,
                    rec.server_time,
                    |_| None,
                ),
            ];
            let mut body = rec.body.clone();
            let mut query = rec.raw_query.clone();
            if rec.method == "POST" {
                body[1] ^= 1;
            } else {
                query.push('x');
            }
            results.push(rec.verify_with(&query, &rec.headers, &body, rec.server_time, rec.keys()));
            for r in results {
                let e = r.expect_err(&rec.label);
                assert!(!e.to_string().contains(&rec.secret_key), "{e}");
                assert!(!format!("{e:?}").contains(&rec.secret_key), "{e:?}");
            }
        }
    }

    #[test]
    fn echoed_input_is_bounded() {
        let long = "A".repeat(10_000);
        let err = AuthError::SecretIdNotFound {
            secret_id: echo(&long),
        };
        assert!(err.to_string().len() < 400);
        assert_eq!(echo("a\nb"), "a\u{FFFD}b");
    }
}
