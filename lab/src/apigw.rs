//! API Gateway's side of a Lambda proxy integration: an HTTP request turned
//! into the event a function receives (payload 1.0 from a REST API,
//! payload 2.0 from an HTTP API), and the function's answer turned back
//! into an HTTP response, following the formats AWS documents for each.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde_json::{Map, Value, json};

/// Which API Gateway sends the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    /// HTTP API, payload format 2.0, on the `$default` stage.
    Http,
    /// REST API, payload format 1.0, on the named stage.
    Rest { stage: String },
}

impl Api {
    pub fn payload_version(&self) -> &'static str {
        match self {
            Api::Http => "2.0",
            Api::Rest { .. } => "1.0",
        }
    }
}

/// An HTTP request as a client sent it.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    pub method: String,
    /// The path as the client sent it, without the query string.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names and values in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub source_ip: String,
}

impl HttpRequest {
    pub fn new(method: &str, path_and_query: &str) -> Self {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        HttpRequest {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            body: Bytes::new(),
            source_ip: "192.0.2.1".into(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The identity of one request at the gateway.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// API Gateway's request id.
    pub request_id: String,
    /// Milliseconds since the epoch.
    pub time_epoch_ms: u64,
    /// The API id (the first label of its domain name).
    pub api_id: String,
}

impl RequestMeta {
    pub fn now(request_id: impl Into<String>) -> Self {
        let time_epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        RequestMeta {
            request_id: request_id.into(),
            time_epoch_ms,
            api_id: "local".into(),
        }
    }
}

/// `25/Nov/2026:19:33:53 +0000`, the format of `requestTime`.
pub fn request_time(epoch_ms: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = epoch_ms / 1000;
    let (y, m, d) = crate::clock::civil_from_days((secs / 86_400) as i64);
    let rest = secs % 86_400;
    format!(
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Query parameters in order, decoded as API Gateway decodes them.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` as a space; invalid escapes stay as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The body as the event carries it: text as it is, anything that is not
/// UTF-8 base64-encoded with `isBase64Encoded: true`.
fn event_body(body: &Bytes) -> (Value, bool) {
    if body.is_empty() {
        return (Value::Null, false);
    }
    match std::str::from_utf8(body) {
        Ok(text) => (Value::String(text.to_string()), false),
        Err(_) => (Value::String(BASE64.encode(body)), true),
    }
}

/// The event a function receives for `request`, in `api`'s payload format.
/// `route` is the route or resource that matched (`/{proxy+}` for a proxy).
pub fn event(api: &Api, request: &HttpRequest, meta: &RequestMeta, route: &str) -> Value {
    match api {
        Api::Http => event_v2(request, meta, route),
        Api::Rest { stage } => event_v1(request, meta, route, stage),
    }
}

fn domain(meta: &RequestMeta) -> String {
    format!("{}.execute-api.us-east-1.amazonaws.com", meta.api_id)
}

fn event_v2(request: &HttpRequest, meta: &RequestMeta, route: &str) -> Value {
    // Payload 2.0: header names in lower case, repeated headers joined by
    // commas, cookies in their own list.
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        headers
            .entry(name)
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in query_pairs(&request.query) {
        query
            .entry(k)
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let route_key = if route == "$default" {
        "$default".to_string()
    } else {
        format!("{} {route}", request.method)
    };
    let (body, base64) = event_body(&request.body);
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": crate::lambda::LOCAL_ACCOUNT_ID,
            "apiId": meta.api_id,
            "domainName": domain(meta),
            "domainPrefix": meta.api_id,
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": request.header_value("user-agent").unwrap_or(""),
            },
            "requestId": meta.request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": request_time(meta.time_epoch_ms),
            "timeEpoch": meta.time_epoch_ms,
        },
        "isBase64Encoded": base64,
    });
    let fields = event.as_object_mut().expect("an object");
    if !cookies.is_empty() {
        fields.insert("cookies".into(), json!(cookies));
    }
    if !query.is_empty() {
        fields.insert("queryStringParameters".into(), json!(query));
    }
    if !body.is_null() {
        fields.insert("body".into(), body);
    }
    event
}

fn event_v1(request: &HttpRequest, meta: &RequestMeta, resource: &str, stage: &str) -> Value {
    // Payload 1.0: header names as sent; `headers` keeps the last value of
    // a repeated header, `multiValueHeaders` keeps them all.
    let mut headers = Map::new();
    let mut multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &request.headers {
        headers.insert(name.clone(), Value::String(value.clone()));
        multi.entry(name.clone()).or_default().push(value.clone());
    }
    let mut query = Map::new();
    let mut multi_query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in query_pairs(&request.query) {
        query.insert(k.clone(), Value::String(v.clone()));
        multi_query.entry(k).or_default().push(v);
    }
    let nullable = |m: Value| {
        if m.as_object().is_some_and(|o| o.is_empty()) {
            Value::Null
        } else {
            m
        }
    };
    let (body, base64) = event_body(&request.body);
    let stage_path = if stage == "$default" {
        request.path.clone()
    } else {
        format!("/{stage}{}", request.path)
    };
    json!({
        "version": "1.0",
        "resource": resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": nullable(Value::Object(headers)),
        "multiValueHeaders": nullable(json!(multi)),
        "queryStringParameters": nullable(Value::Object(query)),
        "multiValueQueryStringParameters": nullable(json!(multi_query)),
        "requestContext": {
            "accountId": crate::lambda::LOCAL_ACCOUNT_ID,
            "apiId": meta.api_id,
            "domainName": domain(meta),
            "domainPrefix": meta.api_id,
            "extendedRequestId": meta.request_id,
            "httpMethod": request.method,
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": request.header_value("user-agent"),
            },
            "path": stage_path,
            "protocol": "HTTP/1.1",
            "requestId": meta.request_id,
            "requestTime": request_time(meta.time_epoch_ms),
            "requestTimeEpoch": meta.time_epoch_ms,
            "resourceId": "local",
            "resourcePath": resource,
            "stage": stage,
        },
        "pathParameters": null,
        "stageVariables": null,
        "body": body,
        "isBase64Encoded": base64,
    })
}

/// An HTTP response as API Gateway sends it to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(status: u16, body: Value) -> Self {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(body.to_string()),
        }
    }
}

/// Why a function's answer is not a valid proxy response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidResponse(pub String);

/// The HTTP response for a function's answer, as `api` reads it.
///
/// Payload 2.0 accepts any JSON: without a `statusCode` it is the body of a
/// 200. Payload 1.0 needs an object with a `statusCode`.
pub fn response(api: &Api, payload: &[u8]) -> Result<HttpResponse, InvalidResponse> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| InvalidResponse(format!("the function's answer is not JSON: {e}")))?;
    let object = value.as_object().filter(|o| o.contains_key("statusCode"));
    let Some(object) = object else {
        return match api {
            Api::Http => Ok(HttpResponse::json(200, value)),
            Api::Rest { .. } => Err(InvalidResponse(
                "Malformed Lambda proxy response: no statusCode".into(),
            )),
        };
    };
    let status = object
        .get("statusCode")
        .and_then(Value::as_u64)
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| InvalidResponse("Malformed Lambda proxy response: bad statusCode".into()))?
        as u16;
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(h)) = object.get("headers") {
        for (k, v) in h {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            headers.push((k.clone(), v));
        }
    }
    if let Some(Value::Object(h)) = object.get("multiValueHeaders") {
        for (k, values) in h {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            for v in values.as_array().into_iter().flatten() {
                headers.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
            }
        }
    }
    if let Some(Value::Array(cookies)) = object.get("cookies") {
        for c in cookies.iter().filter_map(Value::as_str) {
            headers.push(("set-cookie".into(), c.to_string()));
        }
    }
    let base64 = object
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = match object.get("body") {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) if base64 => Bytes::from(
            BASE64
                .decode(s)
                .map_err(|_| InvalidResponse("the body is not valid base64".into()))?,
        ),
        Some(Value::String(s)) => Bytes::from(s.clone()),
        Some(other) => Bytes::from(other.to_string()),
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn request_times() {
        assert_eq!(
            request_time(1_583_349_317_135),
            "04/Mar/2020:19:15:17 +0000"
        );
    }

    #[test]
    fn payload_2_0_without_status_code_is_a_200() {
        let r = response(&Api::Http, br#"{"ok":true}"#).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(&r.body[..], br#"{"ok":true}"#);
        let e = response(
            &Api::Rest {
                stage: "prod".into(),
            },
            br#"{"ok":true}"#,
        );
        assert!(e.is_err());
    }

    #[test]
    fn proxy_responses_are_read() {
        let payload = br#"{"statusCode":201,"headers":{"content-type":"application/json"},"multiValueHeaders":{"x-a":["1","2"]},"body":"eyJhIjoxfQ==","isBase64Encoded":true,"cookies":["s=1"]}"#;
        let r = response(&Api::Http, payload).unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(&r.body[..], br#"{"a":1}"#);
        assert_eq!(
            r.headers,
            vec![
                ("content-type".to_string(), "application/json".to_string()),
                ("x-a".into(), "1".into()),
                ("x-a".into(), "2".into()),
                ("set-cookie".into(), "s=1".into()),
            ]
        );
        assert!(response(&Api::Http, b"not json").is_err());
        assert!(response(&Api::Http, br#"{"statusCode":99}"#).is_err());
    }
}
