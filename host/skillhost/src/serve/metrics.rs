//! What `GET /metrics` reports, in the Prometheus text format: invocations by skill, tenant and
//! outcome, their durations, upstream calls and 429s by tenant, queue depth, running
//! invocations and peak guest memory by skill.
//!
//! A handful of families with a bounded set of label values (skill IDs of the catalog, tenants
//! of the config, a fixed list of outcomes) needs no metrics library: counters live in one map
//! behind a lock taken once per invocation, and label values are escaped as the format says.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};

use super::schedule::Load;

/// Upper bounds of the duration histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0,
];

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    invocations: BTreeMap<(String, String, &'static str), u64>,
    durations: BTreeMap<String, Histogram>,
    upstream: BTreeMap<String, (u64, u64)>,
    peak_memory: BTreeMap<String, usize>,
    rejected: BTreeMap<&'static str, u64>,
}

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// One finished invocation, as the metrics count it.
pub struct Finished<'a> {
    /// The skill's ID.
    pub skill: &'a str,
    /// The tenant (or `caller:NAME` for an invocation without a connection).
    pub tenant: &'a str,
    /// `ok` or the error code.
    pub outcome: &'static str,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Upstream requests sent (retries included) and 429 answers among them.
    pub upstream: (u64, u64),
    /// Peak guest memory, bytes (0 when unknown).
    pub peak_memory: usize,
}

impl Metrics {
    /// Counts one finished invocation.
    pub fn finished(&self, f: Finished<'_>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        *inner
            .invocations
            .entry((f.skill.to_string(), f.tenant.to_string(), f.outcome))
            .or_default() += 1;
        let histogram = inner.durations.entry(f.skill.to_string()).or_default();
        histogram.count += 1;
        histogram.sum += f.seconds;
        for (bucket, bound) in histogram.buckets.iter_mut().zip(BUCKETS) {
            if f.seconds <= bound {
                *bucket += 1;
            }
        }
        if f.upstream != (0, 0) {
            let entry = inner.upstream.entry(f.tenant.to_string()).or_default();
            entry.0 += f.upstream.0;
            entry.1 += f.upstream.1;
        }
        let peak = inner.peak_memory.entry(f.skill.to_string()).or_default();
        *peak = (*peak).max(f.peak_memory);
    }

    /// Counts a request refused before it ran, by error code.
    pub fn rejected(&self, code: &'static str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        *inner.rejected.entry(code).or_default() += 1;
    }

    /// The text `GET /metrics` answers to a caller who `sees` the tenants it names: series of
    /// other tenants are left out (a caller learns nothing of another tenant's work), series
    /// by skill and the server's load are shown to every caller.
    pub fn render(&self, load: Load, sees: &dyn Fn(&str) -> bool) -> String {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        family(
            &mut out,
            "skillhost_invocations_total",
            "counter",
            "Invocations that ran, by skill, tenant and outcome.",
        );
        for ((skill, tenant, outcome), n) in &inner.invocations {
            if !sees(tenant) {
                continue;
            }
            let _ = writeln!(
                out,
                "skillhost_invocations_total{{skill=\"{}\",tenant=\"{}\",outcome=\"{outcome}\"}} {n}",
                label(skill),
                label(tenant)
            );
        }
        family(
            &mut out,
            "skillhost_requests_rejected_total",
            "counter",
            "Requests refused before an invocation ran, by error code.",
        );
        for (code, n) in &inner.rejected {
            let _ = writeln!(
                out,
                "skillhost_requests_rejected_total{{code=\"{code}\"}} {n}"
            );
        }
        family(
            &mut out,
            "skillhost_invocation_duration_seconds",
            "histogram",
            "Wall time of invocations, queueing excluded, by skill.",
        );
        for (skill, h) in &inner.durations {
            let skill = label(skill);
            for (n, bound) in h.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "skillhost_invocation_duration_seconds_bucket{{skill=\"{skill}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "skillhost_invocation_duration_seconds_bucket{{skill=\"{skill}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "skillhost_invocation_duration_seconds_sum{{skill=\"{skill}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "skillhost_invocation_duration_seconds_count{{skill=\"{skill}\"}} {}",
                h.count
            );
        }
        family(
            &mut out,
            "skillhost_upstream_requests_total",
            "counter",
            "Requests sent to upstream services (retries included), by tenant.",
        );
        for (tenant, (sent, _)) in inner.upstream.iter().filter(|(t, _)| sees(t)) {
            let _ = writeln!(
                out,
                "skillhost_upstream_requests_total{{tenant=\"{}\"}} {sent}",
                label(tenant)
            );
        }
        family(
            &mut out,
            "skillhost_upstream_throttled_total",
            "counter",
            "Upstream answers with status 429, by tenant.",
        );
        for (tenant, (_, throttled)) in inner.upstream.iter().filter(|(t, _)| sees(t)) {
            let _ = writeln!(
                out,
                "skillhost_upstream_throttled_total{{tenant=\"{}\"}} {throttled}",
                label(tenant)
            );
        }
        family(
            &mut out,
            "skillhost_guest_memory_peak_bytes",
            "gauge",
            "The most memory one invocation's sandbox reached, by skill.",
        );
        for (skill, peak) in &inner.peak_memory {
            let _ = writeln!(
                out,
                "skillhost_guest_memory_peak_bytes{{skill=\"{}\"}} {peak}",
                label(skill)
            );
        }
        family(
            &mut out,
            "skillhost_queue_depth",
            "gauge",
            "Invocations waiting for a slot.",
        );
        let _ = writeln!(out, "skillhost_queue_depth {}", load.queued);
        family(
            &mut out,
            "skillhost_invocations_running",
            "gauge",
            "Invocations running.",
        );
        let _ = writeln!(out, "skillhost_invocations_running {}", load.running);
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format wants it: backslash, double quote and line feed escaped.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_is_counted_by_skill_tenant_and_outcome() {
        let metrics = Metrics::default();
        metrics.finished(Finished {
            skill: "s",
            tenant: "acme \"x\"",
            outcome: "ok",
            seconds: 0.02,
            upstream: (3, 1),
            peak_memory: 1024,
        });
        let text = metrics.render(
            Load {
                running: 2,
                queued: 5,
            },
            &|_| true,
        );
        assert!(text.contains(
            "skillhost_invocations_total{skill=\"s\",tenant=\"acme \\\"x\\\"\",outcome=\"ok\"} 1\n"
        ));
        assert!(
            text.contains(
                "skillhost_invocation_duration_seconds_bucket{skill=\"s\",le=\"0.01\"} 0\n"
            )
        );
        assert!(text.contains(
            "skillhost_invocation_duration_seconds_bucket{skill=\"s\",le=\"0.025\"} 1\n"
        ));
        assert!(text.contains("skillhost_upstream_throttled_total{tenant=\"acme \\\"x\\\"\"} 1\n"));
        assert!(text.contains("skillhost_guest_memory_peak_bytes{skill=\"s\"} 1024\n"));
        assert!(text.contains("skillhost_queue_depth 5\n"));
        assert!(text.contains("skillhost_invocations_running 2\n"));
    }

    #[test]
    fn a_caller_sees_the_series_of_its_tenants_and_not_of_others() {
        let metrics = Metrics::default();
        for tenant in ["acme", "globex"] {
            metrics.finished(Finished {
                skill: "s",
                tenant,
                outcome: "ok",
                seconds: 0.02,
                upstream: (3, 1),
                peak_memory: 1024,
            });
        }
        let load = Load {
            running: 0,
            queued: 0,
        };
        let text = metrics.render(load, &|tenant| tenant == "acme");
        assert!(text.contains(
            "skillhost_invocations_total{skill=\"s\",tenant=\"acme\",outcome=\"ok\"} 1\n"
        ));
        assert!(text.contains("skillhost_upstream_requests_total{tenant=\"acme\"} 3\n"));
        assert!(!text.contains("globex"), "{text}");
        // Series by skill count every tenant's invocations.
        assert!(text.contains("skillhost_invocation_duration_seconds_count{skill=\"s\"} 2\n"));
    }
}
