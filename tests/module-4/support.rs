//! Helpers for the module 4 suite: a Secrets Manager per test (the lab's,
//! or a moto server when `TEST_SECRETS_URL` is set), a client for it, and
//! the bootstrap under test.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::Credentials as SdkCredentials;
use aws_smithy_http_client::{Builder, tls};
use lab::secrets::{Credentials, SecretsManager, SecretsOptions};

/// A signing key as `GenerateSecretString` makes one: 64 characters.
pub const KEY_ONE: &str = "k1-Yq8vJ2mR7tW4nZ6xC1bV9hG3sD5fL0pQaE8rT2yU6iO4wN7mK1jH3gF5dS9aZ";
pub const KEY_TWO: &str = "k2-Pz4xL9cV2bN7mQ1wE5rT8yU3iO6pA0sD4fG7hJ2kL5zX8cV1bN4mQ7wE0rT3y";
pub const KEY_THREE: &str = "k3-Mn6bV3cX8zL1kJ4hG7fD0sA5pO2iU9yT6rE3wQ8mN1bV4cX7zL0kJ3hG6fD9s";

/// Where this test's secrets live.
pub struct Secrets {
    /// The lab's endpoint; `None` against moto.
    pub lab: Option<SecretsManager>,
    pub url: String,
    pub credentials: Credentials,
    pub region: String,
    /// Names in this test: a test's own prefix, so runs never collide on a
    /// shared moto server.
    prefix: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Secrets {
    pub async fn start() -> Secrets {
        let prefix = format!(
            "t{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        match std::env::var("TEST_SECRETS_URL") {
            Ok(url) => Secrets {
                lab: None,
                url,
                credentials: Credentials {
                    access_key_id: "testing".into(),
                    secret_access_key: "testing".into(),
                    session_token: None,
                },
                region: "us-east-1".into(),
                prefix,
            },
            Err(_) => {
                let lab = SecretsManager::start(SecretsOptions::default())
                    .await
                    .expect("the lab's Secrets Manager starts");
                Secrets {
                    url: lab.url(),
                    credentials: lab.options().credentials.clone(),
                    region: lab.options().region.clone(),
                    lab: Some(lab),
                    prefix,
                }
            }
        }
    }

    /// This test's name for `name`.
    pub fn id(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    pub fn client(&self) -> Client {
        client_for(&self.url, &self.credentials, &self.region)
    }

    /// Creates `name` with `value` as its current version; its id.
    pub async fn create(&self, name: &str, value: &str) -> String {
        let id = self.id(name);
        self.client()
            .create_secret()
            .name(&id)
            .secret_string(value)
            .send()
            .await
            .expect("create the secret");
        id
    }

    /// A rotation as Secrets Manager's rotation function does it: the new
    /// version as AWSPENDING, then AWSCURRENT moved onto it.
    pub async fn rotate(&self, id: &str, value: &str) {
        let pending = self.put_pending(id, value).await;
        self.finish(id, &pending).await;
    }

    /// A rotation's first step (createSecret): the new value as
    /// AWSPENDING, AWSCURRENT where it was. Its version id.
    pub async fn put_pending(&self, id: &str, value: &str) -> String {
        let pending = self
            .client()
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .version_stages("AWSPENDING")
            .send()
            .await
            .expect("put the pending version");
        pending.version_id().unwrap().to_string()
    }

    /// A rotation's last step (finishSecret): AWSCURRENT moved onto
    /// `version`.
    pub async fn finish(&self, id: &str, version: &str) {
        let client = self.client();
        let current = self.version_at(id, "AWSCURRENT").await;
        client
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage("AWSCURRENT")
            .move_to_version_id(version)
            .remove_from_version_id(current.expect("a current version"))
            .send()
            .await
            .expect("promote the pending version");
    }

    /// The version that holds `stage`, if any.
    pub async fn version_at(&self, id: &str, stage: &str) -> Option<String> {
        let described = self
            .client()
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .expect("describe the secret");
        described
            .version_ids_to_stages()
            .into_iter()
            .flatten()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(v, _)| v.clone())
    }

    /// GetSecretValue calls so far, where the endpoint counts them (the
    /// lab's).
    pub fn get_calls(&self) -> Option<u64> {
        self.lab.as_ref().map(|lab| lab.calls("GetSecretValue"))
    }

    /// What an execution environment is given to reach this endpoint.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "AWS_ENDPOINT_URL_SECRETS_MANAGER".to_string(),
                self.url.clone(),
            ),
            ("AWS_REGION".to_string(), self.region.clone()),
        ];
        env.extend(self.credentials.env());
        env
    }
}

pub fn client_for(url: &str, credentials: &Credentials, region: &str) -> Client {
    let http = Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(url)
        .region(Region::new(region.to_string()))
        .credentials_provider(SdkCredentials::new(
            &credentials.access_key_id,
            &credentials.secret_access_key,
            credentials.session_token.clone(),
            None,
            "test",
        ))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// The bootstrap binary of the crate under test.
pub fn bootstrap() -> PathBuf {
    let path = option_env!("CARGO_BIN_EXE_module-4")
        .or(option_env!("CARGO_BIN_EXE_module-4-solution"))
        .expect("the crate under test has a module-4 bootstrap binary");
    PathBuf::from(path)
}

/// A database secret in the JSON shape RDS writes.
pub fn db_secret(host: &str, port: u16, user: &str, password: &str, dbname: &str) -> String {
    serde_json::json!({
        "engine": "postgres",
        "host": host,
        "port": port,
        "username": user,
        "password": password,
        "dbname": dbname,
    })
    .to_string()
}

/// `TEST_POSTGRES`'s server (`postgres://USER:PASS@HOST:PORT`): the admin
/// URL, the host and the port.
pub fn test_postgres() -> Option<(String, String, u16)> {
    let url = std::env::var("TEST_POSTGRES").ok()?;
    let authority = url.split_once('@')?.1.trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':')?;
    Some((url.clone(), host.to_string(), port.parse().ok()?))
}

pub fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join("ticket-drop-tests-4")
}

/// A fresh SQLite database for the bootstrap, migrated by the bootstrap
/// itself with one event of 100 seats: its `DATABASE_URL`.
pub fn migrated_database(name: &str) -> String {
    let dir = scratch_dir().join(name.replace('/', "-"));
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::remove_file(dir.join("tickets.db"));
    let db = format!("sqlite:{}?mode=rwc", dir.join("tickets.db").display());
    let status = std::process::Command::new(bootstrap())
        .arg("migrate")
        .env("DATABASE_URL", &db)
        .env("EVENTS", "midnight-tour:100")
        .status()
        .expect("the bootstrap runs");
    assert!(status.success(), "migrate");
    db
}

/// An API Gateway (HTTP API) event for `method path` with `body`.
pub fn http_event(method: &str, path: &str, body: Option<String>) -> String {
    let mut request = lab::apigw::HttpRequest::new(method, path);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let meta = lab::apigw::RequestMeta::now(format!("gw-{}", lab::lambda::random_uuid()));
    lab::apigw::event(&lab::apigw::Api::Http, &request, &meta, "$default").to_string()
}
