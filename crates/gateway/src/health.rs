//! Each connection's health from the gateway's own traffic: over the last
//! N requests (calls and probes), `disconnected` when the last one could
//! not reach the upstream, `degraded` when too many failed or the median
//! latency is too high, otherwise `connected`. A change is written to the
//! connection (so every replica and `/api/v1/status` see it); every request
//! also feeds the Prometheus metrics.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use switchboard_core::Core;

/// When a connection counts as degraded (the `gateway.health_*` settings).
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// How many recent requests are judged.
    pub window: usize,
    /// Degraded at or above this share of failures (0.10 = 10%).
    pub error_ratio: f64,
    /// Degraded when the median latency is over this.
    pub slow_p50: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            window: 20,
            error_ratio: 0.10,
            slow_p50: Duration::from_secs(2),
        }
    }
}

#[derive(Default)]
struct Window {
    samples: VecDeque<(bool, Duration)>,
    state: Option<&'static str>,
    /// When the newest sample was taken (ms), if it is not recorded yet.
    unrecorded: Option<i64>,
}

/// The recent requests of every connection on this replica.
pub struct HealthBook {
    core: Core,
    settings: HealthSettings,
    windows: Mutex<HashMap<String, Window>>,
}

/// Judges a window: `disconnected` if the newest request failed to reach
/// the upstream, else `degraded` or `connected`.
fn judge(samples: &VecDeque<(bool, Duration)>, s: &HealthSettings) -> &'static str {
    let Some((last_ok, _)) = samples.back() else {
        return "connected";
    };
    if !last_ok {
        return "disconnected";
    }
    let failed = samples.iter().filter(|(ok, _)| !ok).count();
    let p50 = median(samples);
    if failed as f64 >= s.error_ratio * samples.len() as f64 && failed > 0 || p50 > s.slow_p50 {
        "degraded"
    } else {
        "connected"
    }
}

impl HealthBook {
    pub fn new(core: Core, settings: HealthSettings) -> Self {
        HealthBook {
            core,
            settings,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Records one request to a connection's upstream; `ok` is false only
    /// when the upstream could not be reached or did not answer in time (an
    /// error the upstream answered with is a working upstream).
    pub fn record(&self, connection_id: &str, ok: bool, latency: Duration, error: Option<&str>) {
        let outcome = if ok { "ok" } else { "unavailable" };
        metrics::counter!("switchboard_upstream_requests_total", "connection" => connection_id.to_owned(), "outcome" => outcome).increment(1);
        metrics::histogram!("switchboard_upstream_request_seconds", "connection" => connection_id.to_owned()).record(latency.as_secs_f64());
        let changed = {
            let Ok(mut windows) = self.windows.lock() else {
                return;
            };
            let w = windows.entry(connection_id.to_owned()).or_default();
            w.samples.push_back((ok, latency));
            w.unrecorded = Some(switchboard_core::now_ms());
            while w.samples.len() > self.settings.window.max(1) {
                w.samples.pop_front();
            }
            let state = judge(&w.samples, &self.settings);
            let changed = w.state != Some(state);
            w.state = Some(state);
            changed.then_some(state)
        };
        if let Some(state) = changed {
            let core = self.core.clone();
            let id = connection_id.to_owned();
            let error = if state == "connected" {
                None
            } else {
                error.map(str::to_owned).or_else(|| {
                    Some(format!(
                        "over the last {} requests: too many failures or a median latency over {} ms",
                        self.settings.window,
                        self.settings.slow_p50.as_millis()
                    ))
                })
            };
            tokio::spawn(async move {
                if let Err(e) = core
                    .set_connection_health(&id, state, error.as_deref())
                    .await
                {
                    tracing::warn!(connection = %id, error = %e, "could not record a connection's health");
                }
            });
        }
    }

    /// Writes each connection's median latency and the time of its newest
    /// request, for those with requests since the last time (the gateway's
    /// background work calls this every few seconds: never per request).
    pub async fn record_latencies(&self) {
        let due: Vec<(String, i64, i64)> = match self.windows.lock() {
            Ok(mut windows) => windows
                .iter_mut()
                .filter_map(|(id, w)| {
                    let at = w.unrecorded.take()?;
                    Some((id.clone(), median(&w.samples).as_millis() as i64, at))
                })
                .collect(),
            Err(_) => return,
        };
        for (id, latency_ms, at) in due {
            if let Err(e) = self
                .core
                .record_connection_latency(&id, latency_ms, at)
                .await
            {
                tracing::warn!(connection = %id, error = %e, "could not record a connection's latency");
            }
        }
    }
}

/// The median latency of a window (zero when it is empty).
fn median(samples: &VecDeque<(bool, Duration)>) -> Duration {
    let mut l: Vec<Duration> = samples.iter().map(|(_, l)| *l).collect();
    l.sort();
    l.get(l.len() / 2).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(samples: &[(bool, u64)]) -> VecDeque<(bool, Duration)> {
        samples
            .iter()
            .map(|(ok, ms)| (*ok, Duration::from_millis(*ms)))
            .collect()
    }

    #[test]
    fn states_follow_the_documented_thresholds() {
        let s = HealthSettings::default();
        assert_eq!(judge(&window(&[(true, 5); 20]), &s), "connected");
        // The newest request could not reach the upstream.
        assert_eq!(judge(&window(&[(true, 5), (false, 5)]), &s), "disconnected");
        // 2 of 20 failed (10%): degraded.
        let mut w = window(&[(true, 5); 18]);
        w.push_front((false, Duration::from_millis(5)));
        w.push_front((false, Duration::from_millis(5)));
        assert_eq!(judge(&w, &s), "degraded");
        // 1 of 20 (5%): still connected.
        let mut w = window(&[(true, 5); 19]);
        w.push_front((false, Duration::from_millis(5)));
        assert_eq!(judge(&w, &s), "connected");
        // Median over 2 s.
        assert_eq!(judge(&window(&[(true, 2500); 11]), &s), "degraded");
        assert_eq!(judge(&window(&[(true, 1500); 11]), &s), "connected");
    }
}
