//! Step 4.8: where each request's time goes, in X-Ray.
//!
//! The function now calls three things: Secrets Manager, the database,
//! and its own code. `tracing` spans say where the time went; the
//! OpenTelemetry SDK turns them into X-Ray segment documents and sends
//! them over UDP to `AWS_XRAY_DAEMON_ADDRESS`, which Lambda sets when the
//! function's tracing is active (the lab sets it to its collector).
//!
//! Three things are particular to Lambda:
//!
//! - The parent is the invocation's trace id, from the Runtime API's
//!   `Lambda-Runtime-Trace-Id` header (`Context::xray_trace_id`), not the
//!   `_X_AMZN_TRACE_ID` variable, which belongs to a process that serves
//!   one request at a time.
//! - INIT runs before any trace exists. Its spans are held until the first
//!   invocation, then sent under that invocation's trace: the cold start
//!   shows in the trace of the request that waited for it.
//! - Lambda freezes the environment as soon as the response is sent. A
//!   span still in the exporter's buffer then waits, frozen, until the next
//!   invocation or is lost with the environment. So the spans are flushed
//!   before the response leaves.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant, SystemTime};

use lambda_http::http::Response;
use lambda_http::tower::Service;
use lambda_http::{Request, RequestExt, tracing};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, TraceContextExt, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_aws::trace::XrayIdGenerator;
use opentelemetry_aws::trace::xray_propagator::span_context_from_str;
use opentelemetry_aws::xray_exporter::daemon_client::XrayDaemonClient;
use opentelemetry_aws::xray_exporter::{SegmentTranslator, XrayExporter};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SdkTracer, SdkTracerProvider, Span, SpanData, SpanProcessor,
};
use tracing::Instrument;
use tracing::field::{Field, Visit};
use tracing_opentelemetry::{OpenTelemetrySpanExt, get_otel_context};
use tracing_subscriber::filter::{LevelFilter, Targets, filter_fn};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, Registry};
use tracing_subscriber::util::SubscriberInitExt;

/// The target of the spans this crate sends to X-Ray. Only these reach the
/// exporter: the runtime's own span and every log line stay in the logs.
pub const TARGET: &str = "module_4::traces";

/// The attribute indexed as an X-Ray annotation, to filter traces by
/// (`annotation.faas_coldstart = true` in the console).
pub const COLD_START: &str = "faas.coldstart";

/// What the bootstrap keeps to trace invocations.
pub struct Xray {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    init: Arc<HeldUntilInvoked>,
}

static XRAY: OnceLock<Arc<Xray>> = OnceLock::new();

/// Installs the process's subscriber: JSON log lines as in module 1 and,
/// when `AWS_XRAY_DAEMON_ADDRESS` is set, spans to X-Ray.
pub fn install() -> Option<Arc<Xray>> {
    let level = log_level();
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        // sqlx's statements go to X-Ray, not to the log.
        .with_filter(
            Targets::new()
                .with_default(level)
                .with_target("sqlx::query", LevelFilter::OFF),
        );
    // Set by Lambda when the function's tracing is active: `ip:port`.
    let address = std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok();
    let xray = match address.as_deref().map(str::parse::<SocketAddr>) {
        None => Ok(None),
        Some(Ok(address)) => Xray::new(address).map(|x| Some(Arc::new(x))),
        Some(Err(e)) => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)),
    };
    let xray = match xray {
        Ok(Some(xray)) => xray,
        Ok(None) => {
            tracing_subscriber::registry().with(logs).init();
            return None;
        }
        Err(e) => {
            tracing_subscriber::registry().with(logs).init();
            tracing::warn!(address, error = %e, "tracing is off: no X-Ray daemon at this address");
            return None;
        }
    };
    let spans = tracing_opentelemetry::layer()
        .with_tracer(xray.tracer.clone())
        .with_filter(filter_fn(|meta| meta.is_span() && meta.target() == TARGET));
    // sqlx reports each statement as a DEBUG event once it has run.
    let statements =
        SqlStatements.with_filter(Targets::new().with_target("sqlx::query", LevelFilter::DEBUG));
    tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .with(statements)
        .init();
    let _ = XRAY.set(xray.clone());
    Some(xray)
}

fn log_level() -> LevelFilter {
    match std::env::var("AWS_LAMBDA_LOG_LEVEL") {
        Ok(name) if name.eq_ignore_ascii_case("FATAL") => LevelFilter::ERROR,
        Ok(name) => name.parse().unwrap_or(LevelFilter::INFO),
        Err(_) => LevelFilter::INFO,
    }
}

impl Xray {
    fn new(address: SocketAddr) -> std::io::Result<Xray> {
        // UDP: nothing answers, so a daemon that is not there yet is no
        // error; the segments are simply lost.
        let client = XrayDaemonClient::new(address)?;
        let translator = SegmentTranslator::new().with_indexed_attr(COLD_START.to_string());
        let exporter = XrayExporter::new(client).with_translator(translator);
        let init = Arc::new(HeldUntilInvoked {
            next: BatchSpanProcessor::builder(exporter).build(),
            held: Mutex::new(Some(Vec::new())),
        });
        let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "module-4".into());
        let provider = SdkTracerProvider::builder()
            .with_id_generator(XrayIdGenerator::default())
            .with_resource(Resource::builder().with_service_name(name).build())
            .with_span_processor(Shared(init.clone()))
            .build();
        let tracer = provider.tracer("module-4");
        Ok(Xray {
            provider,
            tracer,
            init,
        })
    }

    /// Sends every span that has ended. Blocks until the exporter has
    /// written them to the daemon's socket: a few hundred microseconds.
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!(error = %e, "could not flush the trace");
        }
    }
}

/// The span around INIT. Its children (the secret fetches) are held with
/// it until the first invocation gives them a trace.
pub fn init_span() -> tracing::Span {
    tracing::info_span!(target: TARGET, "Init", otel.kind = "internal")
}

/// A span around one part of INIT (`name`: "SDK client", "database",
/// "signing keys"), so that a cold start's trace shows where INIT's time
/// goes.
pub fn init_phase(name: &'static str) -> tracing::Span {
    tracing::info_span!(target: TARGET, "init phase", otel.name = name, otel.kind = "internal")
}

/// The span around one `GetSecretValue` call: an `aws` subsegment.
pub fn secret_span(id: &str, stage: &str) -> tracing::Span {
    tracing::info_span!(
        target: TARGET,
        "GetSecretValue",
        otel.kind = "client",
        rpc.system = "aws-api",
        rpc.service = "SecretsManager",
        rpc.method = "GetSecretValue",
        aws.secretsmanager.secret_id = id,
        aws.secretsmanager.version_stage = stage,
    )
}

/* ------------------------- INIT's spans, held ------------------------- */

/// A span processor that holds what ends before the first invocation and
/// passes the rest on.
#[derive(Debug)]
struct HeldUntilInvoked {
    next: BatchSpanProcessor,
    /// `Some` until the first invocation.
    held: Mutex<Option<Vec<SpanData>>>,
}

impl HeldUntilInvoked {
    /// Sends INIT's spans as part of the trace `parent` belongs to, with
    /// INIT's root span as the parent's child. Once: later calls do nothing.
    fn release(&self, parent: &SpanContext) {
        let Some(held) = self.held.lock().unwrap().take() else {
            return;
        };
        if !parent.is_sampled() {
            return;
        }
        for mut span in held {
            span.span_context = SpanContext::new(
                parent.trace_id(),
                span.span_context.span_id(),
                parent.trace_flags(),
                false,
                TraceState::default(),
            );
            if span.parent_span_id == SpanId::INVALID {
                span.parent_span_id = parent.span_id();
                span.parent_span_is_remote = true;
            }
            self.next.on_end(span);
        }
    }
}

#[derive(Debug)]
struct Shared(Arc<HeldUntilInvoked>);

impl SpanProcessor for Shared {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.0.next.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let mut held = self.0.held.lock().unwrap();
        match held.as_mut() {
            Some(held) => held.push(span),
            None => {
                drop(held);
                self.0.next.on_end(span);
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.next.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.next.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, _resource: &Resource) {}
}

/* ------------------------ SQL statements, as spans ------------------------ */

/// Each statement sqlx reports becomes a client span under the span that
/// ran it, timed by sqlx's own measure: the text as written, with `$1`
/// where a value goes, so no value a fan sent reaches the trace.
struct SqlStatements;

#[derive(Default)]
struct Statement {
    summary: String,
    text: String,
    elapsed: f64,
}

impl Visit for Statement {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.text = value.trim().to_string(),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed = value;
        }
    }

    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

/// The context of the nearest span around the current one that goes to
/// X-Ray: the handler's, say, not module 2's `request` span inside it.
/// The current span may have been entered on another thread (SQLite's
/// worker), so the walk follows the parents, not the thread's stack.
fn exported_parent() -> Option<Context> {
    let current = tracing::Span::current().id()?;
    tracing::dispatcher::get_default(|dispatch| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let span = registry
            .span(&current)?
            .scope()
            .find(|span| span.metadata().target() == TARGET)?;
        get_otel_context(&span.id(), dispatch)
    })
}

impl<S: tracing::Subscriber> Layer<S> for SqlStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: LayerContext<'_, S>) {
        let Some(xray) = XRAY.get() else { return };
        let Some(parent) = exported_parent() else {
            return;
        };
        if !parent.span().span_context().is_valid() {
            return;
        }
        let mut statement = Statement::default();
        event.record(&mut statement);
        // sqlx writes the text out only when it is longer than its summary.
        let text = if statement.text.is_empty() {
            statement.summary.clone()
        } else {
            statement.text
        };
        let end = SystemTime::now();
        let start = end - Duration::from_secs_f64(statement.elapsed.max(0.0));
        let mut span = xray
            .tracer
            .span_builder(db_system())
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes([
                KeyValue::new("db.system.name", db_system()),
                KeyValue::new("db.query.text", text),
            ])
            .start_with_context(&xray.tracer, &parent);
        span.end_with_timestamp(end);
    }
}

/// The database the pool talks to, as OpenTelemetry names it.
fn db_system() -> &'static str {
    static SYSTEM: OnceLock<&'static str> = OnceLock::new();
    SYSTEM.get_or_init(|| {
        let url = std::env::var("DATABASE_URL").unwrap_or_default();
        if std::env::var("DB_SECRET_ID").is_ok() || url.starts_with("postgres") {
            "postgresql"
        } else {
            "sqlite"
        }
    })
}

/* ----------------------- the handler, traced ----------------------- */

/// The router, each invocation in a span whose parent is the
/// invocation's trace id, flushed before the response goes back.
#[derive(Clone)]
pub struct Traced<S> {
    inner: S,
    xray: Option<Arc<Xray>>,
}

impl<S> Traced<S> {
    pub fn new(inner: S, xray: Option<Arc<Xray>>) -> Self {
        Traced { inner, xray }
    }
}

impl<S, B> Service<Request> for Traced<S>
where
    S: Service<Request, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some(xray) = self.xray.clone() else {
            return Box::pin(self.inner.call(request));
        };
        // TODO (step 4.8): the invocation's span. Its parent is the trace id
        // Lambda gave this invocation (request.lambda_context_ref(), its
        // xray_trace_id, read with span_context_from_str); release INIT's
        // spans into that trace (xray.init.release); run the router inside
        // the span; record the response's status; end the span and
        // xray.flush() before the response goes back.
        Box::pin(self.inner.call(request))
    }
}
