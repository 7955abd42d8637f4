//! Request counters in the Prometheus text format (served on GET /metrics).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use parking_lot::Mutex;

/// (dialect, action, outcome code)
type RequestKey = (&'static str, String, String);

#[derive(Default)]
pub struct Metrics {
    /// -> (count, total microseconds)
    requests: Mutex<BTreeMap<RequestKey, (u64, u64)>>,
}

impl Metrics {
    pub fn record(&self, dialect: &'static str, action: &str, outcome: &str, micros: u64) {
        let mut requests = self.requests.lock();
        let key = (dialect, action.to_string(), outcome.to_string());
        let entry = requests.entry(key).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += micros;
    }

    pub fn render(&self) -> String {
        let requests = self.requests.lock();
        let mut out = String::from(
            "# HELP sessiond_requests_total API requests by dialect, action and outcome.\n# TYPE sessiond_requests_total counter\n",
        );
        for ((dialect, action, outcome), (count, _)) in requests.iter() {
            let _ = writeln!(
                out,
                "sessiond_requests_total{{dialect=\"{dialect}\",action=\"{}\",outcome=\"{}\"}} {count}",
                escape(action),
                escape(outcome)
            );
        }
        out.push_str("# HELP sessiond_request_seconds_sum Time spent answering API requests.\n# TYPE sessiond_request_seconds_sum counter\n");
        for ((dialect, action, outcome), (_, micros)) in requests.iter() {
            let _ = writeln!(
                out,
                "sessiond_request_seconds_sum{{dialect=\"{dialect}\",action=\"{}\",outcome=\"{}\"}} {:.6}",
                escape(action),
                escape(outcome),
                *micros as f64 / 1e6
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
