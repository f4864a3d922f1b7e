//! Step 3.6: IAM database authentication.
//!
//! With IAM authentication there is no database password to store, rotate
//! or leak: the function signs a short-lived token with its own AWS
//! credentials (the execution role Lambda hands it) and presents the token
//! as the password, over TLS. RDS Proxy checks the signature against IAM
//! (`rds-db:connect` on the proxy's user). The token is a SigV4 presigned
//! URL for the action `connect`, without its `https://`, valid 15 minutes.

use std::error::Error;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningError, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

/// Why there is no token, or no URL to connect with. Each variant says which
/// part of `DATABASE_URL` or which signing operation failed. None holds the
/// token, the secret key or the URL (which may hold a password), so the
/// error can be logged whole.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// `DATABASE_URL` has no `scheme://`.
    #[error("DATABASE_URL is not a URL: expected postgres://USER@HOST:PORT/DB")]
    NotAUrl,
    /// `DATABASE_URL` has no `user@` in front of the host.
    #[error("with IAM authentication, DATABASE_URL names the user: postgres://USER@HOST:PORT/DB")]
    NoUser,
    /// The port after the host is not a number (its text is not repeated).
    #[error("the port in DATABASE_URL is not a number from 0 to 65535")]
    BadPort,
    /// The execution role's credentials cannot be read.
    #[error("no AWS credentials to sign the database token with: {0}")]
    Credentials(Box<dyn Error + Send + Sync>),
    /// `v4::SigningParams::builder()...build()` lacks a parameter.
    #[error("cannot sign an auth token: the SigV4 parameters are incomplete: {0}")]
    SigningParams(v4::signing_params::BuildError),
    /// `SignableRequest::new` refuses the connect request.
    #[error("cannot sign an auth token: the connect request cannot be signed: {0}")]
    ConnectRequest(SigningError),
    /// `sign` fails.
    #[error("cannot sign an auth token: signing the connect request failed: {0}")]
    Signature(SigningError),
    /// The signed URL does not make an `http::Request`.
    #[error("cannot sign an auth token: the signed URL is not a valid URI: {0}")]
    SignedUrl(lambda_http::http::Error),
    /// `DATABASE_URL` with a new token is no longer a valid connect URL
    /// (sqlx's reason is left out: it could quote the URL).
    #[error("DATABASE_URL with its new token does not parse as connect options")]
    TokenUrl,
    /// An earlier refresh panicked while it held the refresher's lock.
    #[error("the database token's lock is poisoned: an earlier refresh panicked")]
    LockPoisoned,
}

/// A variable that the execution role's credentials come from is missing
/// (or not Unicode). Its value, a secret, is never part of the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not set")]
pub struct MissingCredential(pub &'static str);

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
) -> Result<String, IamError> {
    // TODO (step 3.6): presign GET https://{host}:{port}/?Action=connect&DBUser={user}
    // with SigV4 (aws_sigv4): service "rds-db", the endpoint's region, signature in
    // the query string (SignatureLocation::QueryParams), expires in TOKEN_LIFETIME,
    // signed as at `now`. The token is the signed URL without "https://".
    // Each fallible call's error becomes its IamError variant (map_err).
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
pub fn credentials_from_env() -> Result<Credentials, MissingCredential> {
    let var = |name: &'static str| std::env::var(name).map_err(|_| MissingCredential(name));
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
pub fn url_with_token(url: &str, token: &str) -> Result<String, IamError> {
    let (scheme, rest) = url.split_once("://").ok_or(IamError::NotAUrl)?;
    let (user, host) = rest.split_once('@').ok_or(IamError::NoUser)?;
    let user = user.split(':').next().unwrap_or(user);
    Ok(format!("{scheme}://{user}:{}@{host}", encode(token)))
}

/// The endpoint a PostgreSQL URL names.
pub fn endpoint_of(url: &str, region: &str) -> Result<Endpoint, IamError> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or(IamError::NotAUrl)?;
    let (user, rest) = rest.split_once('@').ok_or(IamError::NoUser)?;
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| IamError::BadPort)?),
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
///
/// `E` is the error of the credentials' source: by default the variables
/// Lambda sets ([`credentials_from_env`]).
pub struct TokenRefresh<E = MissingCredential> {
    /// `DATABASE_URL` as configured: the user, no password.
    url: String,
    endpoint: Endpoint,
    credentials: fn() -> Result<Credentials, E>,
    issued: Mutex<Instant>,
}

/// How old a token may get before the next request replaces it.
pub const REFRESH_AFTER: Duration = Duration::from_secs(600);

impl TokenRefresh {
    /// Signs the first token; returns the refresher and the URL to connect
    /// with.
    pub fn start(url: &str, region: &str) -> Result<(TokenRefresh, String), IamError> {
        Self::start_with(url, region, credentials_from_env)
    }
}

impl<E: Into<Box<dyn Error + Send + Sync>>> TokenRefresh<E> {
    /// [`TokenRefresh::start`] with credentials from elsewhere.
    pub fn start_with(
        url: &str,
        region: &str,
        credentials: fn() -> Result<Credentials, E>,
    ) -> Result<(TokenRefresh<E>, String), IamError> {
        let endpoint = endpoint_of(url, region)?;
        let token = sign_now(&endpoint, credentials)?;
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
    pub fn refresh(&self, pool: &sqlx::AnyPool) -> Result<(), IamError> {
        self.refresh_at(pool, Instant::now())
    }

    /// [`TokenRefresh::refresh`] as at `now`.
    pub fn refresh_at(&self, pool: &sqlx::AnyPool, now: Instant) -> Result<(), IamError> {
        let mut issued = self.issued.lock().map_err(|_| IamError::LockPoisoned)?;
        if now.saturating_duration_since(*issued) < REFRESH_AFTER {
            return Ok(());
        }
        let token = sign_now(&self.endpoint, self.credentials)?;
        let options = sqlx::any::AnyConnectOptions::from_str(&url_with_token(&self.url, &token)?)
            .map_err(|_| IamError::TokenUrl)?;
        pool.set_connect_options(options);
        *issued = now;
        Ok(())
    }
}

/// A token for `endpoint`, signed now with what `credentials` returns.
fn sign_now<E: Into<Box<dyn Error + Send + Sync>>>(
    endpoint: &Endpoint,
    credentials: fn() -> Result<Credentials, E>,
) -> Result<String, IamError> {
    let credentials = credentials().map_err(|e| IamError::Credentials(e.into()))?;
    auth_token(endpoint, &credentials, SystemTime::now())
}
