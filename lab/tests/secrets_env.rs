//! A function finds the lab's Secrets Manager through aws-config's
//! standard chain alone: the endpoint, Region and credentials the lab puts
//! in an environment's variables, as Lambda puts its role's there.
//!
//! One test in its own binary: it sets the process's environment before
//! any other thread exists.

use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::Client;
use aws_smithy_http_client::{Builder, tls};
use lab::secrets::{SecretsManager, SecretsOptions};

#[test]
fn aws_config_finds_the_lab_from_the_environment_a_function_gets() {
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let manager = setup
        .block_on(SecretsManager::start(SecretsOptions::default()))
        .unwrap();
    manager.create("from-env", "found").unwrap();
    for (key, value) in manager.env() {
        // SAFETY: this binary's only test, on its only thread so far (the
        // runtime above is current-thread).
        unsafe { std::env::set_var(key, value) };
    }
    let value = setup.block_on(async {
        let http = Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .load()
            .await;
        let client = Client::new(&config);
        client.get_secret_value().secret_id("from-env").send().await
    });
    assert_eq!(value.unwrap().secret_string(), Some("found"));
    assert_eq!(manager.calls("GetSecretValue"), 1);
}
