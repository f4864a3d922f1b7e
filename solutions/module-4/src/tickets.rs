//! Step 4.3: tickets, signed with a key that lives in Secrets Manager.
//!
//! A reservation's answer carries a ticket: a compact token the fan shows
//! at the door, which anyone holding the key can check without asking the
//! database. The key is an HMAC-SHA256 key, the `AWSCURRENT` version of a
//! secret. Rotating it must not lock out the fans who already hold a
//! ticket: the door signs with `AWSCURRENT` and accepts `AWSCURRENT` or
//! `AWSPREVIOUS`.
//!
//! A ticket is `<claims>.<signature>`, both base64url without padding; the
//! claims are JSON and name the key's version (`k`), so that the door
//! knows which key to check them with.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use module_2::Booking;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::secrets::{CURRENT, PREVIOUS, SecretCache, SecretError, SecretValue};

type HmacSha256 = Hmac<Sha256>;

/// How many characters of a version id name the key in a ticket.
const KEY_ID_CHARS: usize = 8;

/// A signing key: one version of the secret.
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// The first characters of the secret's version id.
    pub id: String,
    pub stage: &'static str,
    key: SecretString,
}

impl SigningKey {
    pub fn from_secret(secret: &SecretValue, stage: &'static str) -> Result<Self, SecretError> {
        if secret.value.expose_secret().len() < 32 {
            return Err(SecretError::WrongShape {
                id: secret.id.clone(),
                detail: "a signing key needs at least 32 characters".into(),
            });
        }
        Ok(SigningKey {
            id: secret.version_id.chars().take(KEY_ID_CHARS).collect(),
            stage,
            key: secret.value.clone(),
        })
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length")
    }
}

// ANCHOR: claims
/// What a ticket says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The reservation.
    pub r: String,
    /// The event.
    pub e: String,
    /// The seats.
    pub s: Vec<u32>,
    /// The key it was signed with.
    pub k: String,
}

/// Why the door turns a ticket away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("not a ticket: {0}")]
    Malformed(&'static str),
    #[error("the ticket was signed with a key that is no longer accepted")]
    UnknownKey,
    #[error("the ticket's signature does not match")]
    BadSignature,
}
// ANCHOR_END: claims

// ANCHOR: keys
// ANCHOR: load
/// The keys the door knows: the one it signs with, and the one before it.
#[derive(Debug, Clone)]
pub struct TicketKeys {
    pub current: SigningKey,
    pub previous: Option<SigningKey>,
}

impl TicketKeys {
    /// Both stages of `secret_id`, through the cache. A secret never
    /// rotated has no `AWSPREVIOUS`: that is not an error.
    pub async fn load(cache: &SecretCache, secret_id: &str) -> Result<Self, SecretError> {
        let current = cache.get(secret_id, CURRENT).await?;
        let current = SigningKey::from_secret(&current, CURRENT)?;
        let previous = match cache.get_optional(secret_id, PREVIOUS).await? {
            Some(secret) => Some(SigningKey::from_secret(&secret, PREVIOUS)?),
            None => None,
        };
        Ok(TicketKeys { current, previous })
    }
    // ANCHOR_END: load

    // ANCHOR: sign
    /// A ticket for `booking`, signed with the current key.
    pub fn sign(&self, booking: &Booking) -> String {
        //- exercise 4.3
        let claims = Claims {
            r: booking.reservation_id.clone(),
            e: booking.event_id.clone(),
            s: booking.seats.clone(),
            k: self.current.id.clone(),
        };
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims are JSON"));
        let mut mac = self.current.mac();
        mac.update(claims.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{claims}.{signature}")
        //- starter
        //> // TODO (step 4.3): Claims from the booking and the current key's id,
        //> // as JSON in base64url (URL_SAFE_NO_PAD); the HMAC of that text with
        //> // self.current.mac(), in base64url; "<claims>.<signature>".
        //> todo!("step 4.3: sign a ticket")
        //- end
    }
    // ANCHOR_END: sign

    // ANCHOR: verify
    /// The claims of `token`, when one of the keys signed it; and which.
    pub fn verify(&self, token: &str) -> Result<(Claims, &SigningKey), TicketError> {
        //- exercise 4.3
        let (claims_b64, signature_b64) = token
            .split_once('.')
            .ok_or(TicketError::Malformed("no signature"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(claims_b64)
            .map_err(|_| TicketError::Malformed("the claims are not base64url"))?;
        let claims: Claims = serde_json::from_slice(&bytes)
            .map_err(|_| TicketError::Malformed("the claims are not a ticket's"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| TicketError::Malformed("the signature is not base64url"))?;
        let key = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|key| key.id == claims.k)
            .ok_or(TicketError::UnknownKey)?;
        let mut mac = key.mac();
        mac.update(claims_b64.as_bytes());
        // Compares in constant time: how long a wrong signature takes to
        // refuse says nothing about how close it was.
        mac.verify_slice(&signature)
            .map_err(|_| TicketError::BadSignature)?;
        Ok((claims, key))
        //- starter
        //> // TODO (step 4.3): split at '.', decode both halves (Malformed when they
        //> // are not base64url or the claims not JSON), pick the key named by
        //> // claims.k among current and previous (UnknownKey), and check the HMAC
        //> // of the first half with mac.verify_slice (BadSignature).
        //> todo!("step 4.3: verify a ticket")
        //- end
    }
    // ANCHOR_END: verify
}
// ANCHOR_END: keys
