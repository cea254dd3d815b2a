//! A small writer for the Prometheus text exposition format (version 0.0.4).
//!
//! Our metrics are snapshots of counters the state machines already keep, rendered on each scrape; the
//! registry-based client crates want metric objects updated at every event instead, which would mean a
//! second set of counters in the hot path. This writer only formats: `# HELP`, `# TYPE`, samples with
//! escaped label values. `promtool check metrics` validates its output in the end-to-end tests.

use std::fmt::{Display, Write};

/// Metric kinds we expose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic; the name must end in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// Accumulates one scrape's text.
#[derive(Default)]
pub struct MetricsText {
    out: String,
}

fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

impl MetricsText {
    /// Starts a metric family. Every sample of the family must follow before the next family starts.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> &mut Self {
        debug_assert!(kind != Kind::Counter || name.ends_with("_total"));
        let t = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {t}");
        self
    }

    /// One sample of the current family.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: impl Display,
    ) -> &mut Self {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
        self
    }

    /// The families every daemon's scrape starts with: `weft_build_info` (version and `role`, "edge" or
    /// "supernode") and `weft_uptime_seconds`.
    pub fn process(&mut self, role: &str, uptime_s: u64) -> &mut Self {
        self.family(
            "weft_build_info",
            Kind::Gauge,
            "Build information; always 1.",
        )
        .sample(
            "weft_build_info",
            &[("version", env!("CARGO_PKG_VERSION")), ("role", role)],
            1,
        )
        .single(
            "weft_uptime_seconds",
            Kind::Gauge,
            &format!("Seconds since the {role} started."),
            uptime_s,
        )
    }

    /// What the management server refused (`weft_mgmt_*`): wrong passwords, lock-outs, requests not
    /// checked during a lock-out, connections over quota. Refusals a stranger causes at will are counted
    /// here rather than logged one by one.
    pub fn management(&mut self, stats: &weft_mgmt::MgmtStats) -> &mut Self {
        self.single(
            "weft_mgmt_password_failures_total",
            Kind::Counter,
            "Wrong management passwords presented.",
            stats.password_failures(),
        )
        .single(
            "weft_mgmt_password_lockouts_total",
            Kind::Counter,
            "Clients locked out after a burst of wrong passwords (one log line each).",
            stats.password_bursts(),
        )
        .single(
            "weft_mgmt_throttled_requests_total",
            Kind::Counter,
            "Requests whose password was not checked because their client was locked out.",
            stats.throttled_attempts(),
        )
        .single(
            "weft_mgmt_refused_connections_total",
            Kind::Counter,
            "Management connections closed on accept: a listener's pool or a client's share was full.",
            stats.refused_connections(),
        )
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: impl Display) -> &mut Self {
        self.family(name, kind, help);
        self.sample(name, &[], value)
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_families_labels_and_escapes() {
        let mut m = MetricsText::default();
        m.family("weft_frames_total", Kind::Counter, "Frames.\nTwo lines")
            .sample(
                "weft_frames_total",
                &[("direction", "rx"), ("path", "di\"rect")],
                3,
            )
            .single("weft_peers", Kind::Gauge, "Peers.", 2);
        assert_eq!(
            m.finish(),
            "# HELP weft_frames_total Frames.\\nTwo lines\n# TYPE weft_frames_total counter\n\
             weft_frames_total{direction=\"rx\",path=\"di\\\"rect\"} 3\n\
             # HELP weft_peers Peers.\n# TYPE weft_peers gauge\nweft_peers 2\n"
        );
    }

    #[test]
    fn management_counters_are_counter_families() {
        let mut m = MetricsText::default();
        m.management(&weft_mgmt::MgmtStats::default());
        let text = m.finish();
        for name in [
            "weft_mgmt_password_failures_total",
            "weft_mgmt_password_lockouts_total",
            "weft_mgmt_throttled_requests_total",
            "weft_mgmt_refused_connections_total",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} counter\n{name} 0\n")),
                "{text}"
            );
        }
    }
}
