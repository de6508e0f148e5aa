//! Webhooks of a tenant: registered with a URL, event types, kind patterns and a secret
//! (sealed at rest, never answered back), listed, removed; their delivery log, and the
//! replay of a dead delivery. `services::WebhookSender` makes the deliveries.

use ferry_core::{
    DeliveryId, FieldError, KindPattern, WebhookId,
    api::{DeliveryInfo, EVENT_TYPES, WebhookInfo, WebhookSpec},
};
use ferry_store::WebhookRow;

use super::{AppError, AppResult, Principal};
use crate::{Queue, services::webhooks_secret_context};

const MAX_WEBHOOKS: usize = 100;
/// The most kind patterns one webhook filters on (each is a condition when its events
/// are read; thousands made the query too deep to run).
pub const MAX_WEBHOOK_KINDS: usize = 100;

/// The webhooks of the principal's tenant.
#[derive(Debug, Clone, Copy)]
pub struct Webhooks<'q>(pub(super) &'q Queue);

fn info(row: &WebhookRow) -> WebhookInfo {
    WebhookInfo {
        id: row.id,
        url: row.url.clone(),
        events: row.events.clone(),
        kinds: row.kinds.clone(),
        created_at: row.created_at,
    }
}

fn check(spec: &WebhookSpec) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let url = spec.url.trim();
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok
        || url.len() > 2048
        || url.contains(char::is_whitespace)
        || url.split("://").nth(1).is_none_or(|rest| rest.is_empty())
    {
        errors.push(FieldError::new("url", "an http(s) URL"));
    }
    if spec.events.is_empty() {
        errors.push(FieldError::new(
            "events",
            format!("at least one of {}", EVENT_TYPES.join(", ")),
        ));
    }
    for (i, e) in spec.events.iter().enumerate() {
        if !EVENT_TYPES.contains(&e.as_str()) {
            errors.push(FieldError::new(
                format!("events[{i}]"),
                format!(
                    "{e:?} is not an event type; known: {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    if spec.kinds.len() > MAX_WEBHOOK_KINDS {
        errors.push(FieldError::new(
            "kinds",
            format!("at most {MAX_WEBHOOK_KINDS} kind patterns"),
        ));
    }
    for (i, k) in spec.kinds.iter().enumerate().take(MAX_WEBHOOK_KINDS) {
        if let Err(e) = k.parse::<KindPattern>() {
            errors.push(FieldError::new(format!("kinds[{i}]"), e.to_string()));
        }
    }
    if !(16..=256).contains(&spec.secret.len()) {
        errors.push(FieldError::new("secret", "16 to 256 bytes"));
    }
    errors
}

impl Webhooks<'_> {
    /// Registers a webhook for the events recorded from now on.
    pub async fn create(&self, who: &Principal, spec: WebhookSpec) -> AppResult<WebhookInfo> {
        let mut errors = check(&spec);
        let queue = self.0;
        // What can be told before delivering: an address written in the URL, a denied
        // name (names are resolved and checked at each delivery).
        if errors.is_empty()
            && let Ok(url) = reqwest::Url::parse(spec.url.trim())
            && let Err(denied) = ferry_egress::check_url(&queue.egress_of(&who.tenant).await?, &url)
        {
            errors.push(FieldError::new("url", denied.to_string()));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let store = queue.store();
        if store.webhook_list(Some(&who.tenant)).await?.len() >= MAX_WEBHOOKS {
            return Err(AppError::Conflict(format!(
                "at most {MAX_WEBHOOKS} webhooks"
            )));
        }
        let id = WebhookId::new();
        let row = WebhookRow {
            id,
            tenant_id: who.tenant.to_string(),
            url: spec.url.trim().to_owned(),
            sealed_secret: queue.config().sealing_key.seal(
                &webhooks_secret_context(&who.tenant, id),
                spec.secret.as_bytes(),
            ),
            events: spec.events,
            kinds: spec.kinds,
            cursor: store.events_head().await?,
            created_at: queue.now(),
        };
        let audit = who
            .audit(row.created_at, "webhook.create", format!("webhook:{id}"))
            .with_detail(serde_json::json!({
                "url": row.url, "events": row.events, "kinds": row.kinds,
            }));
        store.webhook_insert(&row, &audit).await?;
        Ok(info(&row))
    }

    pub async fn list(&self, who: &Principal) -> AppResult<Vec<WebhookInfo>> {
        let rows = self.0.store().webhook_list(Some(&who.tenant)).await?;
        Ok(rows.iter().map(info).collect())
    }

    pub async fn delete(&self, who: &Principal, id: WebhookId) -> AppResult<()> {
        if self
            .0
            .store()
            .webhook_delete(
                &who.tenant,
                id,
                &who.audit(self.0.now(), "webhook.delete", format!("webhook:{id}")),
            )
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound("webhook"))
        }
    }

    /// The webhook's last `limit` deliveries, newest first.
    pub async fn deliveries(
        &self,
        who: &Principal,
        id: WebhookId,
        limit: u32,
    ) -> AppResult<Vec<DeliveryInfo>> {
        self.0
            .store()
            .delivery_list(&who.tenant, id, limit)
            .await?
            .ok_or(AppError::NotFound("webhook"))
    }

    /// Sends a dead delivery again (a live one is still being tried: a conflict).
    pub async fn replay(
        &self,
        who: &Principal,
        id: WebhookId,
        delivery: DeliveryId,
    ) -> AppResult<()> {
        let store = self.0.store();
        if store
            .delivery_replay(
                &who.tenant,
                id,
                delivery,
                self.0.now(),
                &who.audit(
                    self.0.now(),
                    "webhook.replay",
                    format!("delivery:{delivery}"),
                ),
            )
            .await?
        {
            return Ok(());
        }
        let known = store
            .delivery_list(&who.tenant, id, 1000)
            .await?
            .is_some_and(|all| all.iter().any(|d| d.id == delivery));
        if known {
            Err(AppError::Conflict(
                "only a dead delivery can be replayed".into(),
            ))
        } else {
            Err(AppError::NotFound("delivery"))
        }
    }
}
