//! An open-loop load generator.
//!
//! Requests leave on a schedule fixed in advance (a constant rate, a ramp,
//! spikes), whatever the server is doing. A closed-loop tool waits for each
//! answer before sending the next, so a slow server slows the test down and
//! the latency it should have measured never happens; here a slow answer
//! is measured as slow, and the requests behind it still leave on time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::metrics::quantile;

/// The base rate over the run.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Requests a second, all along.
    Constant(f64),
    /// From the first rate to the second, linearly.
    Ramp(f64, f64),
}

/// A burst on top of the base: `rate` requests a second from `at` for
/// `length` (the higher of the base and the spike applies).
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    pub at: Duration,
    pub rate: f64,
    pub length: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub shape: Shape,
    pub spikes: Vec<Spike>,
    pub duration: Duration,
}

impl Plan {
    pub fn rate_at(&self, t: f64) -> f64 {
        let total = self.duration.as_secs_f64().max(f64::EPSILON);
        let base = match self.shape {
            Shape::Constant(r) => r,
            Shape::Ramp(a, b) => a + (b - a) * (t / total).clamp(0.0, 1.0),
        };
        self.spikes
            .iter()
            .filter(|s| t >= s.at.as_secs_f64() && t < (s.at + s.length).as_secs_f64())
            .map(|s| s.rate)
            .fold(base, f64::max)
    }

    /// The send time of every request, in seconds from the start: the
    /// rate integrated over time, one request each time the count passes a
    /// whole number.
    pub fn schedule(&self) -> Vec<f64> {
        let step = 0.0005;
        let end = self.duration.as_secs_f64();
        let mut times = Vec::new();
        let mut count = 0.0;
        let mut emitted = 0u64;
        let mut t = 0.0;
        while t < end {
            let before = count;
            count += self.rate_at(t + step / 2.0) * step;
            // (A hair of tolerance, so that float sums land on whole counts.)
            while (emitted + 1) as f64 <= count + 1e-9 {
                emitted += 1;
                // Place the request where the count crossed it within this step.
                let frac = ((emitted as f64 - before) / (count - before)).clamp(0.0, 1.0);
                times.push(t + frac * step);
            }
            t += step;
        }
        times
    }

    /// The expected number of requests.
    pub fn expected(&self) -> usize {
        self.schedule().len()
    }
}

/// Parses `5s`, `500ms`, `2m` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 10s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("`{s}`: the unit is ms, s or m")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("`{s}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a ramp `A..B` (requests a second).
pub fn parse_ramp(s: &str) -> Result<Shape, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("`{s}` is not a ramp such as 10..200"))?;
    let a: f64 = a
        .trim()
        .parse()
        .map_err(|_| format!("`{a}` is not a rate"))?;
    let b: f64 = b
        .trim()
        .parse()
        .map_err(|_| format!("`{b}` is not a rate"))?;
    if a < 0.0 || b < 0.0 {
        return Err("rates are not negative".into());
    }
    Ok(Shape::Ramp(a, b))
}

/// Parses a spike `AT:RATE:LENGTH`, such as `10s:500:5s`.
pub fn parse_spike(s: &str) -> Result<Spike, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let [at, rate, length] = parts[..] else {
        return Err(format!(
            "`{s}` is not a spike such as 10s:500:5s (at, rate, length)"
        ));
    };
    let rate: f64 = rate
        .trim()
        .parse()
        .ok()
        .filter(|r: &f64| r.is_finite() && *r >= 0.0)
        .ok_or_else(|| format!("`{rate}` is not a rate"))?;
    Ok(Spike {
        at: parse_duration(at)?,
        rate,
        length: parse_duration(length)?,
    })
}

#[derive(Debug, Clone)]
pub struct Target {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    /// `{seq}` is replaced by the request's sequence number.
    pub body: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub target: Target,
    pub plan: Plan,
    /// At most this many requests in flight; requests due beyond it are not
    /// sent, and counted as dropped (the schedule is never delayed).
    pub concurrency_cap: Option<usize>,
    pub request_timeout: Duration,
    /// Print a line a second while running.
    pub progress: bool,
}

#[derive(Debug, Default, Clone)]
pub struct SecondStats {
    pub sent: usize,
    pub completed: usize,
    pub by_status: BTreeMap<u16, usize>,
    pub failed: usize,
    pub latencies_ms: Vec<f64>,
    pub max_in_flight: usize,
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub planned: usize,
    pub sent: usize,
    pub dropped: usize,
    pub completed: usize,
    pub failed: usize,
    pub by_status: BTreeMap<u16, usize>,
    pub elapsed: Duration,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Per second of the run, by completion time (sent by send time).
    pub seconds: Vec<SecondStats>,
}

impl LoadReport {
    pub fn count(&self, pred: impl Fn(u16) -> bool) -> usize {
        self.by_status
            .iter()
            .filter(|(s, _)| pred(**s))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn throughput(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The summary as one JSON object.
    pub fn json(&self) -> String {
        serde_json::json!({
            "planned": self.planned,
            "sent": self.sent,
            "completed": self.completed,
            "failed": self.failed,
            "dropped": self.dropped,
            "by_status": self.by_status,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "throughput": self.throughput(),
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        })
        .to_string()
    }

    /// The summary printed at the end of a run.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "requests: {} planned, {} sent, {} answered, {} failed without an answer, {} dropped by the cap",
            self.planned, self.sent, self.completed, self.failed, self.dropped
        );
        let statuses: Vec<String> = self
            .by_status
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let _ = writeln!(
            out,
            "status:   {}",
            if statuses.is_empty() {
                "-".into()
            } else {
                statuses.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "latency:  p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms
        );
        let _ = write!(
            out,
            "throughput: {:.1} answers/s over {:.1} s ({:.1}/s 2xx)",
            self.throughput(),
            self.elapsed.as_secs_f64(),
            self.count(|s| (200..300).contains(&s)) as f64
                / self.elapsed.as_secs_f64().max(f64::EPSILON)
        );
        out
    }
}

struct Shared {
    seconds: Vec<SecondStats>,
    histogram: Histogram<u64>,
    by_status: BTreeMap<u16, usize>,
    failed: usize,
    completed: usize,
    in_flight: usize,
}

/// Runs the plan against the target.
pub async fn run(options: LoadOptions) -> Result<LoadReport, String> {
    let uri: hyper::Uri = options
        .target
        .url
        .parse()
        .map_err(|e| format!("`{}` is not a URL: {e}", options.target.url))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(format!(
                "`{}` must start with http:// or https://",
                options.target.url
            ));
        }
    }
    let method: hyper::Method = options
        .target
        .method
        .parse()
        .map_err(|_| format!("`{}` is not an HTTP method", options.target.method))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);

    let schedule = options.plan.schedule();
    let planned = schedule.len();
    let n_seconds = options.plan.duration.as_secs_f64().ceil() as usize + 1;
    let shared = Arc::new(Mutex::new(Shared {
        seconds: vec![SecondStats::default(); n_seconds],
        histogram: Histogram::new(3).expect("valid histogram"),
        by_status: BTreeMap::new(),
        failed: 0,
        completed: 0,
        in_flight: 0,
    }));
    let start = tokio::time::Instant::now();
    let progress = options.progress.then(|| {
        let shared = shared.clone();
        let total = options.plan.duration.as_secs();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut second = 0usize;
            loop {
                tick.tick().await;
                let line = {
                    let s = shared.lock().expect("load lock");
                    progress_line(&s, second, total)
                };
                if std::io::stderr().is_terminal() {
                    eprint!("\r{line}\x1b[K");
                } else {
                    eprintln!("{line}");
                }
                second += 1;
            }
        })
    });

    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = 0usize;
    let mut dropped = 0usize;
    for (n, at) in schedule.iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(*at)).await;
        while tasks.try_join_next().is_some() {}
        let slot = (*at as usize).min(n_seconds - 1);
        {
            let mut s = shared.lock().expect("load lock");
            if options
                .concurrency_cap
                .is_some_and(|cap| s.in_flight >= cap)
            {
                dropped += 1;
                continue;
            }
            s.in_flight += 1;
            let in_flight = s.in_flight;
            let second = &mut s.seconds[slot];
            second.sent += 1;
            second.max_in_flight = second.max_in_flight.max(in_flight);
        }
        sent += 1;
        let body = options
            .target
            .body
            .as_ref()
            .map(|b| b.replace("{seq}", &n.to_string()))
            .unwrap_or_default();
        let mut builder = hyper::Request::builder()
            .method(method.clone())
            .uri(uri.clone());
        for (k, v) in &options.target.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let client = client.clone();
        let shared = shared.clone();
        let timeout = options.request_timeout;
        tasks.spawn(async move {
            let begun = Instant::now();
            let result = tokio::time::timeout(timeout, async {
                let response = client.request(request).await.map_err(|_| ())?;
                let status = response.status().as_u16();
                // Read the whole answer: the latency is the answer's, not its headers'.
                response.into_body().collect().await.map_err(|_| ())?;
                Ok::<_, ()>(status)
            })
            .await;
            let latency = begun.elapsed();
            let done = start.elapsed().as_secs_f64();
            let mut s = shared.lock().expect("load lock");
            s.in_flight -= 1;
            let slot = (done as usize).min(s.seconds.len() - 1);
            match result {
                Ok(Ok(status)) => {
                    s.completed += 1;
                    *s.by_status.entry(status).or_default() += 1;
                    let micros = latency.as_micros().max(1) as u64;
                    let _ = s.histogram.record(micros);
                    let second = &mut s.seconds[slot];
                    second.completed += 1;
                    *second.by_status.entry(status).or_default() += 1;
                    second.latencies_ms.push(latency.as_secs_f64() * 1000.0);
                }
                _ => {
                    s.failed += 1;
                    s.seconds[slot].failed += 1;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    if let Some(p) = progress {
        p.abort();
        if options.progress && std::io::stderr().is_terminal() {
            eprintln!();
        }
    }
    let s = shared.lock().expect("load lock");
    let at = |q: f64| s.histogram.value_at_quantile(q) as f64 / 1000.0;
    let (p50_ms, p90_ms, p99_ms, max_ms) = if s.completed == 0 {
        (0.0, 0.0, 0.0, 0.0)
    } else {
        (
            at(0.50),
            at(0.90),
            at(0.99),
            s.histogram.max() as f64 / 1000.0,
        )
    };
    Ok(LoadReport {
        planned,
        sent,
        dropped,
        completed: s.completed,
        failed: s.failed,
        by_status: s.by_status.clone(),
        elapsed,
        p50_ms,
        p90_ms,
        p99_ms,
        max_ms,
        seconds: s.seconds.clone(),
    })
}

fn progress_line(s: &Shared, second: usize, total: u64) -> String {
    let current = &s.seconds[second.min(s.seconds.len() - 1)];
    let class = |lo: u16, hi: u16| -> usize {
        current
            .by_status
            .iter()
            .filter(|(k, _)| (lo..hi).contains(*k))
            .map(|(_, n)| n)
            .sum()
    };
    let mut latencies = current.latencies_ms.clone();
    let p99 = quantile(&mut latencies, 0.99)
        .map(|v| format!("{v:.1} ms"))
        .unwrap_or_else(|| "-".into());
    format!(
        "{:>3}/{total}s  sent {:>5}/s  2xx {:>5}  4xx {:>4} (429: {})  5xx {:>4}  failed {:>3}  in flight {:>3}  p99 {p99}",
        second + 1,
        current.sent,
        class(200, 300),
        class(400, 500),
        current.by_status.get(&429).copied().unwrap_or(0),
        class(500, 600),
        current.failed,
        s.in_flight,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_rate_sends_evenly() {
        let plan = Plan {
            shape: Shape::Constant(100.0),
            spikes: vec![],
            duration: Duration::from_secs(2),
        };
        let times = plan.schedule();
        assert_eq!(times.len(), 200);
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| (g - 0.01).abs() < 0.001), "every 10 ms");
    }

    #[test]
    fn ramps_and_spikes_add_up() {
        let ramp = Plan {
            shape: Shape::Ramp(0.0, 100.0),
            spikes: vec![],
            duration: Duration::from_secs(10),
        };
        assert_eq!(ramp.expected(), 500, "the area under 0..100 over 10 s");
        let spike = Plan {
            shape: Shape::Constant(10.0),
            spikes: vec![Spike {
                at: Duration::from_secs(2),
                rate: 100.0,
                length: Duration::from_secs(1),
            }],
            duration: Duration::from_secs(5),
        };
        assert_eq!(spike.expected(), 4 * 10 + 100);
        assert_eq!(spike.rate_at(2.5), 100.0);
        assert_eq!(spike.rate_at(3.0), 10.0);
    }

    #[test]
    fn arguments_parse_or_explain() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("soon").unwrap_err().contains("10s"));
        assert_eq!(parse_ramp("10..200").unwrap(), Shape::Ramp(10.0, 200.0));
        assert!(parse_ramp("10-200").is_err());
        let spike = parse_spike("10s:500:5s").unwrap();
        assert_eq!(spike.rate, 500.0);
        assert_eq!(spike.length, Duration::from_secs(5));
        assert!(
            parse_spike("10s:500")
                .unwrap_err()
                .contains("at, rate, length")
        );
    }
}
