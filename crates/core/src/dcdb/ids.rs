//! DCDB identifier formats (dcdb.md §1) and the derivation of node ids.

/// `tdsqlshard-<8>` (current) or legacy `dcdbt-<8>`, `<8>` of `[a-z0-9]`.
pub fn is_instance_id(s: &str) -> bool {
    let rest = s
        .strip_prefix("tdsqlshard-")
        .or_else(|| s.strip_prefix("dcdbt-"));
    rest.is_some_and(is_lower_alnum8)
}

/// `shard-<8>`, `<8>` of `[a-z0-9]`.
pub fn is_shard_instance_id(s: &str) -> bool {
    s.strip_prefix("shard-").is_some_and(is_lower_alnum8)
}

/// `set_<unix-seconds>_<n>`: the proxy "set" name, e.g. `set_1643096858_1`.
pub fn is_shard_serial_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("set_") else {
        return false;
    };
    let Some((secs, n)) = rest.split_once('_') else {
        return false;
    };
    let digits = |p: &str| !p.is_empty() && p.len() <= 20 && p.bytes().all(|b| b.is_ascii_digit());
    digits(secs) && digits(n)
}

/// A node id: 1 to 64 characters of `[A-Za-z0-9_.-]` (Tencent's are 12 hex digits).
pub fn is_node_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn is_lower_alnum8(s: &str) -> bool {
    s.len() == 8
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The node id of the `index`-th node of a shard (0 = master) when the configuration names
/// none: 12 hex digits, stable across restarts and independent of the node's address, so a
/// failover that swaps addresses in the configuration keeps the ids.
pub fn derive_node_id(instance_id: &str, shard_instance_id: &str, index: usize) -> String {
    // FNV-1a, 64 bit: small, stable, no dependency; only uniqueness within one installation
    // matters (the configuration check rejects collisions).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in instance_id
        .bytes()
        .chain([b'/'])
        .chain(shard_instance_id.bytes())
        .chain([b'/'])
        .chain(index.to_string().into_bytes())
    {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:012x}", hash & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        for ok in ["tdsqlshard-2gk4nxyz", "dcdbt-ow728lmc"] {
            assert!(is_instance_id(ok), "{ok}");
        }
        for bad in [
            "",
            "tdsqlshard-",
            "tdsqlshard-2gk4nxy",
            "tdsqlshard-2gk4nxyzz",
            "tdsqlshard-2GK4NXYZ",
            "cdb-2gk4nxyz",
            "dcdbt-ow728lm!",
            "tdsqlshard-2gk4nxyé",
        ] {
            assert!(!is_instance_id(bad), "{bad}");
        }
        assert!(is_shard_instance_id("shard-ljilb4st"));
        assert!(!is_shard_instance_id("shard-ljilb4s"));
        assert!(!is_shard_instance_id("set_1643096858_1"));
        assert!(is_shard_serial_id("set_1643096858_1"));
        for bad in [
            "set_",
            "set_1",
            "set_1_",
            "set__1",
            "set_a_1",
            "shard-ljilb4st",
        ] {
            assert!(!is_shard_serial_id(bad), "{bad}");
        }
        assert!(is_node_id("4ddc0ea18433"));
        assert!(!is_node_id(""));
        assert!(!is_node_id("a b"));
        assert!(!is_node_id(&"a".repeat(65)));
    }

    #[test]
    fn derived_node_ids_are_stable_and_distinct() {
        let a = derive_node_id("tdsqlshard-2gk4nxyz", "shard-ljilb4st", 0);
        assert_eq!(
            a,
            derive_node_id("tdsqlshard-2gk4nxyz", "shard-ljilb4st", 0)
        );
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(
            a,
            derive_node_id("tdsqlshard-2gk4nxyz", "shard-ljilb4st", 1)
        );
        assert_ne!(
            a,
            derive_node_id("tdsqlshard-2gk4nxyz", "shard-ljilb4su", 0)
        );
    }
}
