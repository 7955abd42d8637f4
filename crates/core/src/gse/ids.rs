//! Identifier formats (see the GSE decisions in the reference).

use rand::Rng;

fn hex8() -> String {
    format!("{:08x}", rand::rng().random::<u32>())
}

pub fn fleet_id() -> String {
    format!("fleet-{}-{}", hex8(), hex8())
}

pub fn asset_id() -> String {
    format!("asset-{}", hex8())
}

pub fn instance_id() -> String {
    format!("ins-{}", hex8())
}

/// Time-ordered (UUID v7) so that new records append to the store's index instead of
/// landing on random pages.
pub fn player_session_id() -> String {
    format!("psess-{}", uuid::Uuid::now_v7())
}

/// `qcs::gse:<region>:uin/<account>:gameserversession/<fleetId>/gssess-<uuid>`; a caller-chosen
/// id part replaces the uuid.
pub fn game_server_session_id(
    region: &str,
    account: &str,
    fleet_id: &str,
    custom: Option<&str>,
) -> String {
    let part = match custom {
        Some(custom) => custom.to_string(),
        None => format!("gssess-{}", uuid::Uuid::now_v7()),
    };
    format!("qcs::gse:{region}:uin/{account}:gameserversession/{fleet_id}/{part}")
}

pub fn fleet_arn(region: &str, account: &str, fleet_id: &str) -> String {
    format!("qcs::gse:{region}:uin/{account}:fleet/{fleet_id}")
}

pub fn asset_arn(region: &str, account: &str, asset_id: &str) -> String {
    format!("qcs::gse:{region}:uin/{account}:asset/{asset_id}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        let f = super::fleet_id();
        assert_eq!(f.len(), "fleet-12345678-12345678".len());
        assert!(f.starts_with("fleet-"));
        assert!(super::player_session_id().starts_with("psess-"));
        let g = super::game_server_session_id("ap-shanghai", "100", &f, None);
        assert!(g.starts_with(&format!(
            "qcs::gse:ap-shanghai:uin/100:gameserversession/{f}/gssess-"
        )));
    }
}
