//! The Tiledesk-compatible REST API under `/v3` (`/openapi.json`; docs/rest.md).

mod auth;
mod events;
mod keys;
mod project_users;
mod projects;
mod routable;
mod subscriptions;
mod team_query;
mod teams;
mod users;

use crate::state::AppState;
use axum::routing::{delete, get, post, put};
use axum::Router;

/// The routes below, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    auth::signup,
    auth::signin,
    users::me,
    users::update,
    projects::create,
    projects::list,
    projects::get,
    project_users::availables,
    project_users::list,
    project_users::update_own,
    project_users::me,
    routable::routable,
    project_users::invite,
    project_users::by_user,
    project_users::get,
    project_users::update,
    project_users::remove,
    project_users::restore,
    teams::list,
    keys::create,
    keys::list,
    keys::remove,
    events::stream,
    subscriptions::create,
    subscriptions::list,
    subscriptions::history,
    subscriptions::get,
    subscriptions::update,
    subscriptions::remove,
))]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v3/auth/signup", post(auth::signup))
        .route("/v3/auth/signin", post(auth::signin))
        .route("/v3/users", get(users::me).put(users::update))
        .route("/v3/projects", post(projects::create).get(projects::list))
        .route("/v3/projects/{pid}", get(projects::get))
        .route(
            "/v3/projects/{pid}/users/availables",
            get(project_users::availables),
        )
        .route(
            "/v3/{pid}/project_users",
            get(project_users::list).put(project_users::update_own),
        )
        .route("/v3/{pid}/project_users/me", get(project_users::me))
        .route("/v3/{pid}/project_users/routable", get(routable::routable))
        .route(
            "/v3/{pid}/project_users/invite",
            post(project_users::invite),
        )
        .route(
            "/v3/{pid}/project_users/users/{user_id}",
            get(project_users::by_user),
        )
        .route(
            "/v3/{pid}/project_users/{puid}",
            get(project_users::get)
                .put(project_users::update)
                .delete(project_users::remove),
        )
        .route(
            "/v3/{pid}/project_users/{puid}/restore",
            put(project_users::restore),
        )
        .route("/v3/{pid}/teams", get(teams::list))
        .route("/v3/{pid}/keys", post(keys::create).get(keys::list))
        .route("/v3/{pid}/keys/{key_id}", delete(keys::remove))
        .route("/v3/{pid}/events", get(events::stream))
        .route(
            "/v3/{pid}/subscriptions",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            "/v3/{pid}/subscriptions/history",
            get(subscriptions::history),
        )
        .route(
            "/v3/{pid}/subscriptions/{id}",
            get(subscriptions::get)
                .put(subscriptions::update)
                .delete(subscriptions::remove),
        )
}
