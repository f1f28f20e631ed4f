//! Webhooks (docs/protocol.md §8): subscriptions, Standard Webhooks signing, the SSRF guard and the
//! at-least-once dispatcher that every node runs.

mod addresses;
mod dispatcher;
pub mod guard;
pub mod signing;

pub use dispatcher::Dispatcher;

use crate::domain::{EventFilter, Id, Subscription, Timestamp};
use crate::domain::{EventType, Role};
use crate::error::{Error, Result};
use crate::service::{Access, Principal};
use crate::store::WebhookStore;
use std::sync::Arc;

/// What a `POST` or `PUT` of a subscription may carry.
#[derive(Debug, Default)]
pub struct SubscriptionPatch {
    pub event: Option<String>,
    pub target: Option<String>,
    pub enabled: Option<bool>,
}

/// Subscription rules shared by every API family.
#[derive(Clone)]
pub struct WebhookSubscriptions {
    store: Arc<dyn WebhookStore>,
    allow_private: bool,
}

impl WebhookSubscriptions {
    pub fn new(store: Arc<dyn WebhookStore>, allow_private: bool) -> Self {
        WebhookSubscriptions {
            store,
            allow_private,
        }
    }

    /// Creates a subscription (admin+) with its own fresh secret.
    pub async fn create(&self, access: &Access, patch: SubscriptionPatch) -> Result<Subscription> {
        access.require(Role::Admin)?;
        let event = parse_event(
            patch
                .event
                .as_deref()
                .ok_or_else(|| Error::bad_request("event is required"))?,
        )?;
        let target = patch
            .target
            .ok_or_else(|| Error::bad_request("target is required"))?;
        self.check(&target).await?;
        let now = Timestamp::now();
        let subscription = Subscription {
            id: crate::domain::new_id(),
            project_id: access.project.id,
            event,
            target,
            secret: signing::new_secret(),
            enabled: patch.enabled.unwrap_or(true),
            created_by: Some(match &access.principal {
                Principal::User(u) => u.id,
                Principal::ApiKey(k) => k.id,
            }),
            created_at: now,
            updated_at: now,
        };
        self.store.put_subscription(&subscription).await?;
        Ok(subscription)
    }

    /// Changes a subscription's event, target or `enabled` (admin+); the secret stays.
    pub async fn update(
        &self,
        access: &Access,
        id: Id,
        patch: SubscriptionPatch,
    ) -> Result<Subscription> {
        access.require(Role::Admin)?;
        let mut subscription = self.get(access, id).await?;
        if let Some(event) = patch.event.as_deref() {
            subscription.event = parse_event(event)?;
        }
        if let Some(target) = patch.target {
            self.check(&target).await?;
            subscription.target = target;
        }
        if let Some(enabled) = patch.enabled {
            subscription.enabled = enabled;
        }
        subscription.updated_at = Timestamp::now();
        self.store.put_subscription(&subscription).await?;
        Ok(subscription)
    }

    pub async fn get(&self, access: &Access, id: Id) -> Result<Subscription> {
        access.require(Role::Admin)?;
        self.store
            .get_subscription(access.project.id, id)
            .await?
            .ok_or_else(|| Error::not_found("subscription"))
    }

    async fn check(&self, target: &str) -> Result<()> {
        let url = guard::parse_target(target).map_err(|e| Error::bad_request(e.to_string()))?;
        guard::check_target(&url, self.allow_private)
            .await
            .map_err(|e| Error::bad_request(e.to_string()))
    }
}

fn parse_event(event: &str) -> Result<EventFilter> {
    EventFilter::try_from(event.to_string()).map_err(|_| {
        let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        Error::bad_request(format!(
            "unknown event `{}`: use `*` or one of {}",
            event.chars().take(64).collect::<String>(),
            known.join(", ")
        ))
    })
}
