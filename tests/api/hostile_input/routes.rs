//! The route table: every route that takes a body or ids, with its fields and their types, its
//! caller, its API family's error shape and what to snapshot around an attack.

use super::*;

/// Which error shape a route answers in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Family {
    /// `{"success":false,"msg"}`; wrong field types are 400.
    Tiledesk,
    /// Sign-up and sign-in: the Tiledesk shape, but a well-formed body with mistyped fields is 422.
    Auth,
    /// `{"message"}`.
    Dixa,
    /// `{"errors":[{"code","message","field"?}]}`.
    Desk,
}

/// The JSON type a field takes.
#[derive(Clone, Copy, Debug)]
pub(super) enum Ty {
    Str,
    Bool,
    Int,
    Obj,
    /// An array of UUID strings (`agentIds`).
    Ids,
}

/// Who calls.
#[derive(Clone, Copy, Debug)]
pub(super) enum Who {
    Nobody,
    Owner,
    AdminKey,
}

/// What a rejected request must leave as it was.
#[derive(Clone, Copy, Debug)]
pub(super) enum Snap {
    /// The signed-up users (by the free sign-up email).
    Signup,
    /// The owner's account.
    OwnerAccount,
    /// The owner's projects (teammates in the store) and account.
    Projects,
    /// The whole team, trashed included.
    Team,
    /// The team and the pending invitations of the free invitation email.
    Invite,
    Keys,
    Subscriptions,
    /// The Dixa teams and the fixture team's members.
    Teams,
    /// The team and the agent's account.
    Desk,
}

pub(super) struct Route {
    pub(super) name: &'static str,
    pub(super) method: Method,
    /// `{pid}`, `{puid}`, `{sub}`, `{team}` and `{user}` are the fixture's ids.
    pub(super) template: &'static str,
    pub(super) who: Who,
    pub(super) family: Family,
    pub(super) snap: Snap,
    /// A valid body, often with real changes: a request that mistypes one field must not apply
    /// the others either.
    pub(super) base: Value,
    pub(super) fields: Vec<(&'static str, Ty)>,
    /// Desk: the fields go under `"user"` (the bare object is accepted too).
    pub(super) wrapper: Option<&'static str>,
    /// An empty (or `null`) body is a valid request (`POST /v3/{pid}/keys`).
    pub(super) empty_ok: bool,
}

pub(super) const PLACEHOLDERS: [&str; 5] = ["{pid}", "{puid}", "{sub}", "{team}", "{user}"];

impl Fx {
    pub(super) fn id_of(&self, placeholder: &str) -> &str {
        match placeholder {
            "{pid}" => &self.pid,
            "{puid}" => &self.puid,
            "{sub}" => &self.sub,
            "{team}" => &self.team,
            "{user}" => &self.agent.id,
            other => panic!("unknown placeholder {other}"),
        }
    }

    /// The template with the fixture's ids, except `replace` = `(placeholder, value)`.
    pub(super) fn path(&self, template: &str, replace: Option<(&str, &str)>) -> String {
        let mut path = template.to_string();
        for p in PLACEHOLDERS {
            let value = match replace {
                Some((which, value)) if which == p => value,
                _ => self.id_of(p),
            };
            path = path.replace(p, value);
        }
        path
    }

    pub(super) fn auth(&self, who: Who) -> Option<&str> {
        match who {
            Who::Nobody => None,
            Who::Owner => Some(&self.owner.token),
            Who::AdminKey => Some(&self.admin_key),
        }
    }
}

pub(super) const TEAMMATE_FIELDS: [(&str, Ty); 9] = [
    ("user_available", Ty::Bool),
    ("profileStatus", Ty::Str),
    ("max_served_chat", Ty::Int),
    ("max_assigned_chat", Ty::Int),
    ("attributes", Ty::Obj),
    ("settings", Ty::Obj),
    ("role", Ty::Str),
    ("status", Ty::Str),
    ("number_assigned_requests", Ty::Int),
];

pub(super) const SUBSCRIPTION_FIELDS: [(&str, Ty); 3] = [
    ("event", Ty::Str),
    ("target", Ty::Str),
    ("enabled", Ty::Bool),
];

pub(super) const DESK_FIELDS: [(&str, Ty); 13] = [
    ("firstName", Ty::Str),
    ("lastName", Ty::Str),
    ("email", Ty::Str),
    ("role", Ty::Str),
    ("state", Ty::Str),
    ("timezoneId", Ty::Int),
    ("editMethod", Ty::Str),
    ("ticketReplyRedirect", Ty::Str),
    ("isPartTime", Ty::Bool),
    ("reviewer", Ty::Bool),
    ("sendPushNotifications", Ty::Bool),
    ("sendWebNotifications", Ty::Bool),
    ("autoFollowOnCC", Ty::Bool),
];

/// Every `/v3` POST/PUT route, the Dixa routes with a body, and the Desk update.
pub(super) fn body_routes(fx: &Fx) -> Vec<Route> {
    let route =
        |name, method, template, who, family, snap, base, fields: &[(&'static str, Ty)]| Route {
            name,
            method,
            template,
            who,
            family,
            snap,
            base,
            fields: fields.to_vec(),
            wrapper: None,
            empty_ok: false,
        };
    let teammate_change =
        json!({"profileStatus": "hacked", "max_served_chat": 3, "attributes": {"x": 1}});
    vec![
        route(
            "sign-up",
            Method::POST,
            "/v3/auth/signup",
            Who::Nobody,
            Family::Auth,
            Snap::Signup,
            json!({"email": fx.signup_email, "password": PASSWORD, "firstname": "Eve", "lastname": "X"}),
            &[
                ("email", Ty::Str),
                ("password", Ty::Str),
                ("firstname", Ty::Str),
                ("lastname", Ty::Str),
            ],
        ),
        route(
            "sign-in",
            Method::POST,
            "/v3/auth/signin",
            Who::Nobody,
            Family::Auth,
            Snap::OwnerAccount,
            json!({"email": fx.owner.email, "password": PASSWORD}),
            &[("email", Ty::Str), ("password", Ty::Str)],
        ),
        route(
            "user update",
            Method::PUT,
            "/v3/users",
            Who::Owner,
            Family::Tiledesk,
            Snap::OwnerAccount,
            json!({"firstname": "Mallory", "attributes": {"x": 1}}),
            &[
                ("firstname", Ty::Str),
                ("lastname", Ty::Str),
                ("attributes", Ty::Obj),
            ],
        ),
        route(
            "project creation",
            Method::POST,
            "/v3/projects",
            Who::Owner,
            Family::Tiledesk,
            Snap::Projects,
            json!({"name": "Hostile"}),
            &[("name", Ty::Str)],
        ),
        route(
            "own teammate update",
            Method::PUT,
            "/v3/{pid}/project_users",
            Who::Owner,
            Family::Tiledesk,
            Snap::Team,
            teammate_change,
            &TEAMMATE_FIELDS,
        ),
        route(
            "invite",
            Method::POST,
            "/v3/{pid}/project_users/invite",
            Who::Owner,
            Family::Tiledesk,
            Snap::Invite,
            json!({"email": fx.invite_email, "role": "agent", "user_available": false}),
            &[
                ("email", Ty::Str),
                ("role", Ty::Str),
                ("firstname", Ty::Str),
                ("lastname", Ty::Str),
                ("user_available", Ty::Bool),
            ],
        ),
        route(
            "teammate update",
            Method::PUT,
            "/v3/{pid}/project_users/{puid}",
            Who::Owner,
            Family::Tiledesk,
            Snap::Team,
            json!({"profileStatus": "hacked", "role": "admin", "number_assigned_requests": 7}),
            &TEAMMATE_FIELDS,
        ),
        Route {
            empty_ok: true,
            ..route(
                "key creation",
                Method::POST,
                "/v3/{pid}/keys",
                Who::Owner,
                Family::Tiledesk,
                Snap::Keys,
                json!({"name": "k", "role": "admin"}),
                &[("name", Ty::Str), ("role", Ty::Str)],
            )
        },
        route(
            "subscription creation",
            Method::POST,
            "/v3/{pid}/subscriptions",
            Who::Owner,
            Family::Tiledesk,
            Snap::Subscriptions,
            json!({"event": "*", "target": "http://127.0.0.1:9/other", "enabled": true}),
            &SUBSCRIPTION_FIELDS,
        ),
        route(
            "subscription update",
            Method::PUT,
            "/v3/{pid}/subscriptions/{sub}",
            Who::Owner,
            Family::Tiledesk,
            Snap::Subscriptions,
            json!({"event": "*", "enabled": false}),
            &SUBSCRIPTION_FIELDS,
        ),
        route(
            "team creation",
            Method::POST,
            "/beta/teams",
            Who::AdminKey,
            Family::Dixa,
            Snap::Teams,
            json!({"name": "Tier 2"}),
            &[("name", Ty::Str)],
        ),
        route(
            "team members added",
            Method::PATCH,
            "/beta/teams/{team}/agents",
            Who::AdminKey,
            Family::Dixa,
            Snap::Teams,
            json!({"agentIds": [fx.owner.id]}),
            &[("agentIds", Ty::Ids)],
        ),
        route(
            "team members removed",
            Method::DELETE,
            "/beta/teams/{team}/agents",
            Who::AdminKey,
            Family::Dixa,
            Snap::Teams,
            json!({"agentIds": [fx.agent.id]}),
            &[("agentIds", Ty::Ids)],
        ),
        Route {
            wrapper: Some("user"),
            ..route(
                "desk user update",
                Method::PATCH,
                "/desk/api/v2/users/{user}.json",
                Who::AdminKey,
                Family::Desk,
                Snap::Desk,
                json!({"firstName": "Mallory", "role": "admin", "timezoneId": 7, "isPartTime": true}),
                &DESK_FIELDS,
            )
        },
    ]
}

/// Routes with ids in the path but no body: only the id attacks apply.
pub(super) fn bodyless_id_routes() -> Vec<Route> {
    let route = |name, method, template, who, family, snap| Route {
        name,
        method,
        template,
        who,
        family,
        snap,
        base: Value::Null,
        fields: vec![],
        wrapper: None,
        empty_ok: true,
    };
    vec![
        route(
            "restore",
            Method::PUT,
            "/v3/{pid}/project_users/{puid}/restore",
            Who::Owner,
            Family::Tiledesk,
            Snap::Team,
        ),
        route(
            "event stream",
            Method::GET,
            "/v3/{pid}/events",
            Who::Owner,
            Family::Tiledesk,
            Snap::Team,
        ),
        route(
            "team deletion",
            Method::DELETE,
            "/beta/teams/{team}",
            Who::AdminKey,
            Family::Dixa,
            Snap::Teams,
        ),
    ]
}

/// Values of the wrong JSON type for a field of type `ty`.
pub(super) fn wrong_values(ty: Ty, fx: &Fx) -> Vec<Value> {
    match ty {
        Ty::Str => vec![
            json!(123),
            json!(-1.5),
            json!(true),
            json!({}),
            json!(["x"]),
        ],
        Ty::Bool => vec![json!("true"), json!(1), json!(0), json!({}), json!([])],
        Ty::Int => vec![
            json!("5"),
            json!(1.5),
            // 1e3 is a whole number, which JSON Schema (and so the OpenAPI document) calls an
            // integer, and is accepted; a whole float out of range is not.
            json!(1e300),
            json!(u64::MAX),
            json!(-1e19),
            json!(true),
            json!({}),
            json!([1]),
        ],
        Ty::Obj => vec![json!("x"), json!(5), json!(true), json!([]), json!([1, 2])],
        Ty::Ids => vec![
            json!("x"),
            json!(5),
            json!({}),
            json!([5]),
            json!([null]),
            json!([{}]),
            json!([[]]),
            // A valid id beside a mistyped one: nothing is applied.
            json!([fx.owner.id, 5]),
            json!([fx.owner.id, fx.agent.id, true]),
        ],
    }
}
