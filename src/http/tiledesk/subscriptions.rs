//! `/v3/{pid}/subscriptions`: webhook subscriptions and their delivery history (docs/protocol.md
//! §8). The secret is shown once, when the subscription is created (in the body and in
//! `x-hook-secret`); it is never sent with deliveries, which are signed with it instead.

use crate::domain::Role;
use crate::domain::{Attempt, Delivery, Subscription, Timestamp};
use crate::error::Result;
use crate::http::extract::{parse_id, Json, Member};
use crate::http::params::{ProjectPath, SubscriptionPath};
use crate::state::AppState;
use crate::views::to_value;
use crate::webhooks::SubscriptionPatch;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use utoipa::ToSchema;

/// A subscription's fields. `event` and `target` are required at creation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionBody {
    /// An event type, `*`, or `project_user.update` (which also receives presence and
    /// availability events, as in Tiledesk).
    #[schema(value_type = Option<SubscribedEvent>)]
    event: Option<String>,
    /// A public `http(s)` URL.
    #[schema(pattern = "^https?://", example = "https://hooks.example.com/presence")]
    target: Option<String>,
    enabled: Option<bool>,
}

/// The body of a new subscription (the same fields as [`SubscriptionBody`], two required).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewSubscription {
    #[schema(value_type = SubscribedEvent)]
    event: String,
    /// A public `http(s)` URL (checked again, with DNS, at each delivery).
    #[schema(pattern = "^https?://", example = "https://hooks.example.com/presence")]
    target: String,
    enabled: Option<bool>,
}

/// What a subscription listens to.
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum SubscribedEvent {
    #[schema(rename = "*")]
    All,
    #[schema(rename = "presence.online")]
    PresenceOnline,
    #[schema(rename = "presence.offline")]
    PresenceOffline,
    #[schema(rename = "availability.update")]
    AvailabilityUpdate,
    #[schema(rename = "project_user.invite")]
    Invite,
    #[schema(rename = "project_user.update")]
    Update,
    #[schema(rename = "project_user.disable")]
    Disable,
    #[schema(rename = "project_user.delete")]
    Delete,
    #[schema(rename = "project_user.restore")]
    Restore,
    #[schema(rename = "team.member_added")]
    TeamMemberAdded,
    #[schema(rename = "team.member_removed")]
    TeamMemberRemoved,
}

impl From<SubscriptionBody> for SubscriptionPatch {
    fn from(b: SubscriptionBody) -> Self {
        SubscriptionPatch {
            event: b.event,
            target: b.target,
            enabled: b.enabled,
        }
    }
}

/// A webhook subscription. `secret` (`whsec_…`) is shown only at creation.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionView<'a> {
    #[serde(rename = "_id")]
    #[schema(format = Uuid)]
    underscore_id: String,
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = Uuid)]
    id_project: String,
    #[schema(value_type = SubscribedEvent)]
    event: &'static str,
    target: &'a str,
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
    #[serde(rename = "createdBy")]
    #[schema(format = Uuid, required = true)]
    created_by: Option<String>,
    #[serde(rename = "createdAt")]
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[serde(rename = "updatedAt")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

fn view(s: &Subscription, with_secret: bool) -> SubscriptionView<'_> {
    SubscriptionView {
        underscore_id: s.id.to_string(),
        id: s.id.to_string(),
        id_project: s.project_id.to_string(),
        event: s.event.as_str(),
        target: &s.target,
        enabled: s.enabled,
        secret: with_secret.then_some(s.secret.as_str()),
        created_by: s.created_by.map(|id| id.to_string()),
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

/// Creates a subscription (admin and up). Its signing secret is in `secret` and the
/// `x-hook-secret` header, shown this once.
#[utoipa::path(post, path = "/v3/{pid}/subscriptions", tag = "webhooks",
    params(ProjectPath),
    request_body = NewSubscription,
    responses((status = 200, description = "the subscription, with its secret", body = SubscriptionView<'static>)))]
pub async fn create(
    State(state): State<AppState>,
    Member(access): Member,
    Json(body): Json<SubscriptionBody>,
) -> Result<Response> {
    let s = state.webhooks.create(&access, body.into()).await?;
    let mut response = axum::Json(to_value(&view(&s, true))?).into_response();
    if let Ok(secret) = HeaderValue::from_str(&s.secret) {
        response.headers_mut().insert("x-hook-secret", secret);
    }
    Ok(response)
}

/// The project's subscriptions.
#[utoipa::path(get, path = "/v3/{pid}/subscriptions", tag = "webhooks",
    params(ProjectPath),
    responses((status = 200, description = "the subscriptions", body = Vec<SubscriptionView<'static>>)))]
pub async fn list(State(state): State<AppState>, Member(access): Member) -> Result<Json<Value>> {
    access.require(Role::Admin)?;
    let list = state.store.list_subscriptions(access.project.id).await?;
    let views = list
        .iter()
        .map(|s| to_value(&view(s, false)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(Value::Array(views)))
}

/// One subscription.
#[utoipa::path(get, path = "/v3/{pid}/subscriptions/{id}", tag = "webhooks",
    params(SubscriptionPath),
    responses((status = 200, description = "the subscription", body = SubscriptionView<'static>)))]
pub async fn get(
    State(state): State<AppState>,
    Member(access): Member,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let id = parse_id(&params["id"], "subscription id")?;
    let s = state.webhooks.get(&access, id).await?;
    Ok(Json(to_value(&view(&s, false))?))
}

/// Changes a subscription's event, target or `enabled`.
#[utoipa::path(put, path = "/v3/{pid}/subscriptions/{id}", tag = "webhooks",
    params(SubscriptionPath),
    request_body = SubscriptionBody,
    responses((status = 200, description = "the subscription after the change", body = SubscriptionView<'static>)))]
pub async fn update(
    State(state): State<AppState>,
    Member(access): Member,
    Path(params): Path<HashMap<String, String>>,
    Json(body): Json<SubscriptionBody>,
) -> Result<Json<Value>> {
    let id = parse_id(&params["id"], "subscription id")?;
    let s = state.webhooks.update(&access, id, body.into()).await?;
    Ok(Json(to_value(&view(&s, false))?))
}

/// Deletes a subscription.
#[utoipa::path(delete, path = "/v3/{pid}/subscriptions/{id}", tag = "webhooks",
    params(SubscriptionPath),
    responses((status = 200, description = "the deleted subscription", body = SubscriptionView<'static>)))]
pub async fn remove(
    State(state): State<AppState>,
    Member(access): Member,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let id = parse_id(&params["id"], "subscription id")?;
    let s = state.webhooks.get(&access, id).await?;
    state
        .store
        .delete_subscription(access.project.id, id)
        .await?;
    Ok(Json(to_value(&view(&s, false))?))
}

/// One delivery attempt.
#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    #[schema(value_type = String, format = DateTime)]
    at: Timestamp,
    /// The target's answer; null when it gave none.
    #[schema(required = true)]
    status_code: Option<u16>,
    /// Why the attempt failed; null when it did not.
    #[schema(required = true)]
    error: Option<String>,
    duration_ms: u64,
}

/// A delivery of one event to one subscription, with its attempts.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView<'a> {
    #[serde(rename = "_id")]
    #[schema(format = Uuid)]
    underscore_id: String,
    #[schema(format = Uuid)]
    id: String,
    #[schema(format = Uuid)]
    id_project: String,
    #[schema(format = Uuid)]
    id_subscription: String,
    event_id: String,
    #[schema(value_type = SubscribedEvent)]
    event_type: &'static str,
    target: &'a str,
    #[schema(value_type = DeliveryStateName)]
    status: crate::domain::DeliveryState,
    attempts: Vec<AttemptView>,
    #[serde(rename = "createdAt")]
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    #[serde(rename = "updatedAt")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

/// Where a delivery stands.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(as = DeliveryState, rename_all = "lowercase")]
pub enum DeliveryStateName {
    /// Waiting for its next attempt.
    Pending,
    /// A 2xx answer.
    Delivered,
    /// Every attempt on the schedule failed.
    Failed,
    /// The target answered 410 Gone; the subscription was disabled.
    Gone,
    /// The subscription was deleted or disabled before the event could be delivered.
    Cancelled,
}

fn delivery_view(d: &Delivery) -> DeliveryView<'_> {
    DeliveryView {
        underscore_id: d.id.to_string(),
        id: d.id.to_string(),
        id_project: d.project_id.to_string(),
        id_subscription: d.subscription_id.to_string(),
        event_id: d.event_id.to_string(),
        event_type: d.event_type.as_str(),
        target: &d.target,
        status: d.state,
        attempts: d
            .attempts
            .iter()
            .map(|a: &Attempt| AttemptView {
                at: a.at,
                status_code: a.status,
                error: a.error.clone(),
                duration_ms: a.duration_ms,
            })
            .collect(),
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

/// `GET /v3/{pid}/subscriptions/history?limit=`: ended deliveries (delivered, failed, gone,
/// cancelled), newest first; `limit` 1 to 1000, default 100.
/// The project's latest deliveries, newest first (the last 1,000 are kept).
#[utoipa::path(get, path = "/v3/{pid}/subscriptions/history", tag = "webhooks",
    params(
        ProjectPath,
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "how many (default 100)"),
    ),
    responses((status = 200, description = "the deliveries", body = Vec<DeliveryView<'static>>)))]
pub async fn history(
    State(state): State<AppState>,
    Member(access): Member,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    access.require(Role::Admin)?;
    let mut limit = 100;
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if key == "limit" {
            limit = value
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| crate::error::Error::bad_request("limit must be 1 to 1000"))?;
        }
    }
    let list = state
        .store
        .delivery_history(access.project.id, limit)
        .await?;
    let views = list
        .iter()
        .map(|d| to_value(&delivery_view(d)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(Value::Array(views)))
}
