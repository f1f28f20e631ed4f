//! Creates the accounts a run needs through the gateway's own API: an owner, a project, and
//! teammates (sign-up + invite). Tokens are minted with the shared secret, so no sign-in (and
//! no Argon2 verification) is needed per teammate.

use anyhow::{bail, Context};
use futures::StreamExt;
use indicatif::ProgressBar;
use presence_gateway::auth::jwt::{Claims, JwtKeys};
use serde_json::{json, Value};
use std::net::SocketAddr;

pub struct Teammate {
    pub puid: String,
    /// `JWT <jwt>`, URL-encoded for a socket query.
    pub query_token: String,
}

pub struct World {
    pub http: reqwest::Client,
    pub project_id: String,
    pub owner_token: String,
    pub teammates: Vec<Teammate>,
}

pub async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut request = http.request(method, &url);
    if let Some(token) = token {
        request = request.header("Authorization", token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("request to {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    Ok(body)
}

fn mint(keys: &JwtKeys, user_id: &str) -> String {
    let token = keys.sign(&Claims {
        sub: Some(user_id.to_string()),
        exp: Some(i64::MAX / 2),
        ..Default::default()
    });
    format!("JWT%20{token}")
}

pub async fn world(
    node: SocketAddr,
    secret: &str,
    teammates: usize,
    concurrency: usize,
) -> anyhow::Result<World> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let base = format!("http://{node}/v3");
    let run = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let keys = JwtKeys::new(secret.as_bytes());
    let password = "loadtest-password";
    let owner_email = format!("owner-{run}@loadtest.invalid");
    let owner = call(&http, reqwest::Method::POST, format!("{base}/auth/signup"), None,
        Some(json!({"email": owner_email, "password": password, "firstname": "Load", "lastname": "Owner"}))).await?;
    let owner_id = owner["user"]["_id"]
        .as_str()
        .context("owner id")?
        .to_string();
    let owner_token = format!(
        "JWT {}",
        keys.sign(&Claims {
            sub: Some(owner_id),
            ..Default::default()
        })
    );
    // Fail early, with a clear message, if the secret does not match the gateway's.
    call(
        &http,
        reqwest::Method::GET,
        format!("{base}/users"),
        Some(&owner_token),
        None,
    )
    .await
    .context(
        "the minted token was refused: pass the gateway's PRESENCE_JWT_SECRET as --jwt-secret",
    )?;
    let project = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/projects"),
        Some(&owner_token),
        Some(json!({"name": format!("loadtest {run}")})),
    )
    .await?;
    let project_id = project["_id"].as_str().context("project id")?.to_string();

    let bar = ProgressBar::new(teammates as u64).with_message("signing up teammates");
    bar.set_style(crate::stats::bar_style());
    let created: Vec<anyhow::Result<Teammate>> = futures::stream::iter(0..teammates)
        .map(|i| {
            let (http, base, keys, owner_token, project_id, run, bar) = (&http, &base, &keys, &owner_token, &project_id, &run, &bar);
            async move {
                let email = format!("agent{i}-{run}@loadtest.invalid");
                let user = call(http, reqwest::Method::POST, format!("{base}/auth/signup"), None,
                    Some(json!({"email": email, "password": password, "firstname": "Agent", "lastname": i.to_string()}))).await?;
                let user_id = user["user"]["_id"].as_str().context("user id")?.to_string();
                let teammate = call(http, reqwest::Method::POST, format!("{base}/{project_id}/project_users/invite"), Some(owner_token),
                    Some(json!({"email": email, "role": "agent"}))).await?;
                bar.inc(1);
                Ok(Teammate {
                    query_token: mint(keys, &user_id),
                    puid: teammate["_id"].as_str().context("teammate id")?.to_string(),
                })
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    bar.finish_and_clear();
    Ok(World {
        http,
        project_id,
        owner_token,
        teammates: created.into_iter().collect::<anyhow::Result<_>>()?,
    })
}

impl World {
    /// Teammates currently online, as the given node reports them.
    pub async fn online_count(&self, node: SocketAddr) -> anyhow::Result<usize> {
        let list = call(
            &self.http,
            reqwest::Method::GET,
            format!(
                "http://{node}/v3/{}/project_users?presencestatus=online",
                self.project_id
            ),
            Some(&self.owner_token),
            None,
        )
        .await?;
        Ok(list.as_array().map_or(0, Vec::len))
    }

    /// One teammate's presence object, as the given node reports it.
    pub async fn presence(&self, node: SocketAddr, puid: &str) -> anyhow::Result<Value> {
        let teammate = call(
            &self.http,
            reqwest::Method::GET,
            format!("http://{node}/v3/{}/project_users/{puid}", self.project_id),
            Some(&self.owner_token),
            None,
        )
        .await?;
        Ok(teammate["presence"].clone())
    }
}
