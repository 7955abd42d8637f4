//! Accounts: every resource belongs to one; a caller sees only its own account's resources.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub String);

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who is calling, after authentication, and in which region.
#[derive(Clone, Debug)]
pub struct Caller {
    pub account: AccountId,
    pub region: String,
}
