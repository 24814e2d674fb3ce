//! A location's archive key: what encrypts its backups' resource archives
//! (the `age` format, X25519) and signs their manifests (HMAC-SHA-256).
//!
//! Both come from the location's one recovery key (the one that also opens
//! its volume repository), so a user keeps one secret per location:
//! - a recovery key that is itself an age identity (`AGE-SECRET-KEY-1…`, what
//!   new locations get) is used as it is, so `age -d -i recovery.key` reads
//!   the archive without Lifeboat;
//! - any other recovery key (the hex keys of earlier installs) yields an
//!   identity through HKDF-SHA-256, printed by `lifeboat location
//!   archive-identity --key-file F` for the same use.
//!
//! The signing key is always derived through HKDF, apart from the identity.
//! The manifest records the cipher and the key's id (the public age
//! recipient, `age1…`), never the key.

use std::io::{Read, Write};

use age::secrecy::ExposeSecret;
use bech32::ToBase32;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The cipher a manifest names for an encrypted archive.
pub const CIPHER: &str = "age-x25519";
/// The signature algorithm a `manifest.sig` names.
pub const SIGNATURE_ALGORITHM: &str = "HMAC-SHA-256";

const IDENTITY_INFO: &[u8] = b"lifeboat archive identity v1";
const SIGNING_INFO: &[u8] = b"lifeboat manifest signature v1";
const AGE_SECRET_PREFIX: &str = "AGE-SECRET-KEY-1";

/// Why an archive could not be encrypted, decrypted or checked.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the recovery key is not usable: {0}")]
    BadKey(String),
    #[error(
        "this archive is encrypted to key {expected}, and the key given is {given}: supply the \
         recovery key of the location the backup was written to"
    )]
    WrongKey { expected: String, given: String },
    #[error("decrypting failed: {0}")]
    Decrypt(String),
}

/// How a manifest says its archive is encrypted.
pub use frontend::model::Encryption;

/// `manifest.sig`: the manifest's bytes, signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signature {
    /// [`SIGNATURE_ALGORITHM`].
    pub algorithm: String,
    pub key_id: String,
    /// Hex HMAC-SHA-256 of `manifest.json` exactly as stored.
    pub signature: String,
}

/// A location's archive key, from its recovery key. Never logged: its Debug
/// shows only the key id.
#[derive(Clone)]
pub struct ArchiveKey {
    identity: age::x25519::Identity,
    key_id: String,
    signing: [u8; 32],
}

impl std::fmt::Debug for ArchiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArchiveKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn hkdf(key: &str, info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(b"lifeboat"), key.as_bytes())
        .expand(info, &mut out)
        .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA-256 length"));
    out
}

/// A fresh recovery key: an age identity (`AGE-SECRET-KEY-1…`).
pub fn generate_recovery_key() -> String {
    age::x25519::Identity::generate()
        .to_string()
        .expose_secret()
        .to_string()
}

impl ArchiveKey {
    pub fn from_recovery_key(recovery_key: &str) -> Result<Self, CryptoError> {
        let recovery_key = recovery_key.trim();
        if recovery_key.is_empty() {
            return Err(CryptoError::BadKey("it is empty".into()));
        }
        let identity = if recovery_key.starts_with(AGE_SECRET_PREFIX) {
            recovery_key
                .parse::<age::x25519::Identity>()
                .map_err(|e| CryptoError::BadKey(format!("not an age identity: {e}")))?
        } else {
            let bytes = hkdf(recovery_key, IDENTITY_INFO);
            let encoded = bech32::encode(
                "age-secret-key-",
                bytes.to_base32(),
                bech32::Variant::Bech32,
            )
            .map_err(|e| CryptoError::BadKey(e.to_string()))?;
            encoded
                .to_uppercase()
                .parse::<age::x25519::Identity>()
                .map_err(|e| CryptoError::BadKey(e.to_string()))?
        };
        Ok(Self {
            key_id: identity.to_public().to_string(),
            identity,
            signing: hkdf(recovery_key, SIGNING_INFO),
        })
    }

    /// The public age recipient: the key's id in manifests and messages.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The age identity (`AGE-SECRET-KEY-1…`) that decrypts the archives,
    /// for `age -d -i`. A secret: shown only to whoever holds the recovery key.
    pub fn identity_secret(&self) -> String {
        self.identity.to_string().expose_secret().to_string()
    }

    /// What a manifest records for archives this key encrypts.
    pub fn encryption(&self) -> Encryption {
        Encryption {
            cipher: CIPHER.into(),
            key_id: self.key_id.clone(),
        }
    }

    /// An age writer over `output`: `finish` it to write the last chunk.
    pub fn encrypting<W: Write>(&self, output: W) -> std::io::Result<age::stream::StreamWriter<W>> {
        let recipient = self.identity.to_public();
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(std::io::Error::other)?
            .wrap_output(output)
    }

    /// An age reader over `input`, checked against `encryption` first.
    pub fn decrypting<R: Read>(
        &self,
        input: R,
        encryption: &Encryption,
    ) -> Result<age::stream::StreamReader<R>, CryptoError> {
        if encryption.cipher != CIPHER {
            return Err(CryptoError::Decrypt(format!(
                "the cipher `{}` is not one this Lifeboat reads ({CIPHER})",
                encryption.cipher
            )));
        }
        if encryption.key_id != self.key_id {
            return Err(CryptoError::WrongKey {
                expected: encryption.key_id.clone(),
                given: self.key_id.clone(),
            });
        }
        age::Decryptor::new(input)
            .and_then(|d| d.decrypt(std::iter::once(&self.identity as &dyn age::Identity)))
            .map_err(|e| CryptoError::Decrypt(e.to_string()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.signing)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"))
    }

    /// Signs a manifest's bytes.
    pub fn sign(&self, manifest: &[u8]) -> Signature {
        let mut mac = self.mac();
        mac.update(manifest);
        Signature {
            algorithm: SIGNATURE_ALGORITHM.into(),
            key_id: self.key_id.clone(),
            signature: hex::encode(mac.finalize().into_bytes()),
        }
    }

    /// Whether `signature` is this key's signature of `manifest` (in constant time).
    pub fn verify(&self, manifest: &[u8], signature: &Signature) -> bool {
        let Ok(tag) = hex::decode(&signature.signature) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(manifest);
        signature.algorithm == SIGNATURE_ALGORITHM && mac.verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_round_trip_and_only_their_key_opens_them() {
        let key = ArchiveKey::from_recovery_key(&generate_recovery_key()).expect("key");
        let mut sealed = Vec::new();
        let mut writer = key.encrypting(&mut sealed).expect("writer");
        writer.write_all(b"secret payload").expect("write");
        writer.finish().expect("finish");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        let mut plain = Vec::new();
        key.decrypting(sealed.as_slice(), &key.encryption())
            .expect("decrypts")
            .read_to_end(&mut plain)
            .expect("reads");
        assert_eq!(plain, b"secret payload");

        let other = ArchiveKey::from_recovery_key("0123abcd-legacy-hex-key").expect("derived");
        assert!(matches!(
            other.decrypting(sealed.as_slice(), &key.encryption()),
            Err(CryptoError::WrongKey { .. })
        ));
        // A manifest that names the other key does not make it work either.
        assert!(
            other
                .decrypting(sealed.as_slice(), &other.encryption())
                .is_err()
        );
        // One flipped byte in the ciphertext is refused, not returned.
        let mut damaged = sealed.clone();
        let last = damaged.len() - 3;
        damaged[last] ^= 1;
        let mut out = Vec::new();
        let read = key
            .decrypting(damaged.as_slice(), &key.encryption())
            .map(|mut r| r.read_to_end(&mut out));
        assert!(!matches!(read, Ok(Ok(_))), "damage went unnoticed");
    }

    #[test]
    fn derived_identities_are_stable_and_age_identities_are_kept() {
        let a = ArchiveKey::from_recovery_key("4f2a-legacy").expect("derived");
        let b = ArchiveKey::from_recovery_key(" 4f2a-legacy\n").expect("derived");
        assert_eq!(a.key_id(), b.key_id());
        assert!(a.key_id().starts_with("age1"));
        let recovery = generate_recovery_key();
        let kept = ArchiveKey::from_recovery_key(&recovery).expect("age key");
        assert_eq!(kept.identity_secret(), recovery);
        assert!(
            !format!("{kept:?}").contains(&recovery),
            "Debug shows the secret"
        );
        assert!(ArchiveKey::from_recovery_key("AGE-SECRET-KEY-1NOTVALID").is_err());
        assert!(ArchiveKey::from_recovery_key("  ").is_err());
    }

    #[test]
    fn signatures_name_any_change() {
        let key = ArchiveKey::from_recovery_key("sig-key").expect("key");
        let manifest = br#"{"name":"nightly"}"#;
        let signature = key.sign(manifest);
        assert!(key.verify(manifest, &signature));
        assert!(!key.verify(br#"{"name":"nightlz"}"#, &signature));
        let other = ArchiveKey::from_recovery_key("another-key").expect("key");
        assert!(!other.verify(manifest, &signature));
        let mut forged = signature.clone();
        forged.signature = "00".repeat(32);
        assert!(!key.verify(manifest, &forged));
    }
}
