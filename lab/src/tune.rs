//! Memory tuning, as AWS Lambda Power Tuning does it: the function's real
//! bootstrap run at each memory size, with that size's CPU share, the
//! extremes of each size's durations discarded, and the size each strategy
//! picks. Unlike Power Tuning, the cost of an invocation includes its
//! request, which for a function of a few milliseconds is most of it.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;

use crate::cpu::CpuLimits;
use crate::db::DatabaseSpec;
use crate::fleet::FleetOptions;
use crate::metrics::quantile;
use crate::report::prices;
use crate::scenario::{RequestSpec, Target, base_config};
use crate::stack::{Lab, Output};

/// Power Tuning's usual power values, up to 3,008 MB (about 1.7 vCPU).
pub const MEMORY_SIZES: [u32; 6] = [128, 256, 512, 1024, 1769, 3008];

/// What a tuning run does.
#[derive(Debug, Clone)]
pub struct TuneOptions {
    pub memory_mb: Vec<u32>,
    /// Invocations per memory size (Power Tuning's `num`).
    pub invocations: usize,
    /// Every invocation on a new environment (Power Tuning's
    /// `onlyColdStarts`).
    pub cold_starts: bool,
    /// The share of the fastest and of the slowest durations left out
    /// (Power Tuning's `discardTopBottom`).
    pub discard: f64,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            memory_mb: MEMORY_SIZES.to_vec(),
            invocations: 50,
            cold_starts: false,
            discard: 0.2,
        }
    }
}

/// What each invocation is.
#[derive(Debug, Clone)]
pub enum Workload {
    /// A request through the lab's API Gateway (the HTTP modules).
    Http(RequestSpec),
    /// An event invoked directly (module 1).
    Event(Bytes),
}

/// What the tuning optimises, as Power Tuning names its strategies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    Cost,
    Speed,
    /// `weight x cost / max cost + (1 - weight) x duration / max duration`.
    Balanced(f64),
}

impl Strategy {
    pub fn name(self) -> String {
        match self {
            Strategy::Cost => "cost".into(),
            Strategy::Speed => "speed".into(),
            Strategy::Balanced(w) => format!("balanced ({w})"),
        }
    }
}

/// One memory size, measured.
#[derive(Debug, Clone)]
pub struct SizeResult {
    pub memory_mb: u32,
    /// The CPU the environment was given, in cores.
    pub cores: f64,
    pub durations_ms: Vec<f64>,
    /// INIT of the environments this size started.
    pub init_ms: Vec<f64>,
    /// The mean duration without the discarded extremes.
    pub duration_ms: f64,
    /// What Lambda would bill for [`SizeResult::duration_ms`].
    pub billed_ms: u64,
    /// One invocation: its request and its GB-seconds.
    pub cost_arm64: f64,
    pub cost_x86_64: f64,
    /// The most memory an environment used.
    pub max_memory_mb: Option<u64>,
    /// CPU per warm invocation, from the environment's CPU time.
    pub cpu_ms: Option<f64>,
    pub errors: usize,
}

impl SizeResult {
    /// The request's share of an invocation's cost.
    pub fn request_share(&self) -> f64 {
        prices::LAMBDA_REQUEST / self.cost_arm64
    }
}

/// Everything a tuning run measured.
#[derive(Debug, Clone)]
pub struct TuneReport {
    pub function: String,
    pub options: TuneOptions,
    /// How the CPU share was given: enforced by the OS, or only modelled.
    pub cpu: String,
    pub enforced: bool,
    pub sizes: Vec<SizeResult>,
}

/// The cost of one invocation of `billed_ms` at `memory_mb`.
pub fn invocation_cost(memory_mb: u32, billed_ms: u64, gb_second: f64) -> f64 {
    prices::LAMBDA_REQUEST + billed_ms as f64 / 1000.0 * f64::from(memory_mb) / 1024.0 * gb_second
}

/// The mean of `samples` without `discard` of them at each end.
pub fn trimmed_mean(samples: &[f64], discard: f64) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let cut = (sorted.len() as f64 * discard) as usize;
    let kept = sorted.get(cut..sorted.len().saturating_sub(cut))?;
    if kept.is_empty() {
        return None;
    }
    Some(kept.iter().sum::<f64>() / kept.len() as f64)
}

impl TuneReport {
    /// The size `strategy` picks (arm64 prices); the smallest of equals.
    pub fn recommend(&self, strategy: Strategy) -> Option<&SizeResult> {
        let max_cost = self.sizes.iter().map(|s| s.cost_arm64).fold(0.0, f64::max);
        let max_duration = self.sizes.iter().map(|s| s.duration_ms).fold(0.0, f64::max);
        let score = |s: &SizeResult| match strategy {
            Strategy::Cost => s.cost_arm64,
            Strategy::Speed => s.duration_ms,
            Strategy::Balanced(w) => {
                w * s.cost_arm64 / max_cost + (1.0 - w) * s.duration_ms / max_duration
            }
        };
        let mut sizes: Vec<&SizeResult> = self.sizes.iter().collect();
        sizes.sort_by_key(|s| s.memory_mb);
        sizes
            .into_iter()
            .min_by(|a, b| score(a).total_cmp(&score(b)))
    }

    /// The table, the recommendations and what they mean, for the terminal.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let kind = if self.options.cold_starts {
            "cold starts only"
        } else {
            "warm, after the first"
        };
        let _ = writeln!(
            out,
            "{}: {} invocations per size ({kind}), the fastest and slowest {:.0} % discarded",
            self.function,
            self.options.invocations,
            self.options.discard * 100.0
        );
        let _ = writeln!(out, "{}", self.cpu);
        let _ = writeln!(
            out,
            "\n  {:>7} {:>6} {:>10} {:>7} {:>8} {:>14} {:>14} {:>8} {:>12} {:>9}",
            "memory",
            "cores",
            "duration",
            "billed",
            "init p50",
            "$/M arm64",
            "$/M x86_64",
            "request",
            "memory used",
            "CPU/inv"
        );
        for s in &self.sizes {
            let mut inits = s.init_ms.clone();
            let _ = writeln!(
                out,
                "  {:>4} MB {:>6.3} {:>7.2} ms {:>4} ms {:>8} {:>14.4} {:>14.4} {:>7.0}% {:>12} {:>9}{}",
                s.memory_mb,
                s.cores,
                s.duration_ms,
                s.billed_ms,
                quantile(&mut inits, 0.5).map_or("-".into(), |v| format!("{v:.1} ms")),
                s.cost_arm64 * 1e6,
                s.cost_x86_64 * 1e6,
                s.request_share() * 100.0,
                s.max_memory_mb.map_or("-".into(), |m| format!(
                    "{m} MB {:.0}%",
                    m as f64 / f64::from(s.memory_mb) * 100.0
                )),
                s.cpu_ms.map_or("-".into(), |c| format!("{c:.2} ms")),
                if s.errors > 0 {
                    format!("  ({} errors)", s.errors)
                } else {
                    String::new()
                }
            );
        }
        let _ = writeln!(
            out,
            "\n  $/M: a million invocations at that size, the request ($0.20 a million) included; \
             \"request\" is its share. Power Tuning's cost leaves the request out."
        );
        for strategy in [Strategy::Cost, Strategy::Speed, Strategy::Balanced(0.5)] {
            if let Some(pick) = self.recommend(strategy) {
                let _ = writeln!(
                    out,
                    "  {:<15} {} MB: {:.2} ms, ${:.4} a million (arm64)",
                    strategy.name(),
                    pick.memory_mb,
                    pick.duration_ms,
                    pick.cost_arm64 * 1e6
                );
            }
        }
        out
    }

    /// A self-contained page: duration and cost against memory.
    pub fn html(&self) -> String {
        let mut page = String::new();
        let _ = write!(
            page,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tuning {f}</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}}\
             pre{{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px}}</style></head><body>\
             <h1>Memory tuning: {f}</h1><p>{cpu}</p>{svg}<pre>{text}</pre></body></html>",
            f = esc(&self.function),
            cpu = esc(&self.cpu),
            svg = self.svg(),
            text = esc(&self.text()),
        );
        page
    }

    /// Duration (left axis) and cost per million (right axis) at each size.
    pub fn svg(&self) -> String {
        let (w, h, left, right, top, bottom) = (900.0, 420.0, 70.0, 90.0, 30.0, 60.0);
        let plot_w = w - left - right;
        let plot_h = h - top - bottom;
        let n = self.sizes.len().max(1);
        let x = |i: usize| left + plot_w * (i as f64 + 0.5) / n as f64;
        let max_d = nice(self.sizes.iter().map(|s| s.duration_ms).fold(0.0, f64::max));
        let max_c = nice(
            self.sizes
                .iter()
                .map(|s| s.cost_arm64 * 1e6)
                .fold(0.0, f64::max),
        );
        let yd = |v: f64| top + plot_h * (1.0 - v / max_d);
        let yc = |v: f64| top + plot_h * (1.0 - v / max_c);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" role=\"img\" \
             aria-label=\"Duration and cost against memory size\" font-size=\"13\">"
        );
        for k in 0..=5 {
            let f = f64::from(k) / 5.0;
            let y = top + plot_h * (1.0 - f);
            let _ = write!(
                svg,
                "<line x1=\"{left}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#e4e4e4\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#1f6fb2\">{:.1} ms</text>\
                 <text x=\"{}\" y=\"{}\" fill=\"#c0392b\">${:.3}</text>",
                left + plot_w,
                left - 6.0,
                y + 4.0,
                max_d * f,
                left + plot_w + 6.0,
                y + 4.0,
                max_c * f
            );
        }
        let mut duration = String::new();
        let mut cost = String::new();
        for (i, s) in self.sizes.iter().enumerate() {
            let _ = write!(duration, "{:.1},{:.1} ", x(i), yd(s.duration_ms));
            let _ = write!(cost, "{:.1},{:.1} ", x(i), yc(s.cost_arm64 * 1e6));
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{} MB</text>\
                 <text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{:.2} cores</text>\
                 <circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#1f6fb2\"/>\
                 <circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#c0392b\"/>",
                x(i),
                top + plot_h + 20.0,
                s.memory_mb,
                x(i),
                top + plot_h + 38.0,
                s.cores,
                x(i),
                yd(s.duration_ms),
                x(i),
                yc(s.cost_arm64 * 1e6),
            );
        }
        let _ = write!(
            svg,
            "<polyline points=\"{duration}\" fill=\"none\" stroke=\"#1f6fb2\" stroke-width=\"2.5\"/>\
             <polyline points=\"{cost}\" fill=\"none\" stroke=\"#c0392b\" stroke-width=\"2.5\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{left}\" y=\"18\" fill=\"#1f6fb2\">duration (mean, extremes discarded)</text>\
             <text x=\"{}\" y=\"18\" text-anchor=\"end\" fill=\"#c0392b\">cost of a million invocations, arm64, requests included (dashed)</text>\
             </svg>",
            w - 10.0
        );
        svg
    }
}

fn nice(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= step * magnitude {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Runs `target`'s reference bootstrap (the binary it names: the learner's
/// or the solution's) at each memory size of `options`.
pub async fn run(
    target: &Target,
    workload: &Workload,
    options: &TuneOptions,
    progress: bool,
) -> Result<TuneReport, String> {
    let limits = Arc::new(CpuLimits::detect());
    let mut sizes = Vec::new();
    for (k, &memory_mb) in options.memory_mb.iter().enumerate() {
        if progress {
            eprintln!("  {memory_mb} MB: {}", limits.describe(memory_mb));
        }
        let mut config = base_config(
            target,
            target.reference.clone(),
            "tune",
            k,
            1_000_000,
            DatabaseSpec::Default,
        )?;
        config.memory_mb = memory_mb;
        config.cpu = Some(limits.clone());
        config.fleet = FleetOptions {
            single_use: options.cold_starts,
            ..FleetOptions::default()
        };
        let lab = Lab::start(config, Output::Quiet).await?;
        let mut errors = 0;
        for seq in 0..options.invocations {
            let ok = match workload {
                Workload::Http(spec) => {
                    let mut request = crate::apigw::HttpRequest::new(spec.method, spec.path);
                    if let Some(body) = spec.body {
                        request = request
                            .header("content-type", "application/json")
                            .body(body.replace("{seq}", &seq.to_string()));
                    }
                    let status = lab.send(request).await.status;
                    status < 500
                }
                Workload::Event(event) => lab
                    .fleet
                    .invoke(event.clone())
                    .await
                    .is_ok_and(|i| !i.is_error()),
            };
            errors += usize::from(!ok);
        }
        let snapshot = lab.recorder.snapshot();
        lab.stop().await;
        let durations_ms: Vec<f64> = snapshot.invocations.iter().map(|i| i.duration_ms).collect();
        let init_ms: Vec<f64> = snapshot
            .invocations
            .iter()
            .filter_map(|i| i.init_ms)
            .collect();
        let duration_ms = trimmed_mean(&durations_ms, options.discard)
            .ok_or_else(|| format!("no invocation at {memory_mb} MB was measured"))?;
        let billed_ms = duration_ms.ceil().max(1.0) as u64;
        // CPU per warm invocation: what one environment's CPU time grew by.
        let cpu: Vec<f64> = snapshot
            .invocations
            .iter()
            .filter(|i| i.environment == snapshot.invocations[0].environment)
            .filter_map(|i| i.cpu_ms)
            .collect();
        let cpu_ms = (!options.cold_starts && cpu.len() > 1)
            .then(|| (cpu[cpu.len() - 1] - cpu[0]) / (cpu.len() - 1) as f64);
        sizes.push(SizeResult {
            memory_mb,
            cores: limits.share(memory_mb).cores(),
            durations_ms,
            init_ms,
            duration_ms,
            billed_ms,
            cost_arm64: invocation_cost(memory_mb, billed_ms, prices::LAMBDA_GB_S_ARM64),
            cost_x86_64: invocation_cost(memory_mb, billed_ms, prices::LAMBDA_GB_S_X86_64),
            max_memory_mb: snapshot
                .invocations
                .iter()
                .filter_map(|i| i.max_memory_mb)
                .max(),
            cpu_ms,
            errors,
        });
        if progress {
            eprintln!("  {memory_mb} MB: {duration_ms:.2} ms");
        }
    }
    let cpu = if limits.is_enforced() {
        format!(
            "{}, and so on in proportion; this machine has {} cores",
            limits.describe(128),
            limits.machine_cores()
        )
    } else {
        limits.describe(128)
    };
    Ok(TuneReport {
        function: target.function_name.clone(),
        options: options.clone(),
        cpu,
        enforced: limits.is_enforced(),
        sizes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(memory_mb: u32, duration_ms: f64) -> SizeResult {
        let billed_ms = duration_ms.ceil() as u64;
        SizeResult {
            memory_mb,
            cores: 0.0,
            durations_ms: vec![],
            init_ms: vec![],
            duration_ms,
            billed_ms,
            cost_arm64: invocation_cost(memory_mb, billed_ms, prices::LAMBDA_GB_S_ARM64),
            cost_x86_64: 0.0,
            max_memory_mb: None,
            cpu_ms: None,
            errors: 0,
        }
    }

    #[test]
    fn the_trimmed_mean_leaves_out_a_fifth_at_each_end() {
        let samples: Vec<f64> = (1..=10).map(f64::from).collect();
        // 1, 2 and 9, 10 go.
        assert_eq!(trimmed_mean(&samples, 0.2), Some(5.5));
        assert_eq!(trimmed_mean(&[100.0, 1.0, 1.0, 1.0, 1.0], 0.2), Some(1.0));
        assert_eq!(trimmed_mean(&[], 0.2), None);
    }

    fn report(sizes: Vec<SizeResult>) -> TuneReport {
        TuneReport {
            function: "f".into(),
            options: TuneOptions::default(),
            cpu: String::new(),
            enforced: true,
            sizes,
        }
    }

    #[test]
    fn each_strategy_picks_as_power_tuning_does() {
        // Short of CPU at 128 MB, a little faster still past 1,769 MB.
        let report = report(vec![
            size(128, 20.0),
            size(256, 10.5),
            size(512, 5.6),
            size(1024, 3.2),
            size(1769, 2.4),
            size(3008, 2.3),
        ]);
        let pick = |s| report.recommend(s).unwrap().memory_mb;
        assert_eq!(
            pick(Strategy::Cost),
            128,
            "the request dominates: the smallest bill"
        );
        assert_eq!(pick(Strategy::Speed), 3008);
        assert_eq!(pick(Strategy::Balanced(0.5)), 1024);
        assert!(
            report.text().contains("balanced (0.5)  1024 MB"),
            "{}",
            report.text()
        );
        assert!(report.html().contains("<svg"));
    }

    #[test]
    fn of_equals_the_smallest_size_wins() {
        let report = report(vec![size(3008, 2.0), size(1769, 2.0), size(1024, 3.5)]);
        assert_eq!(report.recommend(Strategy::Speed).unwrap().memory_mb, 1769);
    }

    #[test]
    fn the_request_is_most_of_a_short_invocation() {
        let cost = invocation_cost(128, 2, prices::LAMBDA_GB_S_X86_64);
        assert!((cost - (0.20e-6 + 0.002 * 0.125 * 0.000_016_666_7)).abs() < 1e-15);
        assert!(prices::LAMBDA_REQUEST / cost > 0.97);
    }
}
