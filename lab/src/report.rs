//! The lab's report: text for the terminal, and a self-contained HTML page
//! with SVG charts, the local counterpart of the CloudWatch graphs of a
//! function and its API.

use std::fmt::Write as _;

use crate::load::LoadReport;
use crate::metrics::{Second, Snapshot, quantile};

/// Prices in us-east-1, from the AWS price lists.
pub mod prices {
    /// Lambda, per request.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1_000_000.0;
    /// Lambda, per GB-second, arm64.
    pub const LAMBDA_GB_S_ARM64: f64 = 0.000_013_333_4;
    /// Lambda, per GB-second, x86_64.
    pub const LAMBDA_GB_S_X86_64: f64 = 0.000_016_666_7;
    /// HTTP API, per request (first 300 million a month).
    pub const HTTP_API_REQUEST: f64 = 1.00 / 1_000_000.0;
    /// REST API, per request (first 333 million a month).
    pub const REST_API_REQUEST: f64 = 3.50 / 1_000_000.0;
    /// Secrets Manager, per API call ($0.05 per 10,000).
    pub const SECRETS_MANAGER_CALL: f64 = 0.05 / 10_000.0;
    /// X-Ray, per trace recorded past the free tier ($5.00 per million).
    pub const XRAY_TRACE: f64 = 5.00 / 1_000_000.0;
    /// Provisioned concurrency, per GB-second allocated, used or not.
    pub const PROVISIONED_GB_S_ARM64: f64 = 0.000_003_333_4;
    pub const PROVISIONED_GB_S_X86_64: f64 = 0.000_004_166_7;
    /// Duration on a provisioned environment, per GB-second.
    pub const PROVISIONED_DURATION_GB_S_ARM64: f64 = 0.000_007_777_8;
    pub const PROVISIONED_DURATION_GB_S_X86_64: f64 = 0.000_009_722_2;
    /// AWS bills provisioned concurrency in increments of this long.
    pub const PROVISIONED_INCREMENT_SECONDS: f64 = 300.0;
}

/// One run of a scenario: its label, what was sent, what was measured.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub label: String,
    pub description: String,
    pub load: LoadReport,
    pub metrics: Snapshot,
    pub rest_api: bool,
    pub memory_mb: u32,
    pub max_concurrency: Option<usize>,
    /// Seats on sale, when the run reserves seats.
    pub seats_on_sale: Option<u64>,
    /// The most connections the run's database accepts, when limited.
    pub database_limit: Option<u32>,
    /// How many new environments the fleet may start a second.
    pub scale_per_second: Option<f64>,
    /// The CPU the run cost this machine, by whom; `None` where the OS
    /// does not say.
    pub cpu: Option<crate::machine::RunCpu>,
    /// GetSecretValue calls the run made, when the function reads secrets.
    pub secret_calls: Option<u64>,
    /// The traces the run recorded, with tracing on.
    pub traces: Vec<crate::xray::Trace>,
    /// What the scenario did during the run and saw (a rotation, a ticket
    /// shown at the door), a line each.
    pub notes: Vec<String>,
}

/// The estimated AWS bill of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub lambda_requests: f64,
    /// Duration: on-demand environments' at the on-demand price, provisioned
    /// ones' at provisioned concurrency's duration price.
    pub lambda_compute_arm64: f64,
    pub lambda_compute_x86_64: f64,
    /// Provisioned concurrency allocated, per GB-s, used or not.
    pub provisioned_arm64: f64,
    pub provisioned_x86_64: f64,
    pub api_requests: f64,
    pub secrets_calls: f64,
    pub traces: f64,
}

impl Cost {
    pub fn total_arm64(&self) -> f64 {
        self.lambda_requests
            + self.lambda_compute_arm64
            + self.provisioned_arm64
            + self.api_requests
            + self.secrets_calls
            + self.traces
    }
}

impl RunReport {
    /// Requests the gateway passed to the integration: API Gateway bills
    /// these, not the ones it throttled or refused itself.
    pub fn billed_api_requests(&self) -> usize {
        self.metrics
            .requests
            .iter()
            .filter(|r| !r.gateway_throttled && r.status != 403)
            .count()
    }

    pub fn cost(&self) -> Cost {
        let invocations = self.metrics.invocations.len() as f64;
        let gb_s = self.metrics.gb_seconds();
        let on_provisioned = self.metrics.provisioned_gb_seconds();
        let on_demand = gb_s - on_provisioned;
        let allocated = self.metrics.provisioned_env_seconds() * f64::from(self.memory_mb) / 1024.0;
        let api = if self.rest_api {
            prices::REST_API_REQUEST
        } else {
            prices::HTTP_API_REQUEST
        };
        Cost {
            lambda_requests: invocations * prices::LAMBDA_REQUEST,
            lambda_compute_arm64: on_demand * prices::LAMBDA_GB_S_ARM64
                + on_provisioned * prices::PROVISIONED_DURATION_GB_S_ARM64,
            lambda_compute_x86_64: on_demand * prices::LAMBDA_GB_S_X86_64
                + on_provisioned * prices::PROVISIONED_DURATION_GB_S_X86_64,
            provisioned_arm64: allocated * prices::PROVISIONED_GB_S_ARM64,
            provisioned_x86_64: allocated * prices::PROVISIONED_GB_S_X86_64,
            api_requests: self.billed_api_requests() as f64 * api,
            secrets_calls: self.secret_calls.unwrap_or(0) as f64 * prices::SECRETS_MANAGER_CALL,
            traces: self.traces.len() as f64 * prices::XRAY_TRACE,
        }
    }

    /// A cold request's trace and a warm one's (the warm trace of median
    /// length), to draw as waterfalls.
    pub fn sample_traces(&self) -> Vec<(&'static str, &crate::xray::Trace)> {
        let mut out = Vec::new();
        if let Some(cold) = self.traces.iter().find(|t| t.is_cold()) {
            out.push(("a cold request", cold));
        }
        let mut warm: Vec<&crate::xray::Trace> =
            self.traces.iter().filter(|t| !t.is_cold()).collect();
        warm.sort_by(|a, b| a.duration().total_cmp(&b.duration()));
        if let Some(median) = warm.get(warm.len() / 2) {
            out.push(("a warm request (the median)", median));
        }
        out
    }

    fn init_p50(&self) -> Option<f64> {
        let mut inits: Vec<f64> = self
            .metrics
            .invocations
            .iter()
            .filter_map(|i| i.init_ms)
            .collect();
        quantile(&mut inits, 0.5)
    }

    fn durations(&self, q: f64) -> Option<f64> {
        let mut d: Vec<f64> = self
            .metrics
            .invocations
            .iter()
            .map(|i| i.duration_ms)
            .collect();
        quantile(&mut d, q)
    }

    /// Where the throttles came from: the concurrency limit is what Lambda
    /// would do; a scaling rate below Lambda's is the laptop's.
    fn throttle_causes(&self) -> String {
        let m = &self.metrics;
        let mut causes = vec![];
        if !m.throttles.is_empty() || m.scaling_throttles.is_empty() {
            causes.push(format!(
                "{} by the concurrency limit (Lambda's, as on AWS)",
                m.throttles.len()
            ));
        }
        if !m.scaling_throttles.is_empty() {
            let rate = self
                .scale_per_second
                .unwrap_or(crate::fleet::SCALE_PER_SECOND);
            let whose = if rate < crate::fleet::SCALE_PER_SECOND {
                format!(
                    "the lab's scaling rate, {rate:.0} new environments a second, a laptop's limit: \
                     Lambda starts up to {:.0} a second, so on AWS these would have been cold starts",
                    crate::fleet::SCALE_PER_SECOND
                )
            } else {
                format!("Lambda's scaling rate, {rate:.0} new environments a second")
            };
            causes.push(format!("{} by {whose}", m.scaling_throttles.len()));
        }
        causes.join("; ")
    }

    /// How busy the machine was, and what that means for the figures.
    fn laptop(&self) -> Option<String> {
        let (p50, max, saturated) = self.metrics.machine()?;
        let cores = crate::machine::cores();
        let seconds = self.metrics.seconds();
        let verdict = if saturated == 0 {
            format!(
                "never saturated ({:.0} % or more): the durations are not the laptop's",
                crate::machine::SATURATED * 100.0
            )
        } else {
            format!(
                "saturated ({:.0} % or more) in {saturated} of {seconds} s: durations and latencies \
                 in those seconds include waiting for a core, which Lambda would not show",
                crate::machine::SATURATED * 100.0
            )
        };
        Some(format!(
            "CPU busy p50 {:.0} %, max {:.0} % of {}; {verdict}",
            p50 * 100.0,
            max * 100.0,
            count(cores, "core", "cores")
        ))
    }

    /// What the lab itself cost this machine per invocation, beside what
    /// the function's processes and the load generator cost: on Lambda only
    /// the function's share runs, on a host of its own.
    fn lab_cpu(&self) -> Option<String> {
        let cpu = self.cpu?;
        let invocations = self.metrics.invocations.len();
        if invocations == 0 {
            return None;
        }
        let per = |d: std::time::Duration| {
            let us = d.as_secs_f64() * 1e6 / invocations as f64;
            if us >= 10_000.0 {
                format!("{:.0} ms", us / 1000.0)
            } else {
                format!("{us:.0} us")
            }
        };
        Some(format!(
            "CPU per invocation: the lab {} (gateway, fleet, Runtime API), the function's processes {}, \
             the load generator {}; on Lambda only the function's runs, on a host of its own",
            per(cpu.lab),
            per(cpu.functions),
            per(cpu.load)
        ))
    }

    /// The run as text.
    /// The provisioned environments' story: how many, how busy, what
    /// spilled over, what scaled them, what they cost allocated.
    fn provisioned_line(&self) -> Option<String> {
        let m = &self.metrics;
        let peak = m.peak_provisioned();
        if peak == 0 {
            return None;
        }
        let first = m.provisioned.first().map_or(0.0, |s| s.at);
        let before_traffic = m
            .provisioned
            .iter()
            .take_while(|s| s.at <= first + 0.5)
            .map(|s| s.allocated)
            .max()
            .unwrap_or(0);
        let busiest = m
            .provisioned
            .iter()
            .filter(|s| s.allocated > 0)
            .map(|s| s.busy as f64 / s.allocated as f64)
            .fold(0.0, f64::max);
        let on_provisioned = m.invocations.iter().filter(|i| i.provisioned).count();
        let mut line = format!(
            "{before_traffic} before traffic, {peak} at most; {} on them, {} spilled over to on-demand; \
             utilisation at most {:.0}%",
            count(on_provisioned, "invocation", "invocations"),
            m.spillovers(),
            busiest * 100.0
        );
        for &(at, from, to) in &m.scale_outs {
            let _ = write!(line, "; at {at:.1} s target tracking raised {from} to {to}");
        }
        if !m.datapoints.is_empty() {
            let points: Vec<String> = m
                .datapoints
                .iter()
                .map(|&(at, u)| format!("{at:.0} s {:.0}%", u * 100.0))
                .collect();
            let _ = write!(line, "; datapoints {}", points.join(", "));
        }
        let env_s = m.provisioned_env_seconds();
        let gb = f64::from(self.memory_mb) / 1024.0;
        let _ = write!(
            line,
            "; {env_s:.1} environment-seconds allocated (AWS bills 5-minute increments: \
             {peak} for 5 minutes is ${:.4} arm64)",
            peak as f64
                * gb
                * prices::PROVISIONED_INCREMENT_SECONDS
                * prices::PROVISIONED_GB_S_ARM64
        );
        Some(line)
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let l = &self.load;
        let m = &self.metrics;
        let _ = writeln!(out, "{} — {}", self.label, self.description);
        let class = |lo: u16, hi: u16| l.count(|s| (lo..hi).contains(&s));
        let _ = writeln!(
            out,
            "  requests   {} sent, {} answered: 2xx {}, 4xx {} (429 {}), 5xx {}; {} without an answer",
            l.sent,
            l.completed,
            class(200, 300),
            class(400, 500),
            l.by_status.get(&429).copied().unwrap_or(0),
            class(500, 600),
            l.failed
        );
        let statuses: Vec<String> = l
            .by_status
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let _ = writeln!(out, "  by status  {}", statuses.join(", "));
        let _ = writeln!(
            out,
            "  latency    p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms (as the client saw it)",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
        );
        let limit = self
            .max_concurrency
            .map_or(String::new(), |c| format!(" (limit {c})"));
        let _ = writeln!(
            out,
            "  function   {}, {}{}, {}, peak concurrency {}{limit}",
            count(m.invocations.len(), "invocation", "invocations"),
            count(m.cold_starts(), "cold start", "cold starts"),
            self.init_p50()
                .map_or(String::new(), |p| format!(" (Init Duration p50 {p:.2} ms)")),
            count(m.all_throttles(), "throttle", "throttles"),
            m.peak_concurrency(),
        );
        if m.all_throttles() > 0 {
            let _ = writeln!(out, "  throttles  {}", self.throttle_causes());
        }
        if let Some(provisioned) = self.provisioned_line() {
            let _ = writeln!(out, "  provisioned {provisioned}");
        }
        let _ = writeln!(
            out,
            "  duration   p50 {}, p99 {} (REPORT Duration); {:.4} GB-s billed at {} MB",
            fmt_ms(self.durations(0.5)),
            fmt_ms(self.durations(0.99)),
            m.gb_seconds(),
            self.memory_mb
        );
        if let Some(peak) = m.peak_db_connections() {
            let limit = self
                .database_limit
                .map_or(String::new(), |n| format!(" (the database takes {n})"));
            let _ = writeln!(
                out,
                "  database   peak {}{limit}; {} 503 (the store unavailable)",
                count(peak, "connection", "connections"),
                count(
                    l.by_status.get(&503).copied().unwrap_or(0),
                    "answer",
                    "answers"
                ),
            );
        }
        if let Some(calls) = self.secret_calls {
            let per_request = m.invocations.len() as u64;
            let _ = writeln!(
                out,
                "  secrets    {}: ${:.6} (a call per request would have made {per_request}: ${:.6})",
                count(
                    calls as usize,
                    "GetSecretValue call",
                    "GetSecretValue calls"
                ),
                calls as f64 * prices::SECRETS_MANAGER_CALL,
                per_request as f64 * prices::SECRETS_MANAGER_CALL,
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "  {note}");
        }
        if !self.traces.is_empty() {
            let _ = writeln!(
                out,
                "  traces     {} recorded (the lab samples every request; X-Ray's default rule records the first each second and 5 % of the rest); what called what:",
                self.traces.len()
            );
            for edge in crate::xray::service_map(&self.traces) {
                let _ = writeln!(
                    out,
                    "               {} -> {}: {}, mean {:.2} ms",
                    edge.from,
                    edge.to,
                    count(edge.calls as usize, "call", "calls"),
                    edge.mean_ms
                );
            }
            let (slow, spent) = crate::xray::where_time_went(&self.traces, 0.99);
            let spent: Vec<String> = spent
                .iter()
                .take(5)
                .map(|(name, ms)| format!("{name} {ms:.2} ms"))
                .collect();
            let _ = writeln!(
                out,
                "  p99 time   the slowest {} spent, on average: {}",
                count(slow, "trace", "traces"),
                spent.join(", ")
            );
            for (what, trace) in self.sample_traces() {
                let _ = writeln!(out, "  {what}");
                for line in trace.render().lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        if let Some(seats) = self.seats_on_sale {
            let sold = l.count(|s| s == 201);
            let verdict = if sold as u64 > seats {
                "oversold: the stock lives in memory, not in one place every environment shares"
            } else {
                "no seat sold twice"
            };
            let _ = writeln!(
                out,
                "  seats      {sold} reservations for {seats} seats on sale: {verdict}"
            );
        }
        if let Some(laptop) = self.laptop() {
            let _ = writeln!(out, "  laptop     {laptop}");
        }
        if let Some(lab_cpu) = self.lab_cpu() {
            let _ = writeln!(out, "  lab's CPU  {lab_cpu}");
        }
        let c = self.cost();
        let api = if self.rest_api {
            "REST API"
        } else {
            "HTTP API"
        };
        let mut extra = String::new();
        if m.peak_provisioned() > 0 {
            let _ = write!(
                extra,
                " + provisioned concurrency ${:.6} (x86_64 ${:.6})",
                c.provisioned_arm64, c.provisioned_x86_64
            );
        }
        if self.secret_calls.is_some() {
            let _ = write!(extra, " + Secrets Manager ${:.6}", c.secrets_calls);
        }
        if !self.traces.is_empty() {
            let _ = write!(extra, " + X-Ray ${:.6}", c.traces);
        }
        let _ = writeln!(
            out,
            "  AWS cost   ${:.6}: Lambda requests ${:.6} + compute ${:.6} (arm64; x86_64 ${:.6}) + {api} ${:.6}{extra}",
            c.total_arm64(),
            c.lambda_requests,
            c.lambda_compute_arm64,
            c.lambda_compute_x86_64,
            c.api_requests
        );
        let _ = writeln!(out, "  per second");
        let _ = writeln!(
            out,
            "    {:>3} {:>6} {:>6} {:>6} {:>5} {:>5} {:>6} {:>5} {:>5} {:>5} {:>5} {:>9} {:>9} {:>4}",
            "t",
            "sent",
            "2xx",
            "4xx",
            "429",
            "5xx",
            "invoc",
            "cold",
            "thr",
            "scale",
            "conc",
            "dur p99",
            "lat p99",
            "cpu"
        );
        let provisioned = m.peak_provisioned() > 0;
        if provisioned {
            out.pop();
            let _ = writeln!(out, " {:>9} {:>5}", "prov busy", "spill");
        }
        let timeline = m.timeline();
        for (t, second) in timeline.iter().enumerate() {
            let sent = l.seconds.get(t).map_or(0, |s| s.sent);
            let mut lat = l
                .seconds
                .get(t)
                .map(|s| s.latencies_ms.clone())
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    {:>3} {:>6} {:>6} {:>6} {:>5} {:>5} {:>6} {:>5} {:>5} {:>5} {:>5} {:>9} {:>9} {:>4}",
                t,
                sent,
                second.status_2xx,
                second.status_4xx,
                second.gateway_throttles,
                second.status_5xx,
                second.invocations,
                second.cold_starts,
                second.throttles,
                second.scaling_throttles,
                second.max_concurrency,
                fmt_ms(second.duration_p99),
                fmt_ms(quantile(&mut lat, 0.99)),
                second
                    .machine_busy
                    .map_or("-".into(), |b| format!("{:.0}%", b * 100.0)),
            );
            if provisioned {
                out.pop();
                let _ = writeln!(
                    out,
                    " {:>9} {:>5}",
                    format!("{}/{}", second.provisioned_busy, second.provisioned),
                    second.spillover
                );
            }
        }
        out
    }
}

fn fmt_ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.2} ms"),
        None => "-".into(),
    }
}

/* ------------------------------- charts -------------------------------- */

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bars,
    Line,
}

struct Series {
    name: &'static str,
    color: &'static str,
    kind: Kind,
    values: Vec<Option<f64>>,
}

struct Chart {
    title: String,
    unit: &'static str,
    series: Vec<Series>,
    /// A dashed horizontal line, such as a concurrency limit.
    limit: Option<(f64, String)>,
}

const W: f64 = 560.0;
const H: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 52.0;

/// Grid lines on the y axis.
const DIVISIONS: u32 = 4;

/// The axis maximum: `DIVISIONS` round steps (1, 2 or 5 times a power of
/// ten) that reach `v`.
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return f64::from(DIVISIONS);
    }
    let raw = v / f64::from(DIVISIONS);
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    step * f64::from(DIVISIONS)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Prose for the page: escaped, with `code` spans (as the scenarios'
/// texts write them) set in code.
fn prose(s: &str) -> String {
    let mut out = String::new();
    for (k, part) in esc(s).split('`').enumerate() {
        if k % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

impl Chart {
    fn max(&self) -> f64 {
        // Bars stack; lines stand alone.
        let n = self
            .series
            .iter()
            .map(|s| s.values.len())
            .max()
            .unwrap_or(0);
        let stacked = (0..n)
            .map(|i| {
                self.series
                    .iter()
                    .filter(|s| s.kind == Kind::Bars)
                    .filter_map(|s| s.values.get(i).copied().flatten())
                    .sum::<f64>()
            })
            .fold(0.0, f64::max);
        let lines = self
            .series
            .iter()
            .filter(|s| s.kind == Kind::Line)
            .flat_map(|s| s.values.iter().copied().flatten())
            .fold(0.0, f64::max);
        // A limit far above the data would flatten it: the limit then shows
        // as a mark at the top of the chart instead.
        let data = stacked.max(lines);
        match &self.limit {
            Some((limit, _)) if *limit <= 2.0 * data.max(1.0) => data.max(*limit),
            _ => data,
        }
    }

    fn svg(&self, y_max: f64) -> String {
        let n = self
            .series
            .iter()
            .map(|s| s.values.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let plot_w = W - LEFT - RIGHT;
        let plot_h = H - TOP - BOTTOM;
        let x = |i: f64| LEFT + plot_w * i / n as f64;
        let y = |v: f64| TOP + plot_h * (1.0 - (v / y_max).min(1.0));
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
            esc(&self.title)
        );
        let _ = write!(
            svg,
            r#"<text x="{LEFT}" y="20" class="title">{}</text>"#,
            esc(&self.title)
        );
        for k in 0..=DIVISIONS {
            let v = y_max * f64::from(k) / f64::from(DIVISIONS);
            let yy = y(v);
            let _ = write!(
                svg,
                r#"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" class="grid"/><text x="{}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
                W - RIGHT,
                LEFT - 6.0,
                yy + 4.0,
                tick(v)
            );
        }
        let step = if n <= 20 {
            2
        } else if n <= 60 {
            5
        } else {
            10
        };
        for i in (0..=n).step_by(step) {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="middle">{i}s</text>"#,
                x(i as f64),
                TOP + plot_h + 16.0
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="start">{}</text>"#,
            4.0,
            TOP - 8.0,
            self.unit
        );
        // Stacked bars.
        let bar_w = (plot_w / n as f64 * 0.8).max(1.0);
        let mut base = vec![0.0; n];
        for s in self.series.iter().filter(|s| s.kind == Kind::Bars) {
            for (i, v) in s.values.iter().enumerate() {
                let v = v.unwrap_or(0.0);
                if v <= 0.0 {
                    continue;
                }
                let top = y(base[i] + v);
                let bottom = y(base[i]);
                let _ = write!(
                    svg,
                    r#"<rect x="{:.1}" y="{top:.1}" width="{bar_w:.1}" height="{:.1}" fill="{}"><title>{}s: {} {}</title></rect>"#,
                    x(i as f64) + plot_w / n as f64 * 0.1,
                    (bottom - top).max(0.5),
                    s.color,
                    i,
                    tick(v),
                    s.name
                );
                base[i] += v;
            }
        }
        for s in self.series.iter().filter(|s| s.kind == Kind::Line) {
            let mut d = String::new();
            let mut pen = false;
            for (i, v) in s.values.iter().enumerate() {
                match v {
                    Some(v) => {
                        let _ = write!(
                            d,
                            "{}{:.1},{:.1} ",
                            if pen { "L" } else { "M" },
                            x(i as f64 + 0.5),
                            y(*v)
                        );
                        pen = true;
                    }
                    None => pen = false,
                }
            }
            let _ = write!(
                svg,
                r#"<path d="{d}" fill="none" stroke="{}" stroke-width="2.2"/>"#,
                s.color
            );
        }
        if let Some((v, label)) = &self.limit {
            let above = *v > y_max;
            let label = if above {
                format!("{label} (above)")
            } else {
                label.clone()
            };
            let label = &label;
            let yy = y(*v);
            let _ = write!(
                svg,
                r#"<line x1="{LEFT}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" class="limit"/><text x="{}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
                W - RIGHT,
                W - RIGHT - 2.0,
                yy - 4.0,
                esc(label)
            );
        }
        // Legend.
        let mut lx = LEFT;
        let ly = H - 12.0;
        for s in &self.series {
            let _ = write!(
                svg,
                r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{ly:.1}" class="legend">{}</text>"#,
                ly - 10.0,
                s.color,
                lx + 16.0,
                s.name
            );
            lx += 24.0 + s.name.len() as f64 * 7.2;
        }
        svg.push_str("</svg>");
        svg
    }
}

fn tick(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn per_second(timeline: &[Second], f: impl Fn(&Second) -> f64) -> Vec<Option<f64>> {
    timeline.iter().map(|s| Some(f(s))).collect()
}

/// The charts of one run: four, and a fifth when the lab watched a
/// database's connections.
fn charts(run: &RunReport) -> Vec<Chart> {
    let t = run.metrics.timeline();
    let watched = !run.metrics.db_connections.is_empty();
    let lat: Vec<Option<f64>> = run
        .load
        .seconds
        .iter()
        .take(t.len())
        .map(|s| quantile(&mut s.latencies_ms.clone(), 0.99))
        .collect();
    let mut charts = vec![
        Chart {
            title: "Requests by status (API Gateway Count, 4XX, 5XX)".into(),
            unit: "req/s",
            series: vec![
                Series {
                    name: "2xx",
                    color: "#2e7d32",
                    kind: Kind::Bars,
                    values: per_second(&t, |s| s.status_2xx as f64),
                },
                Series {
                    name: "4xx (409: sold out)",
                    color: "#f9a825",
                    kind: Kind::Bars,
                    values: per_second(&t, |s| (s.status_4xx - s.gateway_throttles) as f64),
                },
                Series {
                    name: "429",
                    color: "#ef6c00",
                    kind: Kind::Bars,
                    values: per_second(&t, |s| s.gateway_throttles as f64),
                },
                Series {
                    name: "5xx",
                    color: "#c62828",
                    kind: Kind::Bars,
                    values: per_second(&t, |s| s.status_5xx as f64),
                },
            ],
            limit: None,
        },
        Chart {
            title: "Invocations and throttles (Lambda)".into(),
            unit: "per s",
            series: vec![
                Series {
                    name: "invocations",
                    color: "#1565c0",
                    kind: Kind::Bars,
                    values: per_second(&t, |s| s.invocations as f64),
                },
                Series {
                    name: "throttles (limit)",
                    color: "#c62828",
                    kind: Kind::Bars,
                    values: per_second(&t, |s| s.throttles as f64),
                },
                Series {
                    name: "throttles (lab scaling)",
                    color: "#f9a825",
                    kind: Kind::Bars,
                    values: per_second(&t, |s| s.scaling_throttles as f64),
                },
            ],
            limit: None,
        },
        Chart {
            title: "Concurrent executions and cold starts (Lambda)".into(),
            unit: "envs",
            series: vec![
                Series {
                    name: "cold starts",
                    color: "#90caf9",
                    kind: Kind::Bars,
                    values: per_second(&t, |s| s.cold_starts as f64),
                },
                Series {
                    name: "concurrent (max)",
                    color: "#6a1b9a",
                    kind: Kind::Line,
                    values: per_second(&t, |s| s.max_concurrency as f64),
                },
            ],
            limit: run
                .max_concurrency
                .map(|c| (c as f64, format!("limit {c}"))),
        },
        Chart {
            title: "Database connections (pg_stat_activity, max per second)".into(),
            unit: "conns",
            series: vec![Series {
                name: "server connections",
                color: "#5d4037",
                kind: Kind::Line,
                values: t
                    .iter()
                    .map(|s| s.db_connections.map(|n| n as f64))
                    .collect(),
            }],
            limit: run
                .database_limit
                .map(|n| (f64::from(n), format!("database limit {n}"))),
        },
        Chart {
            title: "Duration p99 (Lambda) and latency p99 (client)".into(),
            unit: "ms",
            series: vec![
                Series {
                    name: "duration p99",
                    color: "#00838f",
                    kind: Kind::Line,
                    values: t.iter().map(|s| s.duration_p99).collect(),
                },
                Series {
                    name: "latency p99",
                    color: "#ad1457",
                    kind: Kind::Line,
                    values: lat,
                },
            ],
            limit: None,
        },
    ];
    if !watched {
        charts.retain(|c| !c.title.starts_with("Database connections"));
    }
    charts
}

/// The report of a scenario's runs as one HTML page; runs side by side,
/// each chart on the same scale across runs so that they compare.
/// The runs of a scenario side by side: what each fan saw, what the fleet
/// did, and the bill.
pub fn side_by_side(runs: &[RunReport]) -> String {
    let mut out = String::new();
    let width = 22;
    let _ = write!(out, "{:<26}", "");
    for run in runs {
        let _ = write!(out, " {:>width$}", truncate(&run.label, width));
    }
    out.push('\n');
    let mut row = |name: &str, cell: &dyn Fn(&RunReport) -> String| {
        let _ = write!(out, "{name:<26}");
        for run in runs {
            let _ = write!(out, " {:>width$}", cell(run));
        }
        out.push('\n');
    };
    row("memory", &|r| format!("{} MB", r.memory_mb));
    row("answered 2xx", &|r| {
        format!(
            "{} of {}",
            r.load.count(|s| (200..300).contains(&s)),
            r.load.sent
        )
    });
    row("latency p50 / p99", &|r| {
        format!("{:.1} / {:.1} ms", r.load.p50_ms, r.load.p99_ms)
    });
    row("duration per call p50", &|r| fmt_ms(r.durations(0.5)));
    row("cold starts", &|r| r.metrics.cold_starts().to_string());
    row("throttles (per minute)", &|r| {
        let minutes = r.metrics.elapsed.max(1.0) / 60.0;
        let n = r.metrics.all_throttles();
        format!("{n} ({:.0})", n as f64 / minutes)
    });
    row("peak concurrency", &|r| {
        r.metrics.peak_concurrency().to_string()
    });
    row("provisioned, peak", &|r| {
        r.metrics.peak_provisioned().to_string()
    });
    row("spillover invocations", &|r| {
        r.metrics.spillovers().to_string()
    });
    row("AWS cost, this run", &|r| {
        format!("${:.6}", r.cost().total_arm64())
    });
    row("  of it provisioned", &|r| {
        format!("${:.6}", r.cost().provisioned_arm64)
    });
    out
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

pub fn html(title: &str, intro: &str, runs: &[RunReport]) -> String {
    let all: Vec<Vec<Chart>> = runs.iter().map(charts).collect();
    let rows = all.iter().map(Vec::len).min().unwrap_or(0);
    let mut page = String::new();
    let _ = write!(
        page,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{t}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #1f2328; background: #fff; }}
h1 {{ font-size: 24px; margin: 0 0 6px; }}
p.intro {{ max-width: 1150px; color: #444; margin: 0 0 16px; }}
code {{ font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.92em; background: #f6f8fa; padding: 0 3px; border-radius: 4px; }}
.grid {{ display: grid; grid-template-columns: repeat({cols}, minmax(0, 580px)); gap: 18px 28px; }}
.run h2 {{ font-size: 18px; margin: 8px 0 2px; }}
.run p {{ margin: 0 0 8px; color: #555; font-size: 14px; }}
pre {{ background: #f6f8fa; padding: 10px 12px; font-size: 12.5px; overflow-x: auto; border-radius: 6px; margin-top: 22px; }}
svg {{ max-width: 100%; height: auto; background: #fcfcfd; border: 1px solid #e5e7eb; border-radius: 6px; }}
svg .title {{ font-size: 14px; font-weight: 600; fill: #1f2328; }}
svg .tick {{ font-size: 11px; fill: #57606a; }}
svg .legend {{ font-size: 12px; fill: #1f2328; }}
svg .grid {{ stroke: #e5e7eb; stroke-width: 1; }}
svg .limit {{ stroke: #c62828; stroke-width: 1.5; stroke-dasharray: 6 4; }}
h2.traces {{ font-size: 18px; margin: 22px 0 8px; }}
p.legend {{ color: #555; font-size: 13px; max-width: 900px; }}
.waterfalls {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(0, 900px)); gap: 14px; }}
</style></head><body>
<h1>{t}</h1><p class="intro">{intro}</p>{table}
<div class="grid">"#,
        t = esc(title),
        intro = prose(intro),
        cols = runs.len().max(1),
        table = if runs.len() > 1 {
            format!("<pre>{}</pre>", esc(&side_by_side(runs)))
        } else {
            String::new()
        }
    );
    for run in runs {
        let _ = write!(
            page,
            r#"<div class="run"><h2>{}</h2><p>{}</p></div>"#,
            esc(&run.label),
            prose(&run.description)
        );
    }
    for row in 0..rows {
        let y_max = nice_max(
            all.iter()
                .map(|charts| charts[row].max())
                .fold(0.0, f64::max),
        );
        for charts in &all {
            page.push_str("<div>");
            page.push_str(&charts[row].svg(y_max));
            page.push_str("</div>");
        }
    }
    page.push_str("</div>");
    for run in runs {
        let samples = run.sample_traces();
        if samples.is_empty() {
            continue;
        }
        let _ = write!(
            page,
            r#"<h2 class="traces">Traces: {}</h2><div class="waterfalls">"#,
            esc(&run.label)
        );
        page.push_str("<div>");
        page.push_str(&crate::xray::service_map_svg(&crate::xray::service_map(
            &run.traces,
        )));
        page.push_str("</div>");
        for (what, trace) in samples {
            page.push_str("<div>");
            page.push_str(&trace.waterfall_svg(what));
            page.push_str("</div>");
        }
        page.push_str(r#"</div><p class="legend">Bars: purple API Gateway's stage, orange Lambda's segments, light orange Lambda's Initialization and Invocation, green the function's own spans, gold calls to AWS services (the <code>aws</code> namespace), blue the database (<code>remote</code>, with the statement).</p>"#);
    }
    for run in runs {
        let _ = write!(page, "<pre>{}</pre>", esc(&run.text()));
    }
    page.push_str("</body></html>\n");
    page
}

/// `1 cold start`, `2 cold starts`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_sets_code_in_code_and_escapes_the_rest() {
        assert_eq!(
            prose("after `cargo workshop db up` & <more>"),
            "after <code>cargo workshop db up</code> &amp; &lt;more&gt;"
        );
        let page = html("t", "needs `db up`", &[]);
        assert!(page.contains("needs <code>db up</code>"));
        assert!(!page.contains('`'));
    }

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_max(0.0), 4.0);
        assert_eq!(nice_max(7.0), 8.0);
        assert_eq!(nice_max(130.0), 200.0);
        assert_eq!(nice_max(2100.0), 4000.0);
        assert_eq!(nice_max(1500.0), 2000.0);
    }

    #[test]
    fn the_price_list_is_the_documented_one() {
        assert_eq!(prices::LAMBDA_REQUEST * 1e6, 0.20);
        assert_eq!(prices::HTTP_API_REQUEST * 1e6, 1.00);
        assert_eq!(prices::REST_API_REQUEST * 1e6, 3.50);
    }
}
