//! The lab's API Gateway: a local HTTP endpoint in front of a fleet.
//!
//! Each request becomes a payload 2.0 (HTTP API) or 1.0 (REST API) event
//! for an execution environment of the fleet, and the function's answer
//! becomes the HTTP response. Around that, what API Gateway does and what
//! a client sees of it:
//!
//! | what happens                         | the client gets                                  |
//! |--------------------------------------|--------------------------------------------------|
//! | over the rate or burst (token bucket)| 429 `{"message":"Too Many Requests"}`            |
//! | REST: missing or wrong API key       | 403 `{"message":"Forbidden"}`                    |
//! | REST: a path outside the stage       | 403 `{"message":"Missing Authentication Token"}` |
//! | the function is throttled            | 500 (a proxy integration does not map it)        |
//! | the function fails or answers badly  | 502                                              |
//! | no answer within the integration timeout (29 s REST, 30 s HTTP API) | 504        |
//!
//! Every request writes one access log line with the fields of API
//! Gateway's `$context` variables.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::apigw::{self, Api, HttpRequest, HttpResponse, RequestMeta};
use crate::fleet::{Fleet, FleetError};
use crate::lambda::{Outcome, ms};
use crate::metrics::Recorder;
use crate::throttle::TokenBucket;
use crate::xray::{Collector, TraceHeader, epoch_seconds, new_id};

/// API Gateway's payload limit (10 MB).
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub api: Api,
    /// Requests a second and burst; `None` for no throttling.
    pub throttle: Option<(f64, u32)>,
    /// REST APIs only: the key a usage plan requires in `x-api-key`.
    pub api_key: Option<String>,
    pub integration_timeout: Duration,
    /// Active tracing: a REST API records its stage's segment here and
    /// passes the trace on; an HTTP API, which X-Ray does not trace, hands
    /// Lambda a trace id of its own.
    pub tracing: Option<Arc<Collector>>,
}

impl GatewayOptions {
    pub fn new(api: Api) -> Self {
        let integration_timeout = match api {
            Api::Rest { .. } => Duration::from_secs(29),
            Api::Http => Duration::from_secs(30),
        };
        GatewayOptions {
            api,
            throttle: None,
            api_key: None,
            integration_timeout,
            tracing: None,
        }
    }
}

pub struct Gateway {
    fleet: Fleet,
    options: GatewayOptions,
    recorder: Arc<Recorder>,
    access_log: mpsc::UnboundedSender<String>,
    bucket: Option<Mutex<TokenBucket>>,
}

/// What became of one request, for the access log.
struct Handled {
    response: HttpResponse,
    error_message: Option<&'static str>,
    integration: Option<(Duration, String)>,
    integration_status: Option<u16>,
    gateway_throttled: bool,
}

impl Gateway {
    pub fn new(
        fleet: Fleet,
        options: GatewayOptions,
        recorder: Arc<Recorder>,
        access_log: mpsc::UnboundedSender<String>,
    ) -> Arc<Self> {
        let bucket = options
            .throttle
            .map(|(rate, burst)| Mutex::new(TokenBucket::new(rate, burst)));
        Arc::new(Gateway {
            fleet,
            options,
            recorder,
            access_log,
            bucket,
        })
    }

    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    fn error(&self, status: u16, message: &'static str) -> Handled {
        let mut response = HttpResponse::json(status, json!({ "message": message }));
        if let Api::Rest { .. } = self.options.api {
            let kind = match status {
                403 => "ForbiddenException",
                413 => "RequestTooLargeException",
                429 => "TooManyRequestsException",
                504 => "IntegrationTimeoutException",
                _ => "InternalServerErrorException",
            };
            response
                .headers
                .push(("x-amzn-ErrorType".into(), kind.into()));
        }
        Handled {
            response,
            error_message: Some(message),
            integration: None,
            integration_status: None,
            gateway_throttled: status == 429,
        }
    }

    fn internal_error_message(&self) -> &'static str {
        match self.options.api {
            Api::Http => "Internal Server Error",
            Api::Rest { .. } => "Internal server error",
        }
    }

    /// One request, start to finish: what the client gets.
    pub async fn handle(&self, mut request: HttpRequest) -> HttpResponse {
        let started = Instant::now();
        let started_wall = SystemTime::now();
        let meta = RequestMeta::now(self.new_request_id());
        let method = request.method.clone();
        let path = request.path.clone();
        let trace = self.trace(&mut request);
        let handled = self.route(&mut request, &meta, trace.as_ref()).await;
        if let (Some(collector), Some((header, Some(segment)))) = (&self.options.tracing, &trace) {
            collector.record(json!({
                "id": segment, "trace_id": header.root,
                "name": format!("{}/{}", self.fleet.function().name, self.stage()),
                "origin": "AWS::ApiGateway::Stage",
                "start_time": epoch_seconds(started_wall),
                "end_time": epoch_seconds(SystemTime::now()),
                "http": {
                    "request": { "method": method, "url": path },
                    "response": { "status": handled.response.status },
                },
                "fault": handled.response.status >= 500,
                "error": (400..500).contains(&handled.response.status),
            }));
        }
        let mut response = handled.response;
        let id_header = match self.options.api {
            Api::Http => "apigw-requestid",
            Api::Rest { .. } => "x-amzn-RequestId",
        };
        response
            .headers
            .push((id_header.into(), meta.request_id.clone()));
        let latency = started.elapsed();
        self.recorder
            .request(response.status, latency, handled.gateway_throttled);

        if self.access_log.is_closed() {
            // Nobody reads the access log: no line to write.
            return response;
        }
        let (integration_latency, integration_error) = match &handled.integration {
            Some((d, error)) => (format!("{}", ms(*d).round() as u64), error.clone()),
            None => ("-".into(), "-".into()),
        };
        let route = match &self.options.api {
            Api::Http => ("routeKey", "$default".to_string()),
            Api::Rest { .. } => ("resourcePath", "/{proxy+}".to_string()),
        };
        let line = json!({
            "requestId": meta.request_id,
            "ip": request.source_ip,
            "requestTime": apigw::request_time(meta.time_epoch_ms),
            "httpMethod": method,
            route.0: route.1,
            "path": path,
            "status": response.status.to_string(),
            "protocol": "HTTP/1.1",
            "responseLength": response.body.len().to_string(),
            "responseLatency": format!("{}", ms(latency).round() as u64),
            "integrationLatency": integration_latency,
            "integrationStatus": handled.integration_status.map_or("-".into(), |s| s.to_string()),
            "errorMessage": handled.error_message.unwrap_or("-"),
            "integrationErrorMessage": integration_error,
        });
        let _ = self.access_log.send(line.to_string());
        response
    }

    fn stage(&self) -> &str {
        match &self.options.api {
            Api::Http => "$default",
            Api::Rest { stage } => stage,
        }
    }

    /// With tracing on, the request's trace: the header Lambda gets (the
    /// client's `X-Amzn-Trace-Id` continued, or a new sampled trace) and,
    /// for a REST API, the id of the stage's own segment.
    fn trace(&self, request: &mut HttpRequest) -> Option<(TraceHeader, Option<String>)> {
        self.options.tracing.as_ref()?;
        let incoming = request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-amzn-trace-id"))
            .and_then(|(_, v)| TraceHeader::parse(v));
        let root = incoming.unwrap_or_else(|| TraceHeader::new_root(true));
        let (header, segment) = match self.options.api {
            Api::Rest { .. } => {
                let segment = new_id();
                (root.child_of(&segment), Some(segment))
            }
            Api::Http => (root, None),
        };
        request
            .headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("x-amzn-trace-id"));
        request
            .headers
            .push(("X-Amzn-Trace-Id".into(), header.to_string()));
        Some((header, segment))
    }

    fn new_request_id(&self) -> String {
        let id = crate::lambda::random_uuid();
        match self.options.api {
            // HTTP API ids are short, base64-looking strings.
            Api::Http => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(&id.as_bytes()[..11])
            }
            Api::Rest { .. } => id.to_string(),
        }
    }

    async fn route(
        &self,
        request: &mut HttpRequest,
        meta: &RequestMeta,
        trace: Option<&(TraceHeader, Option<String>)>,
    ) -> Handled {
        if let Api::Rest { stage } = &self.options.api {
            // REST API URLs name the stage: https://{api}.execute-api.{region}.amazonaws.com/{stage}/...
            let prefix = format!("/{stage}");
            let inner = request.path.strip_prefix(&prefix).map(str::to_string);
            match inner {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                    request.path = if rest.is_empty() { "/".into() } else { rest };
                }
                _ => return self.error(403, "Missing Authentication Token"),
            }
            if let Some(key) = &self.options.api_key
                && request
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("x-api-key"))
                    .is_none_or(|(_, v)| v != key)
            {
                return self.error(403, "Forbidden");
            }
        }
        if let Some(bucket) = &self.bucket
            && !bucket.lock().expect("bucket lock").take(Instant::now())
        {
            return self.error(429, "Too Many Requests");
        }
        if request.body.len() > MAX_REQUEST_BYTES {
            return self.error(413, "Request Entity Too Large");
        }

        let route = match self.options.api {
            Api::Http => "$default",
            Api::Rest { .. } => "/{proxy+}",
        };
        let event = apigw::event(&self.options.api, request, meta, route);
        let fleet = self.fleet.clone();
        let started = Instant::now();
        // The invocation runs to its end even when the gateway stops waiting,
        // as on AWS: an integration timeout does not stop the function.
        let upstream = trace.map(|(header, _)| header.clone());
        let invocation = tokio::spawn(async move {
            fleet
                .invoke_traced(Bytes::from(event.to_string()), upstream)
                .await
        });
        let result = tokio::time::timeout(self.options.integration_timeout, invocation).await;
        let elapsed = started.elapsed();
        let internal = self.internal_error_message();
        match result {
            Err(_) => {
                let mut h = self.error(504, "Endpoint request timed out");
                h.integration = Some((elapsed, "Integration timeout".into()));
                h
            }
            Ok(Err(join)) => {
                let mut h = self.error(500, internal);
                h.integration = Some((elapsed, join.to_string()));
                h
            }
            Ok(Ok(Err(FleetError::Throttled))) => {
                let mut h = self.error(500, internal);
                h.integration = Some((elapsed, "Rate Exceeded.".into()));
                h.integration_status = Some(429);
                h
            }
            Ok(Ok(Err(FleetError::Start(e)))) => {
                let mut h = self.error(500, internal);
                h.integration = Some((elapsed, e));
                h
            }
            Ok(Ok(Ok(invocation))) => match &invocation.outcome {
                Outcome::Response(body) => match apigw::response(&self.options.api, body) {
                    Ok(response) => Handled {
                        response,
                        error_message: None,
                        integration: Some((elapsed, "-".into())),
                        integration_status: Some(200),
                        gateway_throttled: false,
                    },
                    Err(invalid) => {
                        let mut h = self.error(502, internal);
                        h.integration = Some((elapsed, invalid.0));
                        h.integration_status = Some(200);
                        h
                    }
                },
                _ => {
                    let mut h = self.error(502, internal);
                    let kind = invocation.error_type().unwrap_or_default();
                    h.integration = Some((elapsed, format!("Lambda function error: {kind}")));
                    h.integration_status = Some(200);
                    h
                }
            },
        }
    }
}

/// Serves `gateway` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(_) => continue,
            },
            Some(_) = connections.join_next() => continue,
        };
        let (stream, peer) = stream;
        let gateway = gateway.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let gateway = gateway.clone();
                async move { Ok::<_, Infallible>(answer(&gateway, req, peer).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    connections.abort_all();
}

async fn answer(
    gateway: &Gateway,
    req: Request<Incoming>,
    peer: std::net::SocketAddr,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BYTES + 1).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::from(vec![0; MAX_REQUEST_BYTES + 1]),
    };
    let request = HttpRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        source_ip: peer.ip().to_string(),
    };
    let response = gateway.handle(request).await;
    let mut builder = Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(response.body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::from_static(b"bad response headers"))))
}

/// Reads an access log line back, for reports and tests.
pub fn parse_access_line(line: &str) -> Option<Value> {
    serde_json::from_str(line).ok()
}
