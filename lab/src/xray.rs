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
