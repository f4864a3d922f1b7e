//! The lab's Secrets Manager, called as a function calls it: through
//! aws-sdk-secretsmanager, configured by aws-config's standard chain, with
//! the endpoint and credentials the lab gives an environment.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::Credentials as SdkCredentials;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_smithy_http_client::{Builder, tls};
use lab::secrets::{Credentials, SecretsManager, SecretsOptions};

fn client_for(url: &str, credentials: &Credentials, region: &str) -> Client {
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
            "lab",
        ))
        .build();
    Client::from_conf(config)
}

async fn started() -> (SecretsManager, Client) {
    let manager = SecretsManager::start(SecretsOptions::default())
        .await
        .unwrap();
    let client = client_for(&manager.url(), &manager.options().credentials, "us-east-1");
    (manager, client)
}

#[tokio::test]
async fn the_sdk_reads_the_current_and_the_previous_version() {
    let (manager, client) = started().await;
    let created = client
        .create_secret()
        .name("workshop/ticket-signing-key")
        .secret_string("key-one")
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_string();
    assert!(
        arn.starts_with(
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:workshop/ticket-signing-key-"
        ),
        "{arn}"
    );
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("key-two")
        .send()
        .await
        .unwrap();

    let current = client
        .get_secret_value()
        .secret_id("workshop/ticket-signing-key")
        .send()
        .await
        .unwrap();
    assert_eq!(current.secret_string(), Some("key-two"));
    assert_eq!(current.version_stages(), ["AWSCURRENT"]);
    assert!(current.created_date().is_some());
    let previous = client
        .get_secret_value()
        .secret_id(&arn)
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(previous.secret_string(), Some("key-one"));

    let described = client
        .describe_secret()
        .secret_id(&arn)
        .send()
        .await
        .unwrap();
    let stages = described.version_ids_to_stages().unwrap();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert_eq!(manager.calls("GetSecretValue"), 2);
    assert_eq!(manager.calls("DescribeSecret"), 1);
}

#[tokio::test]
async fn a_rotation_moves_the_stages_as_secrets_manager_does() {
    let (_manager, client) = started().await;
    let first = client
        .create_secret()
        .name("db")
        .secret_string("old")
        .send()
        .await
        .unwrap();
    let first = first.version_id().unwrap().to_string();
    let pending = client
        .put_secret_value()
        .secret_id("db")
        .secret_string("new")
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    let pending = pending.version_id().unwrap().to_string();
    let still = client
        .get_secret_value()
        .secret_id("db")
        .send()
        .await
        .unwrap();
    assert_eq!(still.secret_string(), Some("old"));
    client
        .update_secret_version_stage()
        .secret_id("db")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&pending)
        .remove_from_version_id(&first)
        .send()
        .await
        .unwrap();
    let now = client
        .get_secret_value()
        .secret_id("db")
        .send()
        .await
        .unwrap();
    assert_eq!(now.secret_string(), Some("new"));
    let before = client
        .get_secret_value()
        .secret_id("db")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(before.secret_string(), Some("old"));
}

#[tokio::test]
async fn errors_arrive_in_aws_shape() {
    let (manager, client) = started().await;
    let missing = client
        .get_secret_value()
        .secret_id("nope")
        .send()
        .await
        .unwrap_err();
    let missing = missing.into_service_error();
    assert!(missing.is_resource_not_found_exception(), "{missing:?}");
    assert_eq!(
        missing.message(),
        Some("Secrets Manager can't find the specified secret.")
    );

    manager.create("denied", "v").unwrap();
    manager.deny("denied");
    let denied = client
        .get_secret_value()
        .secret_id("denied")
        .send()
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Some("AccessDeniedException"));
}

#[tokio::test]
async fn a_call_signed_with_other_credentials_is_refused() {
    let (manager, _) = started().await;
    manager.create("k", "v").unwrap();
    let mut wrong_secret = manager.options().credentials.clone();
    wrong_secret.secret_access_key = "not-the-labs-key".into();
    let refused = client_for(&manager.url(), &wrong_secret, "us-east-1")
        .get_secret_value()
        .secret_id("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("InvalidSignatureException"));

    let mut wrong_key = manager.options().credentials.clone();
    wrong_key.access_key_id = "AKIAOTHER".into();
    let refused = client_for(&manager.url(), &wrong_key, "us-east-1")
        .get_secret_value()
        .secret_id("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("UnrecognizedClientException"));

    let refused = client_for(&manager.url(), &manager.options().credentials, "eu-west-1")
        .get_secret_value()
        .secret_id("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some("InvalidSignatureException"),
        "a signature scoped to another Region"
    );
}

#[tokio::test]
async fn an_unsigned_call_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (manager, _) = started().await;
    manager.create("k", "v").unwrap();
    let body = r#"{"SecretId":"k"}"#;
    let addr = manager.url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: secretsmanager.GetSecretValue\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let answer = answer.to_lowercase();
    assert!(answer.starts_with("http/1.1 400"), "{answer}");
    assert!(
        answer.contains("x-amzn-errortype: missingauthenticationtokenexception"),
        "{answer}"
    );
    assert!(!answer.contains("\"v\""), "{answer}");
    assert_eq!(
        manager.calls("GetSecretValue"),
        0,
        "a refused call is not an operation"
    );
}

/// The lab's own calls to another endpoint ([`SecretsManager::remote`]),
/// made here against the lab's endpoint, which checks their signatures:
/// a secret created, rotated and read back as the function reads it.
#[tokio::test(flavor = "multi_thread")]
async fn the_lab_creates_and_rotates_secrets_on_another_endpoint() {
    let (manager, client) = started().await;
    let remote = SecretsManager::remote(&manager.url(), manager.options().clone()).unwrap();
    assert!(!remote.counts_calls());
    let remote = tokio::task::spawn_blocking(move || {
        remote.create("elsewhere", "first-value").unwrap();
        // Created again, as on a moto server left running: the value is
        // put as AWSCURRENT instead.
        remote.create("elsewhere", "second-value").unwrap();
        let version = remote.rotate("elsewhere", "third-value").unwrap();
        assert!(!version.is_empty());
        let missing = remote
            .call("GetSecretValue", &serde_json::json!({ "SecretId": "nope" }))
            .unwrap_err();
        assert_eq!(missing.kind, "ResourceNotFoundException");
        remote
    })
    .await
    .unwrap();
    let read = |stage: &'static str| {
        client
            .get_secret_value()
            .secret_id("elsewhere")
            .version_stage(stage)
            .send()
    };
    assert_eq!(
        read("AWSCURRENT").await.unwrap().secret_string(),
        Some("third-value")
    );
    assert_eq!(
        read("AWSPREVIOUS").await.unwrap().secret_string(),
        Some("second-value")
    );
    assert_eq!(manager.calls("CreateSecret"), 2);
    assert_eq!(remote.url(), manager.url());
}
