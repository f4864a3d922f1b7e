//! The lab's X-Ray: a collector of trace segments, as the X-Ray daemon
//! receives them, and the traces they assemble into.
//!
//! A function sends its segments to `AWS_XRAY_DAEMON_ADDRESS` over UDP,
//! one document per datagram: the header line `{"format": "json",
//! "version": 1}`, a newline, then a segment (or a subsegment sent on its
//! own, with `"type": "subsegment"` and its `parent_id`). The lab records
//! its own segments beside them (API Gateway's, Lambda's), so that one
//! request's trace reads top to bottom: the gateway, Lambda, the
//! function's INIT and handler, and what the handler called.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The largest datagram the daemon accepts: 64 KB.
pub const MAX_DATAGRAM_BYTES: usize = 64 * 1024;

/// What the collector holds: every document received, in order.
#[derive(Default)]
struct Received {
    documents: Vec<Value>,
}

/// A UDP collector on 127.0.0.1, listening until dropped.
pub struct Collector {
    addr: SocketAddr,
    received: Arc<Mutex<Received>>,
    rejected: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Collector {
    pub async fn start() -> std::io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let received = Arc::new(Mutex::new(Received::default()));
        let rejected = Arc::new(AtomicU64::new(0));
        let (r, x) = (received.clone(), rejected.clone());
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM_BYTES + 1];
            loop {
                let Ok((n, _)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                match parse_datagram(&buf[..n]) {
                    Some(doc) => r.lock().unwrap().documents.push(doc),
                    None => {
                        x.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        Ok(Collector {
            addr,
            received,
            rejected,
            task,
        })
    }

    /// The value of `AWS_XRAY_DAEMON_ADDRESS` for the functions.
    pub fn daemon_address(&self) -> String {
        self.addr.to_string()
    }

    /// A segment the lab itself records (the gateway's, Lambda's).
    pub fn record(&self, segment: Value) {
        self.received.lock().unwrap().documents.push(segment);
    }

    /// Every document received so far, as sent.
    pub fn documents(&self) -> Vec<Value> {
        self.received.lock().unwrap().documents.clone()
    }

    /// Datagrams that were not a header line and a JSON document.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// The traces assembled so far, oldest first.
    pub fn traces(&self) -> Vec<Trace> {
        assemble(&self.documents())
    }
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The daemon's framing: the header line, then one JSON document.
pub fn parse_datagram(datagram: &[u8]) -> Option<Value> {
    if datagram.len() > MAX_DATAGRAM_BYTES {
        return None;
    }
    let newline = datagram.iter().position(|b| *b == b'\n')?;
    let header: Value = serde_json::from_slice(&datagram[..newline]).ok()?;
    if header.get("format")? != "json" || header.get("version")? != 1 {
        return None;
    }
    let doc: Value = serde_json::from_slice(&datagram[newline + 1..]).ok()?;
    doc.get("id")?.as_str()?;
    doc.get("trace_id")?.as_str()?;
    Some(doc)
}

/// An `X-Amzn-Trace-Id` header: the trace, the segment that made the
/// call (the parent of the callee's segment) and the sampling decision.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceHeader {
    /// `1-<epoch seconds, 8 hex>-<96 bits, 24 hex>`.
    pub root: String,
    pub parent: Option<String>,
    pub sampled: bool,
}

impl TraceHeader {
    /// A new trace, started now.
    pub fn new_root(sampled: bool) -> TraceHeader {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let random = crate::ids::random_uuid().simple().to_string();
        TraceHeader {
            root: format!("1-{secs:08x}-{}", &random[..24]),
            parent: None,
            sampled,
        }
    }

    /// The same trace, called from the segment `parent`.
    pub fn child_of(&self, parent: &str) -> TraceHeader {
        TraceHeader {
            parent: Some(parent.to_string()),
            ..self.clone()
        }
    }

    /// `Root=...;Parent=...;Sampled=1`; fields it does not know are ignored.
    pub fn parse(header: &str) -> Option<TraceHeader> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = false;
        for part in header.split(';') {
            match part.trim().split_once('=') {
                Some(("Root", v)) => root = Some(v.to_string()),
                Some(("Parent", v)) => parent = Some(v.to_string()),
                Some(("Sampled", v)) => sampled = v == "1",
                _ => {}
            }
        }
        Some(TraceHeader {
            root: root?,
            parent,
            sampled,
        })
    }
}

impl std::fmt::Display for TraceHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Root={}", self.root)?;
        if let Some(parent) = &self.parent {
            write!(f, ";Parent={parent}")?;
        }
        write!(f, ";Sampled={}", u8::from(self.sampled))
    }
}

/// A segment id: 64 bits, 16 hex digits.
pub fn new_id() -> String {
    crate::ids::random_uuid().simple().to_string()[..16].to_string()
}

/// A time as segments write it: seconds since the epoch, with fractions.
pub fn epoch_seconds(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// One segment or subsegment, with the ones under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The document without its `subsegments`.
    pub doc: Value,
    pub children: Vec<Span>,
}

impl Span {
    pub fn name(&self) -> &str {
        self.doc["name"].as_str().unwrap_or("?")
    }

    pub fn start(&self) -> f64 {
        self.doc["start_time"].as_f64().unwrap_or(0.0)
    }

    /// Seconds from start to end; `None` while in progress.
    pub fn duration(&self) -> Option<f64> {
        Some(self.doc["end_time"].as_f64()? - self.start())
    }

    /// Every span of this tree, depth first, with its depth.
    pub fn walk(&self) -> Vec<(usize, &Span)> {
        let mut out = Vec::new();
        fn go<'a>(span: &'a Span, depth: usize, out: &mut Vec<(usize, &'a Span)>) {
            out.push((depth, span));
            for child in &span.children {
                go(child, depth + 1, out);
            }
        }
        go(self, 0, &mut out);
        out
    }
}

/// One trace: its id and its root spans, by start time.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub id: String,
    pub roots: Vec<Span>,
}

impl Trace {
    pub fn start(&self) -> f64 {
        self.roots
            .iter()
            .map(Span::start)
            .fold(f64::INFINITY, f64::min)
    }

    /// Every span, depth first.
    pub fn spans(&self) -> Vec<(usize, &Span)> {
        self.roots.iter().flat_map(Span::walk).collect()
    }

    /// The trace as an indented tree, a line per span, with its offset
    /// from the trace's start and its duration.
    pub fn render(&self) -> String {
        let t0 = self.start();
        let mut out = format!("trace {}\n", self.id);
        for (depth, span) in self.spans() {
            let kind = span.doc["namespace"]
                .as_str()
                .map(|n| format!(" [{n}]"))
                .unwrap_or_default();
            let status = span.doc["http"]["response"]["status"]
                .as_u64()
                .map(|s| format!(" {s}"))
                .unwrap_or_default();
            let flag = if span.doc["fault"] == true {
                " fault"
            } else if span.doc["error"] == true {
                " error"
            } else {
                ""
            };
            let duration = match span.duration() {
                Some(d) => format_ms(d),
                None => "in progress".into(),
            };
            out.push_str(&format!(
                "  {:>9} {:>10}  {}{}{kind}{status}{flag}\n",
                format!("+{}", format_ms(span.start() - t0)),
                duration,
                "  ".repeat(depth),
                span.name(),
            ));
        }
        out
    }
}

impl Trace {
    /// From the first span's start to the last one's end, in seconds.
    pub fn duration(&self) -> f64 {
        let end = self
            .spans()
            .iter()
            .filter_map(|(_, s)| s.doc["end_time"].as_f64())
            .fold(f64::NEG_INFINITY, f64::max);
        (end - self.start()).max(0.0)
    }

    /// The trace as documents again, one per span, each naming its trace
    /// and its parent: what [`assemble`] reads back into this trace.
    pub fn documents(&self) -> Vec<Value> {
        fn go(span: &Span, trace: &str, parent: Option<&str>, out: &mut Vec<Value>) {
            let mut doc = span.doc.clone();
            doc["trace_id"] = Value::from(trace);
            if let Some(parent) = parent {
                doc["parent_id"] = Value::from(parent);
            }
            let id = doc["id"].as_str().unwrap_or_default().to_string();
            out.push(doc);
            for child in &span.children {
                go(child, trace, Some(&id), out);
            }
        }
        let mut out = Vec::new();
        for root in &self.roots {
            go(root, &self.id, None, &mut out);
        }
        out
    }

    /// Whether Lambda recorded an Initialization in it: a cold start.
    pub fn is_cold(&self) -> bool {
        self.spans()
            .iter()
            .any(|(_, s)| s.name() == "Initialization")
    }

    /// The trace as a waterfall: a bar per span, placed on the trace's
    /// time axis, named and timed.
    pub fn waterfall_svg(&self, title: &str) -> String {
        let spans = self.spans();
        let (row, left, width) = (22.0, 250.0, 560.0);
        let height = 40.0 + row * spans.len() as f64 + 24.0;
        let total = self.duration().max(1e-6);
        let t0 = self.start();
        let mut svg = format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {height}" width="{w}" height="{height}" role="img"><title>{title}</title><text class="title" x="8" y="20">{title}</text>"##,
            w = left + width + 90.0,
            title = escape(title),
        );
        for (i, (depth, span)) in spans.iter().enumerate() {
            let y = 34.0 + row * i as f64;
            let x = left + (span.start() - t0) / total * width;
            let w = (span.duration().unwrap_or(0.0) / total * width).max(1.5);
            let colour = match (span.doc["origin"].as_str(), span.doc["namespace"].as_str()) {
                (Some(o), _) if o.starts_with("AWS::ApiGateway") => "#8e6cbd",
                (Some(_), _) => "#e07b39",
                (None, Some("aws")) => "#d4a017",
                (None, Some("remote")) => "#2f81f7",
                _ if matches!(span.name(), "Initialization" | "Invocation" | "Overhead") => {
                    "#f0a76b"
                }
                _ => "#3fb950",
            };
            let flag = if span.doc["fault"] == true {
                " fault"
            } else {
                ""
            };
            svg.push_str(&format!(
                r##"<text class="tick" x="{tx}" y="{ty}">{name}{flag}</text><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h}" rx="2" fill="{colour}"/><text class="tick" x="{dx:.1}" y="{ty}">{d}</text>"##,
                tx = 8.0 + 12.0 * *depth as f64,
                ty = y + 13.0,
                name = escape(&label(span)),
                h = row - 6.0,
                dx = (x + w + 4.0).min(left + width + 4.0),
                d = span.duration().map(format_ms).unwrap_or_else(|| "…".into()),
            ));
        }
        let axis_y = 34.0 + row * spans.len() as f64 + 14.0;
        svg.push_str(&format!(
            r##"<text class="tick" x="{left}" y="{axis_y}">0</text><text class="tick" x="{end}" y="{axis_y}" text-anchor="end">{total}</text></svg>"##,
            end = left + width,
            total = format_ms(total),
        ));
        svg
    }
}

/// A span's name for a reader: the SQL statement's first words, the AWS
/// operation, the name otherwise.
pub fn label(span: &Span) -> String {
    let doc = &span.doc;
    match doc["origin"].as_str() {
        Some("AWS::ApiGateway::Stage") => return format!("API Gateway {}", span.name()),
        Some("AWS::Lambda") => return format!("Lambda {}", span.name()),
        Some("AWS::Lambda::Function") => return format!("function {}", span.name()),
        _ => {}
    }
    if let Some(query) = doc["sql"]["sanitized_query"].as_str() {
        let words: Vec<&str> = query.split_whitespace().take(3).collect();
        return format!("{}: {}", span.name(), words.join(" "));
    }
    if let Some(operation) = doc["aws"]["operation"].as_str() {
        return format!("{} {operation}", span.name());
    }
    span.name().to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What a set of traces called, edge by edge: from whom to what, how
/// many times, and how long it took on average. The service map's data.
pub fn service_map(traces: &[Trace]) -> Vec<Edge> {
    let mut edges: BTreeMap<(String, String), (u64, f64)> = BTreeMap::new();
    for trace in traces {
        for root in &trace.roots {
            walk_edges(root, None, &mut edges);
        }
    }
    edges
        .into_iter()
        .map(|((from, to), (calls, total))| Edge {
            from,
            to,
            calls,
            mean_ms: total / calls.max(1) as f64 * 1000.0,
        })
        .collect()
}

/// The service map as a picture: each node once, left to right in the
/// order calls reach it, an arrow per edge with its calls and mean time.
pub fn service_map_svg(edges: &[Edge]) -> String {
    // A node's column: one past the column of whoever calls it.
    let mut column: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..edges.len() + 1 {
        for edge in edges {
            let from = *column.entry(&edge.from).or_insert(0);
            let to = column.entry(&edge.to).or_insert(0);
            *to = (*to).max(from + 1);
        }
    }
    let columns = column.values().copied().max().map_or(0, |c| c + 1);
    let mut rows: Vec<Vec<&str>> = vec![Vec::new(); columns];
    for (name, c) in &column {
        rows[*c].push(name);
    }
    let (box_w, box_h, gap_x, gap_y) = (210.0, 44.0, 120.0, 26.0);
    let tallest = rows.iter().map(Vec::len).max().unwrap_or(1) as f64;
    let height = 40.0 + tallest * (box_h + gap_y);
    let width = 20.0 + columns as f64 * (box_w + gap_x);
    let mut at: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (c, names) in rows.iter().enumerate() {
        let offset = (tallest - names.len() as f64) * (box_h + gap_y) / 2.0;
        for (r, name) in names.iter().enumerate() {
            let x = 10.0 + c as f64 * (box_w + gap_x);
            let y = 36.0 + offset + r as f64 * (box_h + gap_y);
            at.insert(name, (x, y));
        }
    }
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img"><title>Service map</title><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs><text class="title" x="8" y="20">Service map: who called whom</text>"##
    );
    for edge in edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) =
            (at.get(edge.from.as_str()), at.get(edge.to.as_str()))
        else {
            continue;
        };
        let (ax, ay, bx, by) = (x1 + box_w, y1 + box_h / 2.0, x2, y2 + box_h / 2.0);
        svg.push_str(&format!(
            r##"<line x1="{ax}" y1="{ay}" x2="{bx}" y2="{by}" stroke="#57606a" stroke-width="1.5" marker-end="url(#arrow)"/><text class="tick" x="{tx}" y="{ty}" text-anchor="middle">{calls} · {mean:.2} ms</text>"##,
            tx = (ax + bx) / 2.0,
            ty = (ay + by) / 2.0 - 5.0,
            calls = edge.calls,
            mean = edge.mean_ms,
        ));
    }
    for (name, (x, y)) in &at {
        svg.push_str(&format!(
            r##"<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6" fill="#f6f8fa" stroke="#8c959f"/><text class="legend" x="{tx}" y="{ty}" text-anchor="middle">{name}</text>"##,
            tx = x + box_w / 2.0,
            ty = y + box_h / 2.0 + 4.0,
            name = escape(name),
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// One edge of the service map.
#[derive(Debug, Clone, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub calls: u64,
    pub mean_ms: f64,
}

/// The node a span stands for on the map: a segment (the gateway, the
/// function) or a downstream call (`aws` and `remote` subsegments).
fn node(span: &Span) -> Option<String> {
    let doc = &span.doc;
    match doc["origin"].as_str() {
        Some("AWS::ApiGateway::Stage") => Some(format!("API Gateway {}", span.name())),
        Some("AWS::Lambda") => Some(format!("Lambda {}", span.name())),
        Some(_) => None,
        None if doc["namespace"].is_string() => Some(span.name().to_string()),
        None => None,
    }
}

fn walk_edges(
    span: &Span,
    above: Option<&str>,
    edges: &mut BTreeMap<(String, String), (u64, f64)>,
) {
    let me = node(span);
    if let (Some(from), Some(to)) = (above, me.as_deref())
        && from != to
    {
        let entry = edges.entry((from.to_string(), to.to_string())).or_default();
        entry.0 += 1;
        entry.1 += span.duration().unwrap_or(0.0);
    }
    let next = me.as_deref().or(above);
    for child in &span.children {
        walk_edges(child, next, edges);
    }
}

/// Where the time of the slowest traces went: for the traces at or above
/// the `q` quantile of duration, the mean time per span label, largest
/// first. Lambda's own Invocation and the segments around it are left
/// out: they contain the rest.
pub fn where_time_went(traces: &[Trace], q: f64) -> (usize, Vec<(String, f64)>) {
    let mut durations: Vec<f64> = traces.iter().map(Trace::duration).collect();
    durations.sort_by(f64::total_cmp);
    if durations.is_empty() {
        return (0, Vec::new());
    }
    let cut = durations[((durations.len() - 1) as f64 * q).round() as usize];
    let slow: Vec<&Trace> = traces.iter().filter(|t| t.duration() >= cut).collect();
    let mut by: BTreeMap<String, f64> = BTreeMap::new();
    for trace in &slow {
        for (_, span) in trace.spans() {
            if span.doc["origin"].is_string() || matches!(span.name(), "Invocation" | "Overhead") {
                continue;
            }
            let key = match node(span) {
                Some(n) => n,
                None => span.name().to_string(),
            };
            *by.entry(key).or_default() += span.duration().unwrap_or(0.0);
        }
    }
    let n = slow.len() as f64;
    let mut out: Vec<(String, f64)> = by.into_iter().map(|(k, v)| (k, v / n * 1000.0)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    (slow.len(), out)
}

fn format_ms(seconds: f64) -> String {
    let ms = seconds * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// Flattens every document and its embedded subsegments, then links each
/// span to its parent by `parent_id`, across documents: a subsegment sent
/// on its own finds the segment it belongs to.
pub fn assemble(documents: &[Value]) -> Vec<Trace> {
    struct Flat {
        trace: String,
        parent: Option<String>,
        doc: Value,
    }
    let mut flat: Vec<Flat> = Vec::new();
    fn flatten(doc: &Value, trace: &str, parent: Option<String>, flat: &mut Vec<Flat>) {
        let mut own: Map<String, Value> = doc.as_object().cloned().unwrap_or_default();
        let children = own.remove("subsegments");
        let id = own
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let parent = own
            .get("parent_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(parent);
        flat.push(Flat {
            trace: trace.to_string(),
            parent,
            doc: Value::Object(own),
        });
        if let Some(Value::Array(children)) = children {
            for child in &children {
                flatten(child, trace, Some(id.clone()), flat);
            }
        }
    }
    for doc in documents {
        let trace = doc["trace_id"].as_str().unwrap_or_default();
        flatten(doc, trace, None, &mut flat);
    }
    // A document sent again (in progress, then complete) replaces the first.
    let mut latest: HashMap<(String, String), usize> = HashMap::new();
    for (i, f) in flat.iter().enumerate() {
        let id = f.doc["id"].as_str().unwrap_or_default().to_string();
        latest.insert((f.trace.clone(), id), i);
    }
    let mut by_trace: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, f) in flat.iter().enumerate() {
        let id = f.doc["id"].as_str().unwrap_or_default().to_string();
        if latest.get(&(f.trace.clone(), id)) == Some(&i) {
            by_trace.entry(f.trace.clone()).or_default().push(i);
        }
    }
    let mut traces: Vec<Trace> = by_trace
        .into_iter()
        .map(|(trace, members)| {
            let ids: HashMap<&str, usize> = members
                .iter()
                .map(|&i| (flat[i].doc["id"].as_str().unwrap_or_default(), i))
                .collect();
            let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
            let mut roots = Vec::new();
            for &i in &members {
                match flat[i].parent.as_deref().and_then(|p| ids.get(p)) {
                    Some(&p) if p != i => children.entry(p).or_default().push(i),
                    _ => roots.push(i),
                }
            }
            fn build(
                i: usize,
                flat: &[Flat],
                children: &HashMap<usize, Vec<usize>>,
                depth: usize,
            ) -> Span {
                let mut kids: Vec<Span> = match children.get(&i) {
                    Some(list) if depth < 64 => list
                        .iter()
                        .map(|&c| build(c, flat, children, depth + 1))
                        .collect(),
                    _ => Vec::new(),
                };
                kids.sort_by(|a, b| a.start().total_cmp(&b.start()));
                Span {
                    doc: flat[i].doc.clone(),
                    children: kids,
                }
            }
            let mut roots: Vec<Span> = roots
                .into_iter()
                .map(|i| build(i, &flat, &children, 0))
                .collect();
            roots.sort_by(|a, b| a.start().total_cmp(&b.start()));
            Trace { id: trace, roots }
        })
        .collect();
    traces.sort_by(|a, b| a.start().total_cmp(&b.start()));
    traces
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TRACE: &str = "1-6751a2b0-0123456789abcdef01234567";

    #[test]
    fn the_daemon_framing_is_a_header_line_then_a_document() {
        let doc = json!({ "name": "f", "id": "a1", "trace_id": TRACE, "start_time": 1.0, "end_time": 2.0 });
        let datagram = format!("{{\"format\": \"json\", \"version\": 1}}\n{doc}");
        assert_eq!(parse_datagram(datagram.as_bytes()), Some(doc.clone()));
        assert_eq!(
            parse_datagram(doc.to_string().as_bytes()),
            None,
            "no header"
        );
        let wrong = format!("{{\"format\": \"json\", \"version\": 2}}\n{doc}");
        assert_eq!(parse_datagram(wrong.as_bytes()), None, "another version");
    }

    #[test]
    fn subsegments_sent_apart_join_their_segment() {
        let docs = vec![
            json!({ "name": "gateway", "id": "g", "trace_id": TRACE, "start_time": 10.0, "end_time": 10.010 }),
            json!({ "name": "function", "id": "f", "parent_id": "g", "trace_id": TRACE,
                    "start_time": 10.001, "end_time": 10.009,
                    "subsegments": [{ "name": "handler", "id": "h", "start_time": 10.002, "end_time": 10.008 }] }),
            json!({ "type": "subsegment", "name": "SELECT", "namespace": "sql", "id": "s", "parent_id": "h",
                    "trace_id": TRACE, "start_time": 10.003, "end_time": 10.004 }),
        ];
        let traces = assemble(&docs);
        assert_eq!(traces.len(), 1);
        let names: Vec<(usize, &str)> = traces[0]
            .spans()
            .into_iter()
            .map(|(d, s)| (d, s.name()))
            .collect();
        assert_eq!(
            names,
            [
                (0, "gateway"),
                (1, "function"),
                (2, "handler"),
                (3, "SELECT")
            ]
        );
        let text = traces[0].render();
        assert!(text.contains("      SELECT [sql]"), "{text}");
        assert!(text.contains("+3.00 ms"), "{text}");
    }

    fn a_request(trace: &str, sql_ms: f64) -> Vec<Value> {
        let end = 10.010 + sql_ms / 1000.0;
        vec![
            json!({ "name": "api/prod", "origin": "AWS::ApiGateway::Stage", "id": "g", "trace_id": trace,
                    "start_time": 10.0, "end_time": end }),
            json!({ "name": "f", "origin": "AWS::Lambda", "id": "l", "parent_id": "g", "trace_id": trace,
                    "start_time": 10.001, "end_time": end }),
            json!({ "name": "f", "origin": "AWS::Lambda::Function", "id": "f", "parent_id": "l", "trace_id": trace,
                    "start_time": 10.001, "end_time": end,
                    "subsegments": [{ "name": "Invocation", "id": "i", "start_time": 10.001, "end_time": end }] }),
            json!({ "type": "subsegment", "name": "Handler", "id": "h", "parent_id": "f", "trace_id": trace,
                    "start_time": 10.002, "end_time": end }),
            json!({ "type": "subsegment", "name": "postgresql", "namespace": "remote", "id": "s", "parent_id": "h",
                    "trace_id": trace, "start_time": 10.003, "end_time": 10.003 + sql_ms / 1000.0,
                    "sql": { "sanitized_query": "SELECT seats_left FROM events WHERE event_id = $1" } }),
        ]
    }

    #[test]
    fn the_service_map_counts_calls_between_nodes() {
        let mut docs = a_request("1-6751a2b0-000000000000000000000001", 1.0);
        docs.extend(a_request("1-6751a2b0-000000000000000000000002", 3.0));
        let traces = assemble(&docs);
        let edges = service_map(&traces);
        let pairs: Vec<(&str, &str, u64)> = edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str(), e.calls))
            .collect();
        assert_eq!(
            pairs,
            [
                ("API Gateway api/prod", "Lambda f", 2),
                ("Lambda f", "postgresql", 2)
            ]
        );
        assert!((edges[1].mean_ms - 2.0).abs() < 1e-6, "{edges:?}");
        let (slow, spent) = where_time_went(&traces, 0.99);
        assert_eq!(slow, 1, "the slowest trace");
        assert_eq!(spent[0].0, "Handler");
        assert_eq!(spent[1].0, "postgresql");
        assert!((spent[1].1 - 3.0).abs() < 1e-6, "{spent:?}");
        assert_eq!(
            label(traces[0].spans()[5].1),
            "postgresql: SELECT seats_left FROM"
        );
        let again = assemble(&traces[1].documents());
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].render(), traces[1].render(), "documents read back");
        let svg = traces[1].waterfall_svg("a <warm> request");
        assert!(
            svg.contains("a &lt;warm&gt; request") && svg.matches("<rect").count() == 6,
            "{svg}"
        );
    }

    #[test]
    fn trace_headers_read_as_they_are_written() {
        let root = TraceHeader::new_root(true);
        assert!(
            root.root.starts_with("1-") && root.root.len() == 35,
            "{root}"
        );
        let child = root.child_of("53995c3f42cd8ad8");
        let text = child.to_string();
        assert_eq!(
            text,
            format!("Root={};Parent=53995c3f42cd8ad8;Sampled=1", root.root)
        );
        assert_eq!(TraceHeader::parse(&text), Some(child));
        let unsampled =
            TraceHeader::parse("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0;Lineage=a:1")
                .unwrap();
        assert!(!unsampled.sampled);
        assert_eq!(unsampled.parent, None);
        assert_eq!(
            TraceHeader::parse("Parent=53995c3f42cd8ad8"),
            None,
            "no root"
        );
        assert_eq!(new_id().len(), 16);
    }

    #[tokio::test]
    async fn the_collector_receives_over_udp() {
        let collector = Collector::start().await.unwrap();
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let doc = json!({ "name": "f", "id": "a1", "trace_id": TRACE, "start_time": 1.0, "end_time": 2.0 });
        let datagram = format!("{{\"format\": \"json\", \"version\": 1}}\n{doc}");
        socket
            .send_to(datagram.as_bytes(), collector.daemon_address())
            .await
            .unwrap();
        socket
            .send_to(b"not a segment", collector.daemon_address())
            .await
            .unwrap();
        for _ in 0..100 {
            if collector.documents().len() == 1 && collector.rejected() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(collector.documents(), vec![doc]);
        assert_eq!(collector.rejected(), 1);
    }
}
