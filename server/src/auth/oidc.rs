//! Browser sign-in with OpenID Connect: the authorization code flow with
//! PKCE (S256), the provider found through discovery, and the `id_token`
//! checked here: its signature against the provider's JWKS (RS256 or
//! ES256), then issuer, audience, expiry and nonce. The user is the
//! configured claim (`email` by default, with an optional prefix), their
//! groups the groups claim; what they may do is still the cluster's RBAC for
//! that user and those groups.
//!
//! Everything the provider sends is untrusted: documents are read with a
//! size cap, and nothing is used before it is checked.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Principal, SignIn};
use crate::catalog::{Catalog, OidcPendingRecord};

/// How long a sign-in may wait at the provider.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// How long discovery and keys are reused before they are fetched again.
const METADATA_TTL: Duration = Duration::from_secs(300);
/// The most read of any document from the provider.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Clock skew allowed on `exp`, `iat` and `nbf`.
const SKEW_SECONDS: i64 = 60;

/// The `[auth.oidc]` settings.
#[derive(Clone, Debug)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Where the provider sends the browser back: `<Lifeboat's URL>/login/oidc/callback`.
    pub redirect_url: String,
    pub scopes: Vec<String>,
    pub username_claim: String,
    pub groups_claim: String,
    /// Put before every username (`oidc:`), so they cannot pass for cluster users.
    pub username_prefix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the OpenID provider could not be reached or answered badly: {0}")]
    Provider(String),
    #[error("the sign-in was refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
}

#[derive(Clone, Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Clone, Debug, Deserialize)]
struct Jwks {
    keys: Vec<Value>,
}

pub struct OidcClient {
    settings: OidcSettings,
    catalog: Catalog,
    http: reqwest::Client,
    discovery: RwLock<Option<(Instant, Discovery)>>,
    jwks: RwLock<Option<(Instant, Jwks)>>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64url(text: &str) -> Result<Vec<u8>, OidcError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| OidcError::Refused(format!("the id_token is not base64url: {e}")))
}

fn random() -> String {
    b64url(&rand::random::<[u8; 32]>())
}

fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl OidcClient {
    pub fn new(settings: OidcSettings, catalog: Catalog) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            settings,
            catalog,
            http,
            discovery: RwLock::new(None),
            jwks: RwLock::new(None),
        }
    }

    /// A JSON document from the provider, at most `MAX_DOCUMENT_BYTES`.
    async fn read_json(response: reqwest::Response) -> Result<Value, OidcError> {
        let status = response.status();
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| OidcError::Provider(e.to_string()))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(OidcError::Provider(format!(
                    "an answer larger than {MAX_DOCUMENT_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let value: Value = serde_json::from_slice(&body).map_err(|e| {
            OidcError::Provider(format!("an answer that is not JSON ({status}): {e}"))
        })?;
        if !status.is_success() {
            let error = value["error_description"]
                .as_str()
                .or(value["error"].as_str())
                .unwrap_or("no details");
            return Err(OidcError::Refused(format!("{status}: {error}")));
        }
        Ok(value)
    }

    async fn discovery(&self) -> Result<Discovery, OidcError> {
        if let Ok(cached) = self.discovery.read()
            && let Some((at, d)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(d.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        let document: Discovery = serde_json::from_value(Self::read_json(response).await?)
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        // The provider must call itself what it was configured as.
        if document.issuer.trim_end_matches('/') != self.settings.issuer.trim_end_matches('/') {
            return Err(OidcError::Provider(format!(
                "{url} names the issuer {}, not the configured {}",
                document.issuer, self.settings.issuer
            )));
        }
        if let Ok(mut cached) = self.discovery.write() {
            *cached = Some((Instant::now(), document.clone()));
        }
        Ok(document)
    }

    async fn keys(&self, refresh: bool) -> Result<Jwks, OidcError> {
        if !refresh
            && let Ok(cached) = self.jwks.read()
            && let Some((at, k)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(k.clone());
        }
        let uri = self.discovery().await?.jwks_uri;
        let response = self
            .http
            .get(&uri)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("{uri}: {e}")))?;
        let keys: Jwks = serde_json::from_value(Self::read_json(response).await?)
            .map_err(|e| OidcError::Provider(format!("{uri}: {e}")))?;
        if let Ok(mut cached) = self.jwks.write() {
            *cached = Some((Instant::now(), keys.clone()));
        }
        Ok(keys)
    }

    /// Begins a sign-in: records state, nonce and PKCE verifier, and returns
    /// the provider's URL to send the browser to.
    pub async fn start(&self, next: &str) -> Result<String, OidcError> {
        let d = self.discovery().await?;
        let (state, nonce, verifier) = (random(), random(), random());
        let challenge = b64url(&Sha256::digest(verifier.as_bytes()));
        let expires = Utc::now()
            + chrono::Duration::from_std(PENDING_TTL).unwrap_or(chrono::Duration::minutes(10));
        self.catalog
            .insert_oidc_pending(
                &OidcPendingRecord {
                    state_hash: hash(&state),
                    nonce: nonce.clone(),
                    verifier,
                    next: next.to_string(),
                    expires_at: expires.to_rfc3339_opts(SecondsFormat::Millis, true),
                },
                &now_text(),
            )
            .await?;
        let mut url = url::Url::parse(&d.authorization_endpoint)
            .map_err(|e| OidcError::Provider(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_url)
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.to_string())
    }

    /// Finishes a sign-in with the provider's answer: the principal, and
    /// where the browser was going.
    pub async fn finish(&self, code: &str, state: &str) -> Result<(Principal, String), OidcError> {
        let pending = self
            .catalog
            .take_oidc_pending(&hash(state), &now_text())
            .await?
            .ok_or_else(|| {
                OidcError::Refused(
                    "this sign-in is unknown, used or older than ten minutes; sign in again".into(),
                )
            })?;
        let d = self.discovery().await?;
        let response = self
            .http
            .post(&d.token_endpoint)
            .basic_auth(&self.settings.client_id, Some(&self.settings.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.settings.redirect_url.as_str()),
                ("code_verifier", pending.verifier.as_str()),
            ])
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("{}: {e}", d.token_endpoint)))?;
        let tokens = Self::read_json(response).await?;
        let id_token = tokens["id_token"]
            .as_str()
            .ok_or_else(|| OidcError::Refused("the provider sent no id_token".into()))?;
        let claims = self.verify(id_token, &d.issuer, &pending.nonce).await?;
        Ok((self.principal(&claims)?, pending.next))
    }

    /// Checks an `id_token`'s signature and claims; returns the claims.
    async fn verify(&self, token: &str, issuer: &str, nonce: &str) -> Result<Value, OidcError> {
        let refused = |why: String| OidcError::Refused(why);
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts.as_slice() else {
            return Err(refused("the id_token is not a JWS".into()));
        };
        let header: Value = serde_json::from_slice(&unb64url(header)?)
            .map_err(|e| refused(format!("the id_token's header: {e}")))?;
        let claims: Value = serde_json::from_slice(&unb64url(payload)?)
            .map_err(|e| refused(format!("the id_token's claims: {e}")))?;
        let signature = unb64url(signature)?;
        let signed = format!("{}.{}", parts[0], parts[1]);
        let alg = header["alg"].as_str().unwrap_or_default();
        let kid = header["kid"].as_str();
        let mut verified = false;
        for refresh in [false, true] {
            let keys = self.keys(refresh).await?;
            let candidates: Vec<&Value> = keys
                .keys
                .iter()
                .filter(|k| kid.is_none_or(|kid| k["kid"].as_str() == Some(kid)))
                .collect();
            if candidates.is_empty() {
                // A key the provider has rotated in since: fetch them again, once.
                continue;
            }
            verified = candidates
                .iter()
                .any(|k| check_signature(alg, k, signed.as_bytes(), &signature));
            break;
        }
        if !verified {
            return Err(refused(format!(
                "the id_token's signature ({alg}) does not verify with the provider's keys"
            )));
        }
        check_claims(
            &claims,
            issuer,
            &self.settings.client_id,
            nonce,
            Utc::now().timestamp(),
        )?;
        Ok(claims)
    }

    fn principal(&self, claims: &Value) -> Result<Principal, OidcError> {
        principal_from(&self.settings, claims)
    }
}

/// The principal the claims name. Kubernetes' reserved `system:` names
/// cannot come from a provider: such a username is refused and such groups
/// are dropped, or whoever controls a groups claim could claim
/// `system:masters` (restores impersonate the principal).
fn principal_from(s: &OidcSettings, claims: &Value) -> Result<Principal, OidcError> {
    let name = claims[s.username_claim.as_str()]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            OidcError::Refused(format!(
                "the id_token has no `{}` claim to name the user by (auth.oidc.username_claim)",
                s.username_claim
            ))
        })?;
    let username = format!("{}{name}", s.username_prefix);
    if username.starts_with("system:") {
        return Err(OidcError::Refused(format!(
            "the provider names the user {username:?}, a name Kubernetes reserves; set auth.oidc.username_prefix"
        )));
    }
    let mut groups: Vec<String> = match &claims[s.groups_claim.as_str()] {
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Value::String(one) => vec![one.clone()],
        _ => Vec::new(),
    };
    groups.retain(|g| !g.starts_with("system:"));
    groups.push("system:authenticated".into());
    Ok(Principal {
        username,
        uid: claims["sub"].as_str().unwrap_or_default().to_string(),
        groups,
        method: SignIn::Oidc,
        node: None,
    })
}

/// The id_token's claims against what this sign-in expects: the issuer,
/// this client among the audiences, not expired (nor not yet valid), and
/// the nonce sent with the sign-in.
fn check_claims(
    claims: &Value,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<(), OidcError> {
    let refused = |why: String| Err(OidcError::Refused(why));
    if claims["iss"].as_str().map(|i| i.trim_end_matches('/')) != Some(issuer.trim_end_matches('/'))
    {
        return refused(format!("the id_token was issued by {}", claims["iss"]));
    }
    let audience_ok = match &claims["aud"] {
        Value::String(a) => a == client_id,
        Value::Array(list) => list.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience_ok {
        return refused(format!(
            "the id_token is for {}, not for this client",
            claims["aud"]
        ));
    }
    match claims["exp"].as_i64() {
        Some(exp) if exp + SKEW_SECONDS > now => {}
        _ => return refused("the id_token has expired".into()),
    }
    if claims["nbf"]
        .as_i64()
        .is_some_and(|nbf| nbf - SKEW_SECONDS > now)
    {
        return refused("the id_token is not valid yet".into());
    }
    if claims["nonce"].as_str() != Some(nonce) {
        return refused("the id_token's nonce is not this sign-in's".into());
    }
    Ok(())
}

/// Whether `signature` over `message` verifies with the JWK `key` for `alg`.
fn check_signature(alg: &str, key: &Value, message: &[u8], signature: &[u8]) -> bool {
    use aws_lc_rs::signature;
    let field = |name: &str| {
        key[name]
            .as_str()
            .and_then(|v| unb64url(v).ok())
            .unwrap_or_default()
    };
    match (alg, key["kty"].as_str()) {
        ("RS256", Some("RSA")) => {
            let (n, e) = (field("n"), field("e"));
            signature::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .is_ok()
        }
        ("ES256", Some("EC")) if key["crv"] == "P-256" => {
            let mut point = vec![0x04];
            point.extend(field("x"));
            point.extend(field("y"));
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, signature)
                .is_ok()
        }
        // `none`, HMAC (which would make the client secret a signing key) and the rest.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_must_name_the_issuer_the_client_the_time_and_the_nonce() {
        let good = serde_json::json!({"iss": "https://id.example/", "aud": ["other", "lifeboat"],
            "exp": 2000, "nonce": "n1", "sub": "alice"});
        let check = |c: &Value| check_claims(c, "https://id.example", "lifeboat", "n1", 1000);
        assert!(check(&good).is_ok());
        for (field, value) in [
            ("iss", serde_json::json!("https://evil.example")),
            ("aud", serde_json::json!("someone-else")),
            ("exp", serde_json::json!(900)),
            ("nbf", serde_json::json!(1500)),
            ("nonce", serde_json::json!("replayed")),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            assert!(check(&bad).is_err(), "{field} was accepted");
        }
        let mut no_nonce = good.clone();
        no_nonce.as_object_mut().unwrap().remove("nonce");
        assert!(check(&no_nonce).is_err());
    }

    #[test]
    fn reserved_names_cannot_come_from_the_provider() {
        let settings = OidcSettings {
            issuer: "https://id.example".into(),
            client_id: "lifeboat".into(),
            client_secret: String::new(),
            redirect_url: "https://lifeboat.example/login/oidc/callback".into(),
            scopes: vec!["openid".into()],
            username_claim: "email".into(),
            groups_claim: "groups".into(),
            username_prefix: String::new(),
        };
        let who = principal_from(
            &settings,
            &serde_json::json!({"sub": "u1", "email": "eve@example.com",
                                "groups": ["devs", "system:masters", "system:nodes"]}),
        )
        .expect("a principal");
        assert_eq!(who.username, "eve@example.com");
        assert_eq!(who.groups, ["devs", "system:authenticated"]);
        assert_eq!(who.uid, "u1");
        let one_group = principal_from(
            &settings,
            &serde_json::json!({"email": "a@example.com", "groups": "ops"}),
        )
        .expect("a principal");
        assert_eq!(one_group.groups, ["ops", "system:authenticated"]);
        assert!(
            principal_from(
                &settings,
                &serde_json::json!({"email": "system:admin", "groups": []})
            )
            .is_err()
        );
        assert!(principal_from(&settings, &serde_json::json!({"groups": []})).is_err());
    }

    #[test]
    fn an_es256_signature_verifies_with_its_key_only() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let jwk_of = |key: &EcdsaKeyPair| {
            let point = key.public_key().as_ref().to_vec();
            serde_json::json!({"kty": "EC", "crv": "P-256",
                "x": b64url(&point[1..33]), "y": b64url(&point[33..65])})
        };
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let message = b"header.claims";
        let signature = key.sign(&rng, message).unwrap();
        assert!(check_signature(
            "ES256",
            &jwk_of(&key),
            message,
            signature.as_ref()
        ));
        assert!(!check_signature(
            "ES256",
            &jwk_of(&key),
            b"header.other",
            signature.as_ref()
        ));
        let stranger = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        assert!(!check_signature(
            "ES256",
            &jwk_of(&stranger),
            message,
            signature.as_ref()
        ));
    }

    #[test]
    fn only_asymmetric_algorithms_with_matching_keys_verify() {
        let rsa = serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        assert!(!check_signature("none", &rsa, b"m", b""));
        assert!(!check_signature("HS256", &rsa, b"m", b"sig"));
        // An EC algorithm with an RSA key, and a bogus RSA key, never verify.
        assert!(!check_signature("ES256", &rsa, b"m", b"sig"));
        assert!(!check_signature("RS256", &rsa, b"m", b"sig"));
    }
}
