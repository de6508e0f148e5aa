//! Saved browser sessions are sealed with AES-256-GCM before they reach the database, with
//! the tenant and session name as associated data (a sealed blob copied under another name
//! does not open). The key never leaves the server; workers get the plain session only for
//! a job they hold the lease of.

use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};

/// The first byte of every sealed blob: the format (AES-256-GCM, 96-bit random nonce).
const VERSION: u8 = 1;
pub const KEY_LEN: usize = 32;

/// The server's session key.
#[derive(Clone)]
pub struct SealingKey([u8; KEY_LEN]);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(…)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a session key is {KEY_LEN} bytes, written as 64 hex digits")]
    BadKey,
    #[error("the sealed session does not open with this server's key")]
    Open,
}

impl SealingKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_LEN];
        // SystemRandom reads the OS generator; it fails only if the OS has none.
        if SystemRandom::new().fill(&mut key).is_err() {
            panic!("the operating system's random generator is unavailable");
        }
        Self(key)
    }

    /// A key written as 64 hex digits.
    pub fn from_hex(text: &str) -> Result<Self, SealError> {
        let bytes = hex::decode(text.trim()).map_err(|_| SealError::BadKey)?;
        let key: [u8; KEY_LEN] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(Self(key))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A key for another purpose, derived from this one (HMAC-SHA256 of `label`), so one
    /// configured secret serves every use without the uses sharing a key.
    pub(crate) fn derive(&self, label: &str) -> ring::hmac::Key {
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0),
            label.as_bytes(),
        );
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, tag.as_ref())
    }

    fn key(&self) -> LessSafeKey {
        // 32 bytes is always a valid AES-256 key.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.0).expect("a 32-byte key"))
    }

    /// `VERSION ‖ nonce ‖ ciphertext+tag`.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        if SystemRandom::new().fill(&mut nonce).is_err() {
            panic!("the operating system's random generator is unavailable");
        }
        let mut data = plain.to_vec();
        self.key()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .expect("sealing fits in memory");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + data.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        out
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(SealError::Open);
        }
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN]
            .try_into()
            .map_err(|_| SealError::Open)?;
        let mut data = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key()
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .map_err(|_| SealError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_sessions_open_only_with_their_key_and_name() {
        let key = SealingKey::generate();
        let sealed = key.seal("t/shop-1", b"{\"cookies\":[]}");
        assert!(!sealed.windows(7).any(|w| w == b"cookies"));
        assert_eq!(
            key.open("t/shop-1", &sealed).expect("open"),
            b"{\"cookies\":[]}"
        );
        assert!(key.open("t/shop-2", &sealed).is_err());
        assert!(SealingKey::generate().open("t/shop-1", &sealed).is_err());
        let again = SealingKey::from_hex(&key.to_hex()).expect("hex");
        assert!(again.open("t/shop-1", &sealed).is_ok());
        assert!(SealingKey::from_hex("abcd").is_err());
    }
}
