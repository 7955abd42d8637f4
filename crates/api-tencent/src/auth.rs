//! Signature verification (TC3-HMAC-SHA256 and v1 HmacSHA1/HmacSHA256).
