//! The typed endpoint: which DCS v2 operation a request asks for, parsed from the method and
//! the raw path alone, before anything is authenticated or read.

use crate::auth::percent_decode;
use crate::error::{echo, HuaweiError};

/// The operations sessiond serves under `/v2/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    HangUpClients,
    HangUpKillAllClients,
    ScanClients,
    ListClients,
    ShowNodesInformation,
    ListGroupReplicationInfo,
    ShowInstance,
    ShowJobInfo,
}

impl Operation {
    pub const ALL: [Operation; 8] = [
        Operation::HangUpClients,
        Operation::HangUpKillAllClients,
        Operation::ScanClients,
        Operation::ListClients,
        Operation::ShowNodesInformation,
        Operation::ListGroupReplicationInfo,
        Operation::ShowInstance,
        Operation::ShowJobInfo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::HangUpClients => "HangUpClients",
            Operation::HangUpKillAllClients => "HangUpKillAllClients",
            Operation::ScanClients => "ScanClients",
            Operation::ListClients => "ListClients",
            Operation::ShowNodesInformation => "ShowNodesInformation",
            Operation::ListGroupReplicationInfo => "ListGroupReplicationInfo",
            Operation::ShowInstance => "ShowInstance",
            Operation::ShowJobInfo => "ShowJobInfo",
        }
    }

    /// Requests per second per access key unless `[rate_limits]` says otherwise
    /// (`"dcs.<Operation>"`).
    pub fn default_rate_limit(self) -> u32 {
        match self {
            Operation::HangUpClients => 20,
            Operation::HangUpKillAllClients => 5,
            Operation::ScanClients => 10,
            Operation::ListClients => 100,
            Operation::ShowJobInfo => 100,
            Operation::ShowNodesInformation
            | Operation::ListGroupReplicationInfo
            | Operation::ShowInstance => 50,
        }
    }

    pub fn has_body(self) -> bool {
        matches!(
            self,
            Operation::HangUpClients | Operation::HangUpKillAllClients | Operation::ScanClients
        )
    }
}

/// A parsed request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub operation: Operation,
    /// `{project_id}` of the path, decoded.
    pub project_id: String,
    /// `{instance_id}` or `{job_id}`, decoded.
    pub resource_id: String,
}

/// Longest path served; longer ones cannot name a resource.
const MAX_PATH: usize = 1024;

impl Endpoint {
    /// Routes `method` + raw path (no query). Unknown paths are 404 DCS.4001, a known path
    /// with another method 405 DCS.5001.
    pub fn parse(method: &http::Method, raw_path: &str) -> Result<Endpoint, HuaweiError> {
        if raw_path.len() > MAX_PATH {
            return Err(HuaweiError::url_not_found("the path is too long"));
        }
        let not_found = || {
            HuaweiError::url_not_found(format!(
                "{} {} is not a DCS v2 API that sessiond serves",
                method,
                echo(raw_path)
            ))
        };
        let rest = raw_path.strip_prefix("/v2/").ok_or_else(not_found)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let mut segments = Vec::new();
        for raw in rest.split('/') {
            let decoded =
                String::from_utf8(percent_decode(raw.as_bytes())).map_err(|_| not_found())?;
            if decoded.is_empty() {
                return Err(not_found());
            }
            segments.push(decoded);
        }
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        use http::Method as M;
        let (choices, resource): (&[(M, Operation)], &str) = match s.as_slice() {
            [_, "instances", id] => (&[(M::GET, Operation::ShowInstance)], id),
            [_, "instances", id, "clients"] => (
                &[
                    (M::GET, Operation::ListClients),
                    (M::POST, Operation::ScanClients),
                ],
                id,
            ),
            [_, "instances", id, "clients", "kill"] => (&[(M::POST, Operation::HangUpClients)], id),
            [_, "instances", id, "clients", "kill-all"] => {
                (&[(M::POST, Operation::HangUpKillAllClients)], id)
            }
            [_, "instances", id, "logical-nodes"] => {
                (&[(M::GET, Operation::ShowNodesInformation)], id)
            }
            [_, "instance", id, "groups"] => (&[(M::GET, Operation::ListGroupReplicationInfo)], id),
            [_, "jobs", id] => (&[(M::GET, Operation::ShowJobInfo)], id),
            _ => return Err(not_found()),
        };
        let operation = choices
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, op)| *op)
            .ok_or_else(|| {
                let allowed: Vec<&str> = choices.iter().map(|(m, _)| m.as_str()).collect();
                HuaweiError::method_not_allowed(method.as_str(), &allowed.join(" or "))
            })?;
        Ok(Endpoint {
            operation,
            project_id: s[0].to_string(),
            resource_id: resource.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn op(method: Method, path: &str) -> Result<Operation, &'static str> {
        Endpoint::parse(&method, path)
            .map(|e| e.operation)
            .map_err(|e| e.code)
    }

    #[test]
    fn routes() {
        let p = "/v2/0605767a3300d5762fb7c0186d9e1779";
        let i = "3ee4d2e8-7d1a-4fb8-a9f0-1e1f2ad2c5e1";
        assert_eq!(
            op(Method::POST, &format!("{p}/instances/{i}/clients/kill")),
            Ok(Operation::HangUpClients)
        );
        assert_eq!(
            op(Method::POST, &format!("{p}/instances/{i}/clients/kill-all")),
            Ok(Operation::HangUpKillAllClients)
        );
        assert_eq!(
            op(Method::POST, &format!("{p}/instances/{i}/clients")),
            Ok(Operation::ScanClients)
        );
        assert_eq!(
            op(Method::GET, &format!("{p}/instances/{i}/clients/")),
            Ok(Operation::ListClients)
        );
        assert_eq!(
            op(Method::GET, &format!("{p}/instances/{i}/logical-nodes")),
            Ok(Operation::ShowNodesInformation)
        );
        assert_eq!(
            op(Method::GET, &format!("{p}/instance/{i}/groups")),
            Ok(Operation::ListGroupReplicationInfo)
        );
        assert_eq!(
            op(Method::GET, &format!("{p}/instances/{i}")),
            Ok(Operation::ShowInstance)
        );
        assert_eq!(
            op(Method::GET, &format!("{p}/jobs/abc")),
            Ok(Operation::ShowJobInfo)
        );
        let e = Endpoint::parse(&Method::GET, "/v2/%7Bproject_id%7D/jobs/j%2D1").unwrap();
        assert_eq!(e.project_id, "{project_id}");
        assert_eq!(e.resource_id, "j-1");
    }

    #[test]
    fn unknown_paths_and_methods() {
        let p = "/v2/p/instances/i";
        assert_eq!(op(Method::DELETE, p), Err("DCS.5001"));
        assert_eq!(
            op(Method::GET, &format!("{p}/clients/kill")),
            Err("DCS.5001")
        );
        assert_eq!(op(Method::PUT, &format!("{p}/clients")), Err("DCS.5001"));
        for path in [
            "/v2/p",
            "/v2/p/instances",
            "/v2/p/instances//clients",
            "/v2/p/instances/i/clients/kill/now",
            "/v2/p/instance/i",
            "/v1/p/instances/i",
            "/v2/p/instances/%FF",
        ] {
            assert_eq!(op(Method::GET, path), Err("DCS.4001"), "{path}");
        }
        assert_eq!(
            op(Method::GET, &format!("/v2/{}", "x".repeat(2000))),
            Err("DCS.4001")
        );
    }
}
