//! A bearer token and the session that keeps one fresh: a token is renewed once half of its
//! lifetime has passed (before it expires, so no request is sent with an expired token), and a
//! token the key manager refused is dropped so that the next call obtains a new one.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use zeroize::Zeroizing;

/// A bearer token (wiped on drop, never shown by `Debug`) and when it is due for renewal.
pub struct Token {
    secret: Zeroizing<String>,
    obtained: Instant,
    lifetime: Duration,
}

impl Token {
    /// A token obtained now that is valid for `lifetime`.
    pub fn new(secret: String, lifetime: Duration) -> Self {
        Self {
            secret: Zeroizing::new(secret),
            obtained: Instant::now(),
            lifetime,
        }
    }

    /// The token, for the authorization header.
    pub fn expose(&self) -> &str {
        &self.secret
    }

    /// How long it was valid for when obtained.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Whether half of its lifetime has passed.
    pub fn due(&self) -> bool {
        self.obtained.elapsed() >= self.lifetime / 2
    }

    /// Whether it has expired.
    pub fn expired(&self) -> bool {
        self.obtained.elapsed() >= self.lifetime
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("secret", &"[REDACTED]")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// The current token of a store. One caller at a time renews it; the others wait and use the
/// new one.
#[derive(Debug, Default)]
pub struct Session {
    slot: tokio::sync::Mutex<Option<Arc<Token>>>,
}

impl Session {
    /// A session without a token.
    pub fn new() -> Self {
        Self::default()
    }

    /// A session that starts with `token`.
    pub fn with(token: Token) -> Self {
        Self {
            slot: tokio::sync::Mutex::new(Some(Arc::new(token))),
        }
    }

    /// The current token; when there is none or it is due, `refresh(old)` obtains a new one
    /// (renewing `old` or logging in again, as the backend does).
    pub async fn token<F, Fut, E>(&self, refresh: F) -> Result<Arc<Token>, E>
    where
        F: FnOnce(Option<Arc<Token>>) -> Fut,
        Fut: Future<Output = Result<Token, E>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(token) = slot.as_ref()
            && !token.due()
        {
            return Ok(Arc::clone(token));
        }
        let token = Arc::new(refresh(slot.clone()).await?);
        *slot = Some(Arc::clone(&token));
        Ok(token)
    }

    /// Drops `token` if it is still the current one (the key manager refused it).
    pub async fn invalidate(&self, token: &Arc<Token>) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, token)) {
            *slot = None;
        }
    }

    /// Takes the current token out (on close).
    pub async fn take(&self) -> Option<Arc<Token>> {
        self.slot.lock().await.take()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_token_is_renewed_at_half_its_lifetime_and_after_a_refusal() {
        let session = Session::new();
        let calls = std::sync::atomic::AtomicU32::new(0);
        let get = || async {
            session
                .token(|old| {
                    let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async move {
                        Ok::<_, ()>(Token::new(
                            format!("t{n}-{}", old.is_some()),
                            Duration::from_secs(10),
                        ))
                    }
                })
                .await
                .unwrap()
        };
        assert_eq!(get().await.expose(), "t0-false");
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(get().await.expose(), "t0-false");
        tokio::time::advance(Duration::from_secs(1)).await;
        let t = get().await;
        assert_eq!(t.expose(), "t1-true");
        session.invalidate(&t).await;
        assert_eq!(get().await.expose(), "t2-false");
        assert!(!format!("{t:?}").contains("t1"));
    }
}
