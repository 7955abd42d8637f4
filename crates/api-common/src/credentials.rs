//! API credentials: access key id, secret, owning account. Secrets never appear in Debug output.

use std::collections::HashMap;

use sessiond_core::AccountId;

/// A secret that does not print itself.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Credential {
    pub access_key_id: String,
    pub secret: Secret,
    pub account: AccountId,
}

/// Every credential sessiond accepts, by access key id.
#[derive(Debug, Default)]
pub struct Credentials {
    by_id: HashMap<String, Credential>,
}

impl Credentials {
    pub fn new(list: Vec<Credential>) -> Self {
        Credentials {
            by_id: list
                .into_iter()
                .map(|c| (c.access_key_id.clone(), c))
                .collect(),
        }
    }

    pub fn get(&self, access_key_id: &str) -> Option<&Credential> {
        self.by_id.get(access_key_id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let c = Credential {
            access_key_id: "AKID".into(),
            secret: Secret::new("hunter2"),
            account: AccountId("1".into()),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let all = Credentials::new(vec![c]);
        assert_eq!(all.get("AKID").unwrap().secret.expose(), b"hunter2");
        assert!(all.get("other").is_none());
    }
}
