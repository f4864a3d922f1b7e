//! Step 3.6: IAM database authentication.
//!
//! With IAM authentication there is no database password to store, rotate
//! or leak: the function signs a short-lived token with its own AWS
//! credentials (the execution role Lambda hands it) and presents the token
//! as the password, over TLS. RDS Proxy checks the signature against IAM
//! (`rds-db:connect` on the proxy's user). The token is a SigV4 presigned
//! URL for the action `connect`, without its `https://`, valid 15 minutes.

use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

/// How long a token is accepted: 15 minutes, the most RDS allows.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// Where the token will be presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub region: String,
}

/// Signs a token for `endpoint` with `credentials`, as at `now`.
pub fn auth_token(
    endpoint: &Endpoint,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<String, String> {
    // TODO (step 3.6): presign GET https://{host}:{port}/?Action=connect&DBUser={user}
    // with SigV4 (aws_sigv4): service "rds-db", the endpoint's region, signature in
    // the query string (SignatureLocation::QueryParams), expires in TOKEN_LIFETIME,
    // signed as at `now`. The token is the signed URL without "https://".
    todo!("step 3.6: sign an IAM auth token")
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The function's credentials, from the variables Lambda sets for its
/// execution role.
pub fn credentials_from_env() -> Result<Credentials, String> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
    Ok(Credentials::new(
        var("AWS_ACCESS_KEY_ID")?,
        var("AWS_SECRET_ACCESS_KEY")?,
        std::env::var("AWS_SESSION_TOKEN").ok(),
        None,
        "lambda-environment",
    ))
}

/// `postgres://user@host:port/db?...` with the token as its password. The
/// result holds a secret: never log it.
pub fn url_with_token(url: &str, token: &str) -> Result<String, String> {
    let (scheme, rest) = url.split_once("://").ok_or("DATABASE_URL is not a URL")?;
    let (user, host) = rest.split_once('@').ok_or(
        "with IAM authentication, DATABASE_URL names the user: postgres://USER@HOST:PORT/DB",
    )?;
    let user = user.split(':').next().unwrap_or(user);
    Ok(format!("{scheme}://{user}:{}@{host}", encode(token)))
}

/// The endpoint a PostgreSQL URL names.
pub fn endpoint_of(url: &str, region: &str) -> Result<Endpoint, String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or("DATABASE_URL is not a URL")?;
    let (user, rest) = rest.split_once('@').ok_or("DATABASE_URL has no user")?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| "DATABASE_URL has a bad port")?),
        None => (authority, 5432),
    };
    Ok(Endpoint {
        host: host.to_string(),
        port,
        user: user.split(':').next().unwrap_or(user).to_string(),
        region: region.to_string(),
    })
}

/// Keeps a pool's password a valid token. A token lasts 15 minutes, and the
/// pool opens connections long after INIT (its connection is dropped after
/// a minute idle): before each request, a token older than 10 minutes is
/// replaced in the pool's connect options. Signing is local and quick.
pub struct TokenRefresh {
    /// `DATABASE_URL` as configured: the user, no password.
    url: String,
    endpoint: Endpoint,
    credentials: fn() -> Result<Credentials, String>,
    issued: Mutex<Instant>,
}

/// How old a token may get before the next request replaces it.
pub const REFRESH_AFTER: Duration = Duration::from_secs(600);

impl TokenRefresh {
    /// Signs the first token; returns the refresher and the URL to connect
    /// with.
    pub fn start(url: &str, region: &str) -> Result<(TokenRefresh, String), String> {
        Self::start_with(url, region, credentials_from_env)
    }

    /// [`TokenRefresh::start`] with credentials from elsewhere.
    pub fn start_with(
        url: &str,
        region: &str,
        credentials: fn() -> Result<Credentials, String>,
    ) -> Result<(TokenRefresh, String), String> {
        let endpoint = endpoint_of(url, region)?;
        let token = auth_token(&endpoint, &credentials()?, SystemTime::now())?;
        let with_token = url_with_token(url, &token)?;
        let refresh = TokenRefresh {
            url: url.to_string(),
            endpoint,
            credentials,
            issued: Mutex::new(Instant::now()),
        };
        Ok((refresh, with_token))
    }

    /// Replaces the pool's token when it is old.
    pub fn refresh(&self, pool: &sqlx::AnyPool) -> Result<(), String> {
        self.refresh_at(pool, Instant::now())
    }

    /// [`TokenRefresh::refresh`] as at `now`.
    pub fn refresh_at(&self, pool: &sqlx::AnyPool, now: Instant) -> Result<(), String> {
        let mut issued = self.issued.lock().map_err(|_| "token lock poisoned")?;
        if now.saturating_duration_since(*issued) < REFRESH_AFTER {
            return Ok(());
        }
        let token = auth_token(&self.endpoint, &(self.credentials)()?, SystemTime::now())?;
        let options = sqlx::any::AnyConnectOptions::from_str(&url_with_token(&self.url, &token)?)
            .map_err(|_| "the database URL with its new token does not parse")?;
        pool.set_connect_options(options);
        *issued = now;
        Ok(())
    }
}
