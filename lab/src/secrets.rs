//! The lab's Secrets Manager: a local endpoint that speaks the service's
//! own protocol, so a function's `aws-sdk-secretsmanager` client talks to
//! it unchanged, through `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
//!
//! The protocol is AWS JSON 1.1: every call is `POST /` with the operation
//! in `X-Amz-Target: secretsmanager.GetSecretValue` and a JSON body; an
//! error is a 4xx whose `x-amzn-ErrorType` header and `__type` field name
//! it. What the module uses is here, as AWS keeps it:
//!
//! | operation                  | what it does here                                        |
//! |----------------------------|----------------------------------------------------------|
//! | `CreateSecret`             | a secret with its first version, labelled `AWSCURRENT`   |
//! | `GetSecretValue`           | by name or ARN; `AWSCURRENT` unless a stage or id is given |
//! | `DescribeSecret`           | the versions and their stages, never a value            |
//! | `PutSecretValue`           | a new version; `AWSCURRENT` moves, the old one becomes `AWSPREVIOUS` |
//! | `UpdateSecretVersionStage` | moves a stage label from one version to another         |
//!
//! Every call must be signed with Signature Version 4 and the lab's
//! credentials ([`Credentials`]); an unsigned, wrongly signed or expired
//! request is refused as AWS refuses it. The endpoint counts calls by
//! operation, so a report can say how many `GetSecretValue` calls a run
//! made and what they would cost. A secret's value never appears in an
//! error message.
//!
//! [`SecretsManager::remote`] stands for another implementation of the
//! same API instead, a moto server say: the lab creates and rotates its
//! secrets there with signed calls of its own, and the function is pointed
//! at it. Calls the function makes there are not counted.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What a `GetSecretValue` call costs: $0.05 per 10,000 calls.
pub const PRICE_PER_GET: f64 = 0.05 / 10_000.0;

/// The largest request the endpoint reads (a secret's value is 64 KB at
/// most).
const MAX_REQUEST_BYTES: usize = 128 * 1024;

/// How far a request's `X-Amz-Date` may be from the endpoint's clock, as
/// AWS allows: five minutes.
const MAX_SKEW_SECONDS: i64 = 5 * 60;

/// The credentials a caller signs with. The lab makes one set per run and
/// gives it to every environment in the variables Lambda sets for the
/// function's role (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`).
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Credentials {
    /// A fresh set, shaped as temporary role credentials are.
    pub fn generate() -> Self {
        let hex = |n: usize| {
            let mut s = String::new();
            while s.len() < n {
                s.push_str(&uuid::Uuid::new_v4().simple().to_string());
            }
            s.truncate(n);
            s
        };
        Credentials {
            access_key_id: format!("ASIALAB{}", hex(13).to_uppercase()),
            secret_access_key: hex(40),
            session_token: Some(hex(64)),
        }
    }

    /// The environment variables a function signs with.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                self.secret_access_key.clone(),
            ),
        ];
        if let Some(token) = &self.session_token {
            env.push(("AWS_SESSION_TOKEN".into(), token.clone()));
        }
        env
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// Where and as whom the endpoint answers.
#[derive(Clone, Debug)]
pub struct SecretsOptions {
    pub region: String,
    pub account: String,
    pub credentials: Credentials,
}

impl Default for SecretsOptions {
    fn default() -> Self {
        SecretsOptions {
            region: "us-east-1".into(),
            account: "123456789012".into(),
            credentials: Credentials::generate(),
        }
    }
}

/// A refusal in AWS's shape: the status, the error's type, its message.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

impl AwsError {
    fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            kind,
            message: message.into(),
        }
    }

    fn not_found() -> Self {
        Self::new(
            400,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        )
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidParameterException", message)
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.kind, self.status, self.message)
    }
}

struct Version {
    id: String,
    value: String,
    created: f64,
    stages: Vec<String>,
}

struct Secret {
    name: String,
    arn: String,
    description: Option<String>,
    created: f64,
    changed: f64,
    versions: Vec<Version>,
}

impl Secret {
    fn by_stage(&self, stage: &str) -> Option<&Version> {
        self.versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == stage))
    }

    fn by_id(&self, id: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }

    /// Puts `stage` on version `to`, taking it off whichever had it; a
    /// version that loses `AWSCURRENT` becomes `AWSPREVIOUS`.
    fn move_stage(&mut self, stage: &str, to: &str) {
        let from = self.by_stage(stage).map(|v| v.id.clone());
        if from.as_deref() == Some(to) {
            return;
        }
        for v in &mut self.versions {
            v.stages.retain(|s| s != stage);
        }
        if stage == "AWSCURRENT" {
            for v in &mut self.versions {
                v.stages.retain(|s| s != "AWSPREVIOUS");
            }
            if let Some(from) = &from
                && let Some(v) = self.versions.iter_mut().find(|v| &v.id == from)
            {
                v.stages.push("AWSPREVIOUS".into());
            }
        }
        if let Some(v) = self.versions.iter_mut().find(|v| v.id == to) {
            v.stages.push(stage.to_string());
        }
        self.changed = now();
    }
}

#[derive(Default)]
struct State {
    secrets: BTreeMap<String, Secret>,
    calls: BTreeMap<String, u64>,
    /// Secrets the function's role may not read (`AccessDeniedException`).
    denied: HashSet<String>,
}

impl State {
    fn find(&self, id: &str) -> Result<&Secret, AwsError> {
        self.secrets
            .get(id)
            .or_else(|| self.secrets.values().find(|s| s.arn == id))
            .ok_or_else(AwsError::not_found)
    }

    fn find_mut(&mut self, id: &str) -> Result<&mut Secret, AwsError> {
        let name = self.find(id)?.name.clone();
        Ok(self.secrets.get_mut(&name).expect("found above"))
    }
}

/// The local Secrets Manager: its state, and the endpoint once started.
pub struct SecretsManager {
    options: SecretsOptions,
    state: Arc<Mutex<State>>,
    addr: Option<SocketAddr>,
    server: Option<JoinHandle<()>>,
    /// Another implementation of the API, at this URL, in place of ours.
    remote: Option<String>,
}

/// The credentials and Region moto accepts: any, and its documentation
/// uses these.
pub fn moto_options() -> SecretsOptions {
    SecretsOptions {
        region: "us-east-1".into(),
        account: "123456789012".into(),
        credentials: Credentials {
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            session_token: None,
        },
    }
}

impl SecretsManager {
    pub fn new(options: SecretsOptions) -> Self {
        SecretsManager {
            options,
            state: Arc::default(),
            addr: None,
            server: None,
            remote: None,
        }
    }

    /// The Secrets Manager API served at `url` (`http://127.0.0.1:5000`,
    /// a moto server), called as `options` say. Nothing is started.
    pub fn remote(url: &str, options: SecretsOptions) -> Result<Self, String> {
        let url = url.trim_end_matches('/');
        url.strip_prefix("http://")
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| {
                format!("{url}: the lab calls a Secrets Manager at http://HOST:PORT only")
            })?;
        let mut manager = Self::new(options);
        manager.remote = Some(url.to_string());
        Ok(manager)
    }

    /// The Secrets Manager of a run, holding `secrets` (name, value): the
    /// lab's own, started on a free port, or the one at `endpoint` (a moto
    /// server, called with [`moto_options`]).
    pub async fn for_run(
        endpoint: Option<&str>,
        secrets: &[(String, String)],
    ) -> Result<Self, String> {
        let manager = match endpoint {
            Some(url) => Self::remote(url, moto_options())?,
            None => Self::start(SecretsOptions::default())
                .await
                .map_err(|e| format!("cannot start the lab's Secrets Manager: {e}"))?,
        };
        for (name, value) in secrets {
            manager
                .create(name, value)
                .map_err(|e| format!("cannot create the secret {name}: {}", e.message))?;
        }
        Ok(manager)
    }

    /// Whether the calls are counted: only by the lab's own endpoint.
    pub fn counts_calls(&self) -> bool {
        self.remote.is_none()
    }

    /// Listens on a free port of 127.0.0.1 until dropped.
    pub async fn start(options: SecretsOptions) -> std::io::Result<Self> {
        let mut manager = Self::new(options);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        manager.addr = Some(listener.local_addr()?);
        let state = manager.state.clone();
        let options = manager.options.clone();
        manager.server = Some(tokio::spawn(serve(listener, state, options)));
        Ok(manager)
    }

    /// The endpoint's URL, for `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
    pub fn url(&self) -> String {
        if let Some(url) = &self.remote {
            return url.clone();
        }
        match self.addr {
            Some(addr) => format!("http://{addr}"),
            None => String::new(),
        }
    }

    pub fn options(&self) -> &SecretsOptions {
        &self.options
    }

    /// What a function in the lab needs to reach this endpoint: its URL,
    /// the Region and the credentials.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), self.url()),
            ("AWS_REGION".into(), self.options.region.clone()),
            ("AWS_DEFAULT_REGION".into(), self.options.region.clone()),
        ];
        env.extend(self.options.credentials.env());
        env
    }

    /// Calls made so far, by operation (`"GetSecretValue"`, ...).
    pub fn calls(&self, operation: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Refuses `GetSecretValue` on `name` with `AccessDeniedException`, as
    /// a role without the permission would be refused.
    pub fn deny(&self, name: &str) {
        self.state.lock().unwrap().denied.insert(name.to_string());
    }

    /// The operation itself, as the endpoint runs it after checking the
    /// signature: `operation` is the part of `X-Amz-Target` after the dot.
    pub fn call(&self, operation: &str, input: &Value) -> Result<Value, AwsError> {
        match &self.remote {
            Some(url) => remote_call(url, &self.options, operation, input, unix_now()),
            None => call(&self.state, &self.options, operation, input),
        }
    }

    /// Creates `name` with `value` as its `AWSCURRENT` version. On a
    /// remote endpoint that has it from an earlier run, `value` becomes
    /// its `AWSCURRENT` version.
    pub fn create(&self, name: &str, value: &str) -> Result<Value, AwsError> {
        let created = self.call(
            "CreateSecret",
            &json!({ "Name": name, "SecretString": value }),
        );
        match created {
            Err(e) if e.kind == "ResourceExistsException" && self.remote.is_some() => {
                self.put(name, value, &["AWSCURRENT"])?;
                self.call("DescribeSecret", &json!({ "SecretId": name }))
            }
            other => other,
        }
    }

    /// Puts a new version of `name` under `stages`.
    pub fn put(&self, name: &str, value: &str, stages: &[&str]) -> Result<String, AwsError> {
        let out = self.call(
            "PutSecretValue",
            &json!({ "SecretId": name, "SecretString": value, "VersionStages": stages }),
        )?;
        Ok(out["VersionId"].as_str().unwrap_or_default().to_string())
    }
}

impl SecretsManager {
    /// A rotation as a rotation function makes it: `value` as a new
    /// version under `AWSPENDING`, then `AWSCURRENT` moved onto it (the
    /// version it leaves becomes `AWSPREVIOUS`). The new version's id.
    pub fn rotate(&self, name: &str, value: &str) -> Result<String, AwsError> {
        let pending = self.put(name, value, &["AWSPENDING"])?;
        self.finish(name, &pending)?;
        Ok(pending)
    }

    /// A rotation's last step (finishSecret): `AWSCURRENT` moved onto
    /// `version`, the version it leaves becoming `AWSPREVIOUS`.
    pub fn finish(&self, name: &str, version: &str) -> Result<(), AwsError> {
        let described = self.call("DescribeSecret", &json!({ "SecretId": name }))?;
        let current = described["VersionIdsToStages"]
            .as_object()
            .and_then(|versions| {
                versions.iter().find(|(_, stages)| {
                    stages
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s == "AWSCURRENT"))
                })
            })
            .map(|(id, _)| id.clone());
        let mut input = json!({
            "SecretId": name,
            "VersionStage": "AWSCURRENT",
            "MoveToVersionId": version,
        });
        if let Some(current) = current {
            input["RemoveFromVersionId"] = json!(current);
        }
        self.call("UpdateSecretVersionStage", &input)?;
        Ok(())
    }
}

/// A random string of `length` letters and digits, as
/// `GenerateSecretString` with `ExcludePunctuation` makes one.
pub fn random_secret_string(length: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(length);
    while out.len() < length {
        // A version-4 UUID's bytes 6 and 8 carry its version and variant.
        let uuid = uuid::Uuid::new_v4();
        let random = uuid
            .as_bytes()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 6 && *i != 8);
        for (_, b) in random {
            // 62 symbols: drop the bytes that would favour the first ones.
            if (*b as usize) < 248 && out.len() < length {
                out.push(ALPHABET[*b as usize % ALPHABET.len()] as char);
            }
        }
    }
    out
}

impl Drop for SecretsManager {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Six characters after the name, as AWS appends to a secret's ARN.
fn arn_suffix() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uuid::Uuid::new_v4().as_bytes()[..6]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn string<'a>(input: &'a Value, field: &str) -> Option<&'a str> {
    input.get(field).and_then(Value::as_str)
}

fn required<'a>(input: &'a Value, field: &str) -> Result<&'a str, AwsError> {
    string(input, field).ok_or_else(|| AwsError::invalid(format!("{field} is required.")))
}

fn call(
    state: &Mutex<State>,
    options: &SecretsOptions,
    operation: &str,
    input: &Value,
) -> Result<Value, AwsError> {
    let mut state = state.lock().unwrap();
    *state.calls.entry(operation.to_string()).or_default() += 1;
    match operation {
        "CreateSecret" => {
            let name = required(input, "Name")?;
            if state.secrets.contains_key(name) {
                return Err(AwsError::new(
                    400,
                    "ResourceExistsException",
                    format!("The operation failed because the secret {name} already exists."),
                ));
            }
            let created = now();
            let arn = format!(
                "arn:aws:secretsmanager:{}:{}:secret:{name}-{}",
                options.region,
                options.account,
                arn_suffix()
            );
            let mut secret = Secret {
                name: name.to_string(),
                arn: arn.clone(),
                description: string(input, "Description").map(str::to_string),
                created,
                changed: created,
                versions: Vec::new(),
            };
            let mut out = json!({ "ARN": arn, "Name": name });
            if let Some(value) = string(input, "SecretString") {
                let id = string(input, "ClientRequestToken")
                    .map(str::to_string)
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                secret.versions.push(Version {
                    id: id.clone(),
                    value: value.to_string(),
                    created,
                    stages: vec!["AWSCURRENT".into()],
                });
                out["VersionId"] = json!(id);
            }
            state.secrets.insert(name.to_string(), secret);
            Ok(out)
        }
        "GetSecretValue" => {
            let id = required(input, "SecretId")?;
            let secret = state.find(id)?;
            if state.denied.contains(&secret.name) {
                return Err(AwsError::new(
                    400,
                    "AccessDeniedException",
                    format!(
                        "User: arn:aws:sts::{}:assumed-role/lab-function/lab is not authorized to perform: \
                         secretsmanager:GetSecretValue on resource: {id} because no identity-based policy \
                         allows the secretsmanager:GetSecretValue action",
                        options.account
                    ),
                ));
            }
            let version = match (string(input, "VersionId"), string(input, "VersionStage")) {
                (Some(vid), stage) => secret
                    .by_id(vid)
                    .filter(|v| stage.is_none_or(|s| v.stages.iter().any(|x| x == s))),
                (None, stage) => secret.by_stage(stage.unwrap_or("AWSCURRENT")),
            };
            let Some(version) = version else {
                return Err(AwsError::new(
                    400,
                    "ResourceNotFoundException",
                    format!(
                        "Secrets Manager can't find the specified secret value for staging label: {}",
                        string(input, "VersionStage").unwrap_or("AWSCURRENT")
                    ),
                ));
            };
            Ok(json!({
                "ARN": secret.arn,
                "Name": secret.name,
                "VersionId": version.id,
                "SecretString": version.value,
                "VersionStages": version.stages,
                "CreatedDate": version.created,
            }))
        }
        "DescribeSecret" => {
            let secret = state.find(required(input, "SecretId")?)?;
            let stages: serde_json::Map<String, Value> = secret
                .versions
                .iter()
                .filter(|v| !v.stages.is_empty())
                .map(|v| (v.id.clone(), json!(v.stages)))
                .collect();
            let mut out = json!({
                "ARN": secret.arn,
                "Name": secret.name,
                "RotationEnabled": false,
                "CreatedDate": secret.created,
                "LastChangedDate": secret.changed,
                "VersionIdsToStages": stages,
            });
            if let Some(description) = &secret.description {
                out["Description"] = json!(description);
            }
            Ok(out)
        }
        "PutSecretValue" => {
            let secret = state.find_mut(required(input, "SecretId")?)?;
            let value = required(input, "SecretString")?;
            let stages: Vec<String> = match input.get("VersionStages").and_then(Value::as_array) {
                Some(list) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
                None => vec!["AWSCURRENT".into()],
            };
            let token = string(input, "ClientRequestToken");
            if let Some(existing) = token.and_then(|t| secret.by_id(t)) {
                if existing.value != value {
                    return Err(AwsError::new(
                        400,
                        "ResourceExistsException",
                        "You can't modify an existing version, you can only create a new version.",
                    ));
                }
                return Ok(json!({
                    "ARN": secret.arn, "Name": secret.name,
                    "VersionId": existing.id, "VersionStages": existing.stages,
                }));
            }
            let id = token
                .map(str::to_string)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            secret.versions.push(Version {
                id: id.clone(),
                value: value.to_string(),
                created: now(),
                stages: Vec::new(),
            });
            for stage in &stages {
                secret.move_stage(stage, &id);
            }
            let stages = secret
                .by_id(&id)
                .map(|v| v.stages.clone())
                .unwrap_or_default();
            Ok(json!({
                "ARN": secret.arn, "Name": secret.name,
                "VersionId": id, "VersionStages": stages,
            }))
        }
        "UpdateSecretVersionStage" => {
            let secret = state.find_mut(required(input, "SecretId")?)?;
            let stage = required(input, "VersionStage")?;
            let to = string(input, "MoveToVersionId");
            let from = string(input, "RemoveFromVersionId");
            let holder = secret.by_stage(stage).map(|v| v.id.clone());
            if let Some(to) = to {
                if secret.by_id(to).is_none() {
                    return Err(AwsError::not_found());
                }
                if let Some(holder) = &holder
                    && holder != to
                    && from != Some(holder.as_str())
                {
                    return Err(AwsError::invalid(format!(
                        "The staging label {stage} is currently attached to version {holder}, \
                         so you must explicitly reference that version in RemoveFromVersionId."
                    )));
                }
                secret.move_stage(stage, to);
            } else if let Some(from) = from {
                if stage == "AWSCURRENT" {
                    return Err(AwsError::invalid(
                        "You can only move staging label AWSCURRENT to a different secret version. \
                         It can't be completely removed.",
                    ));
                }
                if let Some(v) = secret.versions.iter_mut().find(|v| v.id == from) {
                    v.stages.retain(|s| s != stage);
                }
            } else {
                return Err(AwsError::invalid(
                    "MoveToVersionId or RemoveFromVersionId is required.",
                ));
            }
            Ok(json!({ "ARN": secret.arn, "Name": secret.name }))
        }
        other => Err(AwsError::new(
            400,
            "UnknownOperationException",
            format!("The lab's Secrets Manager does not implement {other}."),
        )),
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>, options: SecretsOptions) {
    let options = Arc::new(options);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = state.clone();
        let options = options.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                let options = options.clone();
                async move { Ok::<_, Infallible>(answer(&state, &options, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    state: &Mutex<State>,
    options: &SecretsOptions,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return error_response(&AwsError::invalid(
                "The request is larger than the lab accepts.",
            ));
        }
    };
    let result = verify(&parts, &body, options, unix_now()).and_then(|()| {
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(operation) = target.strip_prefix("secretsmanager.") else {
            return Err(AwsError::new(
                400,
                "UnknownOperationException",
                "X-Amz-Target must name a secretsmanager operation.",
            ));
        };
        let input: Value = serde_json::from_slice(&body).map_err(|_| {
            AwsError::new(
                400,
                "SerializationException",
                "The request body is not JSON.",
            )
        })?;
        call(state, options, operation, &input)
    });
    match result {
        Ok(out) => Response::builder()
            .status(200)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
            .body(Full::new(Bytes::from(out.to_string())))
            .expect("a valid response"),
        Err(e) => error_response(&e),
    }
}

fn error_response(e: &AwsError) -> Response<Full<Bytes>> {
    Response::builder()
        .status(e.status)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-errortype", e.kind)
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .body(Full::new(Bytes::from(
            json!({ "__type": e.kind, "Message": e.message }).to_string(),
        )))
        .expect("a valid response")
}

/* ------------------------- a Secrets Manager elsewhere ------------------------- */

/// `X-Amz-Date` of `unix` seconds: `20261207T132500Z`.
fn amz_date(unix: i64) -> String {
    let (y, m, d) = crate::clock::civil_from_days(unix.div_euclid(86_400));
    let s = unix.rem_euclid(86_400);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        s / 3_600,
        s % 3_600 / 60,
        s % 60
    )
}

/// The `Authorization` header of a Secrets Manager call (SigV4, the
/// headers `content-type`, `host`, `x-amz-date`, `x-amz-security-token`
/// when the credentials have a session token, and `x-amz-target` signed),
/// as the SDK signs one.
fn sign(options: &SecretsOptions, host: &str, target: &str, date: &str, body: &[u8]) -> String {
    let scope = format!(
        "{}/{}/secretsmanager/aws4_request",
        &date[..8],
        options.region
    );
    let (token_header, token_name) = match &options.credentials.session_token {
        Some(token) => (
            format!("x-amz-security-token:{token}\n"),
            ";x-amz-security-token",
        ),
        None => (String::new(), ""),
    };
    let signed_headers = format!("content-type;host;x-amz-date{token_name};x-amz-target");
    let canonical_request = format!(
        "POST\n/\n\ncontent-type:application/x-amz-json-1.1\nhost:{host}\nx-amz-date:{date}\n{token_header}x-amz-target:{target}\n\n{signed_headers}\n{}",
        hex(&Sha256::digest(body))
    );
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={}",
        options.credentials.access_key_id,
        sigv4_signature(
            &options.credentials.secret_access_key,
            date,
            &scope,
            &canonical_request
        )
    )
}

/// SigV4's signature of `canonical_request`, made at `date` within
/// `scope` (`DATE/REGION/SERVICE/aws4_request`) with `secret_access_key`.
fn sigv4_signature(
    secret_access_key: &str,
    date: &str,
    scope: &str,
    canonical_request: &str,
) -> String {
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let key = scope.split('/').fold(
        format!("AWS4{secret_access_key}").into_bytes(),
        |key, part| hmac(&key, part.as_bytes()),
    );
    hex(&hmac(&key, string_to_sign.as_bytes()))
}

/// An error type another implementation answered, among the ones this
/// module knows; any other is `UnknownError`, its message kept.
fn known_kind(kind: &str) -> &'static str {
    const KNOWN: [&str; 8] = [
        "ResourceNotFoundException",
        "ResourceExistsException",
        "InvalidParameterException",
        "InvalidRequestException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "LimitExceededException",
    ];
    let kind = kind.rsplit('#').next().unwrap_or(kind);
    KNOWN
        .into_iter()
        .find(|k| *k == kind)
        .unwrap_or("UnknownError")
}

/// One call to the endpoint at `url` (`http://HOST:PORT`), over a
/// connection of its own: the lab's own calls are few (creating a secret,
/// a rotation), so a blocking one is enough.
fn remote_call(
    url: &str,
    options: &SecretsOptions,
    operation: &str,
    input: &Value,
    now: i64,
) -> Result<Value, AwsError> {
    use std::io::{Read, Write};
    let unreachable = |e: String| AwsError {
        status: 503,
        kind: "ServiceUnavailable",
        message: format!("{url}: {e}"),
    };
    let host = url.strip_prefix("http://").unwrap_or(url);
    let body = input.to_string();
    let target = format!("secretsmanager.{operation}");
    let date = amz_date(now);
    let authorization = sign(options, host, &target, &date, body.as_bytes());
    let token = match &options.credentials.session_token {
        Some(token) => format!("x-amz-security-token: {token}\r\n"),
        None => String::new(),
    };
    let request = format!(
        "POST / HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-amz-json-1.1\r\n\
         x-amz-date: {date}\r\n{token}x-amz-target: {target}\r\nauthorization: {authorization}\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(host).map_err(|e| unreachable(e.to_string()))?;
    let timeout = Some(std::time::Duration::from_secs(5));
    let _ = stream.set_read_timeout(timeout);
    let _ = stream.set_write_timeout(timeout);
    stream
        .write_all(request.as_bytes())
        .map_err(|e| unreachable(e.to_string()))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| unreachable(e.to_string()))?;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| unreachable("an answer that is not HTTP".into()))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| unreachable("an answer without a status".into()))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked {
        unchunk(body)
    } else {
        body.to_string()
    };
    let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    if status == 200 {
        return Ok(value);
    }
    let kind = value["__type"].as_str().unwrap_or("UnknownError");
    let message = value["message"]
        .as_str()
        .or(value["Message"].as_str())
        .unwrap_or_default();
    Err(AwsError {
        status,
        kind: known_kind(kind),
        message: message.to_string(),
    })
}

/// The body of a chunked answer.
fn unchunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any size");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since 1970 of an `X-Amz-Date` (`20261207T132500Z`).
fn parse_amz_date(date: &str) -> Option<i64> {
    let b = date.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| date.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let days = crate::clock::days_from_civil(y, u32::try_from(m).ok()?, u32::try_from(d).ok()?);
    Some(days * 86_400 + hh * 3_600 + mm * 60 + ss)
}

/// Checks a request's Signature Version 4 against the lab's credentials,
/// and refuses it as AWS would: no signature, an unknown key, a session
/// token that does not match, a request too far from now, a signature that
/// does not match what the lab computes.
fn verify(
    parts: &hyper::http::request::Parts,
    body: &[u8],
    options: &SecretsOptions,
    now: i64,
) -> Result<(), AwsError> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(authorization) = header("authorization") else {
        return Err(AwsError::new(
            400,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let incomplete = || {
        AwsError::new(
            400,
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
        )
    };
    let rest = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(incomplete)?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in rest.split(',') {
        let (key, value) = field.trim().split_once('=').ok_or_else(incomplete)?;
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let (credential, signed_headers, signature) = match (credential, signed_headers, signature) {
        (Some(c), Some(h), Some(s)) => (c, h, s),
        _ => return Err(incomplete()),
    };
    let mut scope = credential.splitn(2, '/');
    let access_key = scope.next().unwrap_or_default();
    let scope = scope.next().ok_or_else(incomplete)?;
    let creds = &options.credentials;
    let unrecognized = || {
        AwsError::new(
            400,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    };
    if access_key != creds.access_key_id {
        return Err(unrecognized());
    }
    if let Some(token) = &creds.session_token
        && header("x-amz-security-token") != Some(token.as_str())
    {
        return Err(unrecognized());
    }
    let date = header("x-amz-date").ok_or_else(incomplete)?;
    let signed_at = parse_amz_date(date).ok_or_else(incomplete)?;
    if (now - signed_at).abs() > MAX_SKEW_SECONDS {
        return Err(AwsError::new(
            400,
            "InvalidSignatureException",
            format!(
                "Signature expired: {date} is now earlier or later than the lab's clock allows (5 minutes)."
            ),
        ));
    }
    let scope_parts: Vec<&str> = scope.split('/').collect();
    if scope_parts.len() != 4
        || scope_parts[0] != &date[..8]
        || scope_parts[1] != options.region
        || scope_parts[2] != "secretsmanager"
        || scope_parts[3] != "aws4_request"
    {
        return Err(AwsError::new(
            400,
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid date, the Region {} and the service secretsmanager: {scope}",
                options.region
            ),
        ));
    }
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let values: Vec<String> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() && name != "host" {
            return Err(incomplete());
        }
        let value = if values.is_empty() {
            parts
                .uri
                .authority()
                .map(|a| a.to_string())
                .unwrap_or_default()
        } else {
            values.join(",")
        };
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let payload_hash = match header("x-amz-content-sha256") {
        Some(hash) if hash != "UNSIGNED-PAYLOAD" => hash.to_string(),
        _ => hex(&Sha256::digest(body)),
    };
    let mut query: Vec<&str> = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|q| !q.is_empty())
        .collect();
    query.sort_unstable();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{payload_hash}",
        parts.method,
        parts.uri.path(),
        query.join("&"),
    );
    let expected = sigv4_signature(&creds.secret_access_key, date, scope, &canonical_request);
    if expected != signature {
        return Err(AwsError::new(
            400,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn amz_dates_are_written_as_they_are_read() {
        assert_eq!(super::amz_date(0), "19700101T000000Z");
        for unix in [1_796_000_000, 1_800_000_059, 951_782_400] {
            assert_eq!(super::parse_amz_date(&super::amz_date(unix)), Some(unix));
        }
    }

    #[test]
    fn the_labs_own_calls_are_signed_as_the_endpoint_checks() {
        use super::*;
        let options = SecretsOptions::default();
        let body = br#"{"SecretId":"workshop/ticket-signing-key"}"#;
        let now = 1_796_000_000;
        let date = amz_date(now);
        let target = "secretsmanager.GetSecretValue";
        let request = |authorization: String| {
            let mut request = hyper::Request::builder()
                .method("POST")
                .uri("/")
                .header("host", "127.0.0.1:5000")
                .header("content-type", "application/x-amz-json-1.1")
                .header("x-amz-date", &date)
                .header("x-amz-target", target)
                .header("authorization", authorization);
            if let Some(token) = &options.credentials.session_token {
                request = request.header("x-amz-security-token", token);
            }
            request.body(()).unwrap().into_parts().0
        };
        let signed = sign(&options, "127.0.0.1:5000", target, &date, body);
        assert_eq!(verify(&request(signed), body, &options, now), Ok(()));
        let mut other = options.clone();
        other.credentials.secret_access_key = "not-the-key".into();
        let wrong = sign(&other, "127.0.0.1:5000", target, &date, body);
        assert_eq!(
            verify(&request(wrong), body, &options, now)
                .unwrap_err()
                .kind,
            "InvalidSignatureException"
        );
    }

    #[test]
    fn a_chunked_body_is_put_back_together() {
        assert_eq!(
            super::unchunk("4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"),
            "{\"a\":1}"
        );
    }

    #[test]
    fn a_rotation_moves_current_and_previous() {
        let manager = SecretsManager::new(SecretsOptions::default());
        manager.create("key", "one").unwrap();
        let two = manager.rotate("key", "two").unwrap();
        let get = |stage: &str| {
            manager
                .call(
                    "GetSecretValue",
                    &json!({ "SecretId": "key", "VersionStage": stage }),
                )
                .map(|v| (v["SecretString"].clone(), v["VersionId"].clone()))
        };
        assert_eq!(get("AWSCURRENT").unwrap(), (json!("two"), json!(two)));
        assert_eq!(get("AWSPREVIOUS").unwrap().0, json!("one"));
        manager.rotate("key", "three").unwrap();
        assert_eq!(get("AWSCURRENT").unwrap().0, json!("three"));
        assert_eq!(get("AWSPREVIOUS").unwrap().0, json!("two"));
    }

    #[test]
    fn generated_strings_are_letters_and_digits_of_the_length_asked() {
        let a = random_secret_string(64);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, random_secret_string(64));
    }

    use super::*;

    fn manager() -> SecretsManager {
        SecretsManager::new(SecretsOptions::default())
    }

    fn stages(m: &SecretsManager, name: &str) -> Value {
        m.call("DescribeSecret", &json!({ "SecretId": name }))
            .unwrap()["VersionIdsToStages"]
            .clone()
    }

    #[test]
    fn a_new_version_becomes_current_and_the_old_one_previous() {
        let m = manager();
        let first = m.create("ticket-key", "one").unwrap()["VersionId"]
            .as_str()
            .unwrap()
            .to_string();
        let second = m.put("ticket-key", "two", &["AWSCURRENT"]).unwrap();
        let third = m.put("ticket-key", "three", &["AWSCURRENT"]).unwrap();
        let map = stages(&m, "ticket-key");
        assert_eq!(map[&third], json!(["AWSCURRENT"]));
        assert_eq!(map[&second], json!(["AWSPREVIOUS"]));
        assert!(
            map.get(&first).is_none(),
            "a version with no stage is not listed: {map}"
        );
        let previous = m
            .call(
                "GetSecretValue",
                &json!({ "SecretId": "ticket-key", "VersionStage": "AWSPREVIOUS" }),
            )
            .unwrap();
        assert_eq!(previous["SecretString"], "two");
    }

    #[test]
    fn a_pending_version_is_promoted_by_moving_the_current_stage() {
        let m = manager();
        let first = m.create("db", "old").unwrap()["VersionId"]
            .as_str()
            .unwrap()
            .to_string();
        let pending = m.put("db", "new", &["AWSPENDING"]).unwrap();
        let current = m
            .call("GetSecretValue", &json!({ "SecretId": "db" }))
            .unwrap();
        assert_eq!(
            current["SecretString"], "old",
            "a pending version is not current yet"
        );
        let refused = m
            .call(
                "UpdateSecretVersionStage",
                &json!({ "SecretId": "db", "VersionStage": "AWSCURRENT", "MoveToVersionId": pending }),
            )
            .unwrap_err();
        assert_eq!(refused.kind, "InvalidParameterException");
        m.call(
            "UpdateSecretVersionStage",
            &json!({ "SecretId": "db", "VersionStage": "AWSCURRENT",
                     "MoveToVersionId": pending, "RemoveFromVersionId": first }),
        )
        .unwrap();
        let map = stages(&m, "db");
        assert_eq!(map[&pending], json!(["AWSPENDING", "AWSCURRENT"]));
        assert_eq!(map[&first], json!(["AWSPREVIOUS"]));
    }

    #[test]
    fn errors_name_the_secret_never_its_value() {
        let m = manager();
        m.create("ticket-key", "s3cr3t-value").unwrap();
        let missing = m
            .call("GetSecretValue", &json!({ "SecretId": "nope" }))
            .unwrap_err();
        assert_eq!(
            (missing.status, missing.kind),
            (400, "ResourceNotFoundException")
        );
        let exists = m.create("ticket-key", "other").unwrap_err();
        assert_eq!(exists.kind, "ResourceExistsException");
        m.deny("ticket-key");
        let denied = m
            .call("GetSecretValue", &json!({ "SecretId": "ticket-key" }))
            .unwrap_err();
        assert_eq!(denied.kind, "AccessDeniedException");
        assert!(denied.message.contains("ticket-key"));
        for e in [missing, exists, denied] {
            assert!(!e.message.contains("s3cr3t"), "{e}");
        }
        assert_eq!(m.calls("GetSecretValue"), 2);
    }

    #[test]
    fn the_same_request_token_is_the_same_version() {
        let m = manager();
        m.create("k", "a").unwrap();
        let put = |value: &str| {
            m.call(
                "PutSecretValue",
                &json!({ "SecretId": "k", "SecretString": value, "ClientRequestToken": "t-1" }),
            )
        };
        let once = put("b").unwrap();
        let twice = put("b").unwrap();
        assert_eq!(once["VersionId"], twice["VersionId"]);
        assert_eq!(put("c").unwrap_err().kind, "ResourceExistsException");
    }

    #[test]
    fn amz_dates_are_read_as_utc() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20261207T132500Z"), Some(1_796_649_900));
        assert_eq!(parse_amz_date("2026-12-07"), None);
    }
}
