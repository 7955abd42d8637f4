//! The typed endpoint: which operation a request is, from its method and raw path alone
//! (before authentication). URI labels stay percent-encoded until the route is chosen.

use super::generated::Operation;

/// The first path segments GameSparks routes start with; sessiond's AWS dialect claims them.
pub const PREFIXES: [&str; 4] = ["game", "runtime", "tags", "extension"];

/// A routed request: the operation and its URI labels (raw, still percent-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub operation: Operation,
    pub labels: Vec<(&'static str, String)>,
}

/// Whether a path belongs to the GameSparks API (first segment one of [`PREFIXES`]).
pub fn claims_path(raw_path: &str) -> bool {
    let first = raw_path
        .strip_prefix('/')
        .and_then(|p| p.split('/').next())
        .unwrap_or("");
    PREFIXES.contains(&first)
}

/// Matches a template against a raw path: the number of literal segments and the labels.
fn matches(template: &'static str, raw_path: &str) -> Option<(usize, Vec<(&'static str, String)>)> {
    let mut literals = 0;
    let mut labels = Vec::new();
    let mut path = raw_path.split('/');
    for ts in template.split('/') {
        let ps = path.next()?;
        if let Some(label) = ts.strip_prefix('{').and_then(|l| l.strip_suffix('}')) {
            labels.push((label, ps.to_string()));
        } else if ts == ps {
            literals += 1;
        } else {
            return None;
        }
    }
    if path.next().is_some() {
        return None;
    }
    Some((literals, labels))
}

/// Why no operation matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    /// The path is a route of another method.
    Method { allowed: Vec<&'static str> },
    /// No route has this path.
    Path,
}

/// Routes by method and raw path; the most literal template wins.
pub fn route(method: &str, raw_path: &str) -> Result<Endpoint, NoRoute> {
    let mut best: Option<(usize, Endpoint)> = None;
    let mut other_methods = Vec::new();
    for op in Operation::ALL {
        let template: &'static str = op.uri();
        let Some((literals, labels)) = matches(template, raw_path) else {
            continue;
        };
        if op.method() != method {
            other_methods.push(op.method());
            continue;
        }
        if best.as_ref().is_none_or(|(l, _)| literals > *l) {
            best = Some((
                literals,
                Endpoint {
                    operation: op,
                    labels,
                },
            ));
        }
    }
    match best {
        Some((_, endpoint)) => Ok(endpoint),
        None if !other_methods.is_empty() => {
            other_methods.sort();
            other_methods.dedup();
            Err(NoRoute::Method {
                allowed: other_methods,
            })
        }
        None => Err(NoRoute::Path),
    }
}

/// Percent-decodes a URI label; None if it is not UTF-8.
pub fn decode_label(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_routes_to_itself() {
        for op in Operation::ALL {
            let path = op
                .uri()
                .split('/')
                .map(|s| if s.starts_with('{') { "x%3Ay" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let endpoint = route(op.method(), &path).unwrap();
            assert_eq!(endpoint.operation, op, "{path}");
            assert!(endpoint.labels.iter().all(|(_, v)| v == "x%3Ay"));
            assert!(claims_path(&path), "{path}");
        }
    }

    #[test]
    fn labels_and_methods() {
        let e = route(
            "POST",
            "/runtime/game/MyGame/stage/Dev/player/player-1/disconnect",
        )
        .unwrap();
        assert_eq!(e.operation, Operation::DisconnectPlayer);
        assert_eq!(
            e.labels,
            [
                ("GameName", "MyGame".to_string()),
                ("StageName", "Dev".to_string()),
                ("PlayerId", "player-1".to_string())
            ]
        );
        let e = route(
            "DELETE",
            "/tags/arn%3Aaws%3Agamesparks%3Aus-east-1%3A123456789012%3Agame%2FMyGame",
        )
        .unwrap();
        assert_eq!(e.operation, Operation::UntagResource);
        assert_eq!(
            decode_label(&e.labels[0].1).unwrap(),
            "arn:aws:gamesparks:us-east-1:123456789012:game/MyGame"
        );
        assert_eq!(
            route("GET", "/game").unwrap().operation,
            Operation::ListGames
        );
        assert_eq!(
            route("POST", "/game").unwrap().operation,
            Operation::CreateGame
        );
        assert_eq!(
            route("GET", "/game/g/configuration").unwrap().operation,
            Operation::GetGameConfiguration
        );
        assert_eq!(
            route("PUT", "/game"),
            Err(NoRoute::Method {
                allowed: vec!["GET", "POST"]
            })
        );
        assert_eq!(route("GET", "/game/a/b/c/d/e/f"), Err(NoRoute::Path));
        // An empty label still routes (and fails validation later).
        assert_eq!(
            route("GET", "/game/").unwrap().operation,
            Operation::GetGame
        );
        assert_eq!(decode_label("%FF"), None);
    }

    #[test]
    fn claims_only_gamesparks_paths() {
        for p in [
            "/game",
            "/game/x",
            "/runtime/game/x",
            "/tags/x",
            "/extension",
        ] {
            assert!(claims_path(p), "{p}");
        }
        for p in [
            "/",
            "",
            "/v2/abc/instances",
            "/gamesparks/runtime/v1",
            "/games",
            "/metrics",
        ] {
            assert!(!claims_path(p), "{p}");
        }
    }
}
