//! Steps 4.1 to 4.3: secrets from Secrets Manager, fetched at init, kept
//! for a while, and never printed.
//!
//! The client is aws-sdk-secretsmanager's, configured by aws-config's
//! standard chain: in Lambda the Region and the execution role's
//! credentials are in the environment; in the lab,
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` points the same client at the lab's
//! endpoint. Nothing here knows which of the two it talks to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::traces;
use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::SharedHttpClient;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::{Builder, tls};
use secrecy::SecretString;
use tracing::Instrument;
/// How long a fetched value is trusted before the next use fetches it
/// again, when `SECRETS_TTL_SECONDS` does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// The stage every consumer reads unless told otherwise.
pub const CURRENT: &str = "AWSCURRENT";
/// The version `AWSCURRENT` had before the last rotation.
pub const PREVIOUS: &str = "AWSPREVIOUS";
/// The version a rotation is putting in place, before it becomes
/// `AWSCURRENT`.
pub const PENDING: &str = "AWSPENDING";

// ANCHOR: value
/// One version of a secret. The value is a [`SecretString`]: its `Debug`
/// prints `[REDACTED]`, and reading it takes an explicit
/// `expose_secret()`, which a review can search for.
#[derive(Debug, Clone)]
pub struct SecretValue {
    pub id: String,
    pub version_id: String,
    pub stages: Vec<String>,
    pub value: SecretString,
}
// ANCHOR_END: value

/// Why a secret could not be had. Each names the secret's id and the
/// reason; none carries anything of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {id}: not found in Secrets Manager ({detail})")]
    NotFound { id: String, detail: String },
    #[error(
        "secret {id}: access denied: the function's role may not call secretsmanager:GetSecretValue on it"
    )]
    AccessDenied { id: String },
    #[error("secret {id}: Secrets Manager unreachable: {detail}")]
    Unreachable { id: String, detail: String },
    #[error("secret {id}: {detail}")]
    WrongShape { id: String, detail: String },
    #[error("secret {id}: Secrets Manager refused the call: {code}: {detail}")]
    Refused {
        id: String,
        code: String,
        detail: String,
    },
}

impl SecretError {
    pub fn id(&self) -> &str {
        match self {
            SecretError::NotFound { id, .. }
            | SecretError::AccessDenied { id }
            | SecretError::Unreachable { id, .. }
            | SecretError::WrongShape { id, .. }
            | SecretError::Refused { id, .. } => id,
        }
    }

    /// A short name for the error, for a Lambda init error's `errorType`.
    pub fn kind(&self) -> &'static str {
        match self {
            SecretError::NotFound { .. } => "SecretNotFound",
            SecretError::AccessDenied { .. } => "SecretAccessDenied",
            SecretError::Unreachable { .. } => "SecretsManagerUnreachable",
            SecretError::WrongShape { .. } => "SecretWrongShape",
            SecretError::Refused { .. } => "SecretRefused",
        }
    }
}

// ANCHOR: client
/// The SDK's client, from the standard chain. Its HTTPS client uses ring,
/// as sqlx's TLS does. Calls are bounded: an unreachable endpoint fails
/// INIT within seconds instead of hanging until the function's timeout.
pub async fn client() -> Client {
    let http = Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    client_over(http).await
}

/// [`client`] over another HTTPS client (module 5's trusts fewer roots).
pub async fn client_over(http: SharedHttpClient) -> Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts)
        .load()
        .await;
    Client::new(&config)
}
// ANCHOR_END: client

// ANCHOR: fetch
/// One `GetSecretValue` call: the version of `id` that holds `stage`.
pub async fn fetch(client: &Client, id: &str, stage: &str) -> Result<SecretValue, SecretError> {
    //- exercise 4.1
    let out = client
        .get_secret_value()
        .secret_id(id)
        .version_stage(stage)
        .send()
        .await
        .map_err(|e| classify(id, e))?;
    let Some(value) = out.secret_string else {
        return Err(SecretError::WrongShape {
            id: id.into(),
            detail: "it holds binary data, not a string".into(),
        });
    };
    Ok(SecretValue {
        id: id.into(),
        version_id: out.version_id.unwrap_or_default(),
        stages: out.version_stages.unwrap_or_default(),
        value: SecretString::from(value),
    })
    //- starter
    //> // TODO (step 4.1): client.get_secret_value() with the secret id and the
    //> // version stage, .send().await, errors through classify(id, e); the
    //> // secret_string (none: SecretError::WrongShape) into a SecretString.
    //> todo!("step 4.1: fetch a secret with GetSecretValue")
    //- end
}
// ANCHOR_END: fetch

// ANCHOR: classify
/// What went wrong, by the error's code: the SDK's message never holds the
/// value, and neither does ours.
fn classify<E, R>(id: &str, error: SdkError<E, R>) -> SecretError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let id = id.to_string();
    match &error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => SecretError::Unreachable {
            id,
            detail: std::error::Error::source(&error)
                .map(|s| s.to_string())
                .unwrap_or_else(|| error.to_string()),
        },
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown").to_string();
            let detail = e.message().unwrap_or_default().to_string();
            match code.as_str() {
                "ResourceNotFoundException" => SecretError::NotFound { id, detail },
                "AccessDeniedException" => SecretError::AccessDenied { id },
                _ => SecretError::Refused { id, code, detail },
            }
        }
        other => SecretError::Unreachable {
            id,
            detail: other.to_string(),
        },
    }
}
// ANCHOR_END: classify

// ANCHOR: cache
// ANCHOR: cache_type
/// Secrets fetched once and kept for `ttl`: an environment serves
/// thousands of requests, and each `GetSecretValue` costs $0.05 per
/// 10,000 calls and a round trip. A stage that holds no version (a key
/// never rotated has no `AWSPREVIOUS`) is remembered too, or every request
/// would ask again.
pub struct SecretCache {
    client: Client,
    ttl: Duration,
    entries: Mutex<HashMap<(String, String), Entry>>,
}

type Entry = (Instant, Option<Arc<SecretValue>>);

impl SecretCache {
    pub fn new(client: Client, ttl: Duration) -> Self {
        SecretCache {
            client,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The version of `id` at `stage`: it must exist.
    pub async fn get(&self, id: &str, stage: &str) -> Result<Arc<SecretValue>, SecretError> {
        self.get_optional(id, stage)
            .await?
            .ok_or_else(|| SecretError::NotFound {
                id: id.into(),
                detail: format!("no version is labelled {stage}"),
            })
    }

    // ANCHOR_END: cache_type
    // ANCHOR: get_optional
    /// The cached version of `id` at `stage`, or none, fetched if absent or
    /// older than the TTL.
    pub async fn get_optional(
        &self,
        id: &str,
        stage: &str,
    ) -> Result<Option<Arc<SecretValue>>, SecretError> {
        //- exercise 4.2
        let key = (id.to_string(), stage.to_string());
        if let Some((at, value)) = self.entries.lock().unwrap().get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        self.refresh(id, stage).await
        //- starter
        //> // TODO (step 4.2): what was fetched less than self.ttl ago comes from
        //> // self.entries (never hold the lock across an .await); otherwise
        //> // self.refresh(id, stage).
        //> todo!("step 4.2: cache secrets with a TTL")
        //- end
    }
    // ANCHOR_END: get_optional

    // ANCHOR: refresh
    /// Fetches `id` at `stage` now, whatever the cache holds: after the
    /// database refused the password, or a ticket named a newer key.
    pub async fn refresh(
        &self,
        id: &str,
        stage: &str,
    ) -> Result<Option<Arc<SecretValue>>, SecretError> {
        let fetched = fetch(&self.client, id, stage).instrument(traces::secret_span(id, stage));
        let value = match fetched.await {
            Ok(value) => Some(Arc::new(value)),
            // The secret exists (its current version was read) but this
            // stage is on no version.
            Err(SecretError::NotFound { .. }) if stage != CURRENT => None,
            Err(e) => return Err(e),
        };
        self.entries.lock().unwrap().insert(
            (id.to_string(), stage.to_string()),
            (Instant::now(), value.clone()),
        );
        Ok(value)
    }
    // ANCHOR_END: refresh
}
// ANCHOR_END: cache

/// `SECRETS_TTL_SECONDS`, or [`DEFAULT_TTL`].
pub fn ttl_from_env() -> Result<Duration, String> {
    match std::env::var("SECRETS_TTL_SECONDS") {
        Err(_) => Ok(DEFAULT_TTL),
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("SECRETS_TTL_SECONDS={s:?} is not a number of seconds")),
    }
}
