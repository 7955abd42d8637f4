//! TC3-HMAC-SHA256 request signing, client side, the way the Tencent Cloud Python SDK does it:
//! POST, canonical URI `/`, empty canonical query, SignedHeaders `content-type;host`, header values
//! as sent, payload = raw body bytes.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";
pub const SIGNED_HEADERS: &str = "content-type;host";

/// HMAC-SHA256 (every signing scheme the tool speaks uses it).
pub fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// `YYYY-MM-DD` (UTC) of a Unix timestamp.
pub fn utc_date(timestamp: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(timestamp)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// The canonical request of a POST with a JSON (or any) body.
pub fn canonical_request(content_type: &str, host: &str, payload: &[u8]) -> String {
    format!(
        "POST\n/\n\ncontent-type:{}\nhost:{}\n\n{}\n{}",
        content_type.trim(),
        host.trim(),
        SIGNED_HEADERS,
        hex::encode(Sha256::digest(payload))
    )
}

/// Signs requests for one credential and one service. The derived signing key
/// (kDate → kService → kSigning) depends only on the UTC date, so it is computed once per day.
#[derive(Clone)]
pub struct Signer {
    secret_id: String,
    secret_key: String,
    service: String,
    /// Day number (timestamp / 86400) the cached key belongs to.
    day: i64,
    date: String,
    credential_scope: String,
    /// HMAC state keyed with kSigning, cloned per request.
    signing_mac: Option<HmacSha256>,
}

impl Signer {
    pub fn new(secret_id: &str, secret_key: &str, service: &str) -> Self {
        Signer {
            secret_id: secret_id.to_string(),
            secret_key: secret_key.to_string(),
            service: service.to_string(),
            day: i64::MIN,
            date: String::new(),
            credential_scope: String::new(),
            signing_mac: None,
        }
    }

    fn refresh(&mut self, timestamp: i64) {
        let day = timestamp.div_euclid(86_400);
        if self.signing_mac.is_some() && day == self.day {
            return;
        }
        let date = utc_date(timestamp);
        let k_date = hmac(
            format!("TC3{}", self.secret_key).as_bytes(),
            date.as_bytes(),
        );
        let k_service = hmac(&k_date, self.service.as_bytes());
        let k_signing = hmac(&k_service, b"tc3_request");
        self.signing_mac =
            Some(HmacSha256::new_from_slice(&k_signing).expect("HMAC accepts any key length"));
        self.credential_scope = format!("{date}/{}/tc3_request", self.service);
        self.date = date;
        self.day = day;
    }

    /// The hex signature of a POST request.
    pub fn signature(
        &mut self,
        timestamp: i64,
        content_type: &str,
        host: &str,
        payload: &[u8],
    ) -> String {
        self.refresh(timestamp);
        let canonical = canonical_request(content_type, host, payload);
        let string_to_sign = format!(
            "{ALGORITHM}\n{timestamp}\n{}\n{}",
            self.credential_scope,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut mac = self
            .signing_mac
            .clone()
            .expect("refresh() set the signing key");
        mac.update(string_to_sign.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The value of the `Authorization` header of a POST request.
    pub fn authorization(
        &mut self,
        timestamp: i64,
        content_type: &str,
        host: &str,
        payload: &[u8],
    ) -> String {
        let signature = self.signature(timestamp, content_type, host, payload);
        format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
            self.secret_id, self.credential_scope
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Official vector, /work/shared/reference/tencent-api3.md §3.1.
    const BODY: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
    const CT: &str = "application/json; charset=utf-8";
    const HOST: &str = "cvm.tencentcloudapi.com";
    const TS: i64 = 1_551_113_065;

    #[test]
    fn official_vector_hashes() {
        assert_eq!(
            hex::encode(Sha256::digest(BODY.as_bytes())),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let canonical = canonical_request(CT, HOST, BODY.as_bytes());
        assert_eq!(
            hex::encode(Sha256::digest(canonical.as_bytes())),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(utc_date(TS), "2019-02-25");
    }

    #[test]
    fn official_vector_signature() {
        let mut signer = Signer::new(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "cvm",
        );
        let expected = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168";
        assert_eq!(signer.signature(TS, CT, HOST, BODY.as_bytes()), expected);
        // Cached key gives the same result.
        assert_eq!(signer.signature(TS, CT, HOST, BODY.as_bytes()), expected);
        assert_eq!(
            signer.authorization(TS, CT, HOST, BODY.as_bytes()),
            format!(
                "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
                 SignedHeaders=content-type;host, Signature={expected}"
            )
        );
    }

    #[test]
    fn key_is_rederived_when_the_day_changes() {
        let mut signer = Signer::new("id", "key", "gse");
        let a = signer.signature(86_400 * 100 + 5, "application/json", "h:1", b"{}");
        let b = signer.signature(86_400 * 101 + 5, "application/json", "h:1", b"{}");
        let mut fresh = Signer::new("id", "key", "gse");
        assert_eq!(
            fresh.signature(86_400 * 101 + 5, "application/json", "h:1", b"{}"),
            b
        );
        assert_ne!(a, b);
        assert!(signer
            .authorization(86_400 * 101 + 5, "application/json", "h:1", b"{}")
            .contains("Credential=id/1970-04-12/gse/tc3_request"));
    }
}
