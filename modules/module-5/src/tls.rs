//! Step 5.1: a cold start cut where it was measured.
//!
//! Module 4's cold-start trace puts most of INIT in one phase, `SDK client`:
//! building the SDK's HTTPS client loads the system's root certificates
//! (on Debian, one bundle and 290 files) to trust any server on the
//! internet. The function talks to one kind of server, AWS's endpoints, and
//! their certificates all chain to Amazon Trust Services' roots: trusting
//! those five alone is a few microseconds of parsing instead of milliseconds
//! of file reads.

use aws_sdk_secretsmanager::Client;
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};

/// Amazon Root CA 1 to 4 and Starfield Services Root CA G2, as PEM.
pub const AMAZON_ROOTS: &[u8] = include_bytes!("amazon-roots.pem");

/// The TLS settings of the SDK's client: AWS's roots, and nothing else.
pub fn amazon_roots() -> TlsContext {
    // TODO (step 5.1): a TrustStore that starts empty, has the system's
    // roots off (with_native_roots(false)) and AMAZON_ROOTS in it
    // (with_pem_certificate), in a TlsContext (TlsContext::builder()).
    todo!("step 5.1: trust AWS's roots only")
}

/// Module 4's Secrets Manager client (the standard chain, bounded calls),
/// over an HTTPS client that trusts [`amazon_roots`].
pub async fn client() -> Client {
    let http = Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(amazon_roots())
        .build_https();
    module_4::secrets::client_over(http).await
}
