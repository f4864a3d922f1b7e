//! Module 2's reference router served by axum itself, on the port given as
//! the first argument: what a request costs with no Lambda, no Runtime API
//! and no API Gateway in between. `workshop/bench/overhead.sh` measures the
//! lab against it.

use module_1::Config;
use module_2::{App, MemoryTickets, router};

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: module-2-floor PORT");
    let config = Config::from_env().expect("the configuration module 2 reads");
    let tickets = MemoryTickets::new(config.clone());
    let app = router(App::new(config, tickets));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("cannot listen on port {port}: {e}"));
    axum::serve(listener, app).await.expect("the server runs");
}
