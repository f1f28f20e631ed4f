//! Users, the email index, invitations, sign-in counters and API keys: the global lookups, each
//! key in a slot of its own. What spans two of them is a sequence of steps, each safe to crash
//! after (docs/architecture.md, "Steps across slots"):
//!
//! * **Sign-up:** write the user record (nobody can reach it yet), then claim the email. The
//!   claim decides: of two sign-ups with one email exactly one claims it, and the other deletes
//!   its record.
//! * **Email change:** claim the new email, write the record, check the claim is still ours
//!   (else put the record back), release the old email.
//! * A lookup by email answers only a user whose record has that email, so a claim left by a
//!   crash points at nobody; it is taken over once it is older than [`STALE_CLAIM`].
//! * **API key:** list it in the project's index first, then write the key (what authenticates);
//!   deleting goes the other way. A listed key whose record is gone is not shown.

use super::{decode, decode_all, encode, RedisStore};
use crate::domain::{ApiKey, Id, PendingInvitation, User};
use crate::store::{AccountStore, FailedSignins, StoreError, StoreResult};
use async_trait::async_trait;
use redis::Script;
use std::sync::LazyLock;
use std::time::Duration;

static CLAIM_EMAIL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/claim_email.lua")));
static RELEASE_EMAIL: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/release_email.lua")));
static COUNT_FAILURE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/count_failure.lua")));

/// A claim whose holder's record does not have its email is taken over after this long: far
/// longer than the steps between a claim and its record take.
const STALE_CLAIM: Duration = Duration::from_secs(30);

#[async_trait]
impl AccountStore for RedisStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let record = self.keys.user(user.id);
        self.set(&record, encode(user)?).await?;
        match self.claim_email(&user.email, user.id).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // Best effort: an unclaimed record is unreachable anyway.
                let _: StoreResult<()> = self.cmd(redis::cmd("DEL").arg(&record)).await;
                Err(e)
            }
        }
    }

    async fn get_user(&self, id: Id) -> StoreResult<Option<User>> {
        self.get_json(self.keys.user(id)).await
    }

    async fn get_users(&self, ids: &[Id]) -> StoreResult<Vec<Option<User>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| self.keys.user(*id)).collect();
        let raws: Vec<Option<String>> = self.cmd(redis::cmd("MGET").arg(keys)).await?;
        raws.into_iter()
            .map(|raw| raw.map(|s| decode(&s)).transpose())
            .collect()
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let Some(holder) = self.email_holder(email).await? else {
            return Ok(None);
        };
        Ok(self.get_user(holder).await?.filter(|u| u.email == email))
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let current = self.get_user(user.id).await?.ok_or(StoreError::NotFound)?;
        let updated = User {
            email: current.email,
            ..user.clone()
        };
        self.set(&self.keys.user(user.id), encode(&updated)?).await
    }

    async fn change_user_email(&self, user: &User) -> StoreResult<()> {
        let current = self.get_user(user.id).await?.ok_or(StoreError::NotFound)?;
        self.claim_email(&user.email, user.id).await?;
        let record = self.keys.user(user.id);
        self.set(&record, encode(user)?).await?;
        if self.email_holder(&user.email).await? != Some(user.id) {
            // Taken over in between (this step stalled past STALE_CLAIM): undo.
            self.set(&record, encode(&current)?).await?;
            return Err(StoreError::Conflict);
        }
        if current.email != user.email {
            let mut release = RELEASE_EMAIL.prepare_invoke();
            release
                .key(self.keys.email(&current.email))
                .arg(user.id.to_string());
            let _: i64 = self.script(&release).await?;
        }
        Ok(())
    }

    async fn put_invitation(&self, invitation: &PendingInvitation) -> StoreResult<()> {
        let key = self.keys.invitations(&invitation.email);
        self.hash_put(key, invitation.project_id, encode(invitation)?)
            .await
    }

    async fn list_invitations(&self, email: &str) -> StoreResult<Vec<PendingInvitation>> {
        let mut list: Vec<PendingInvitation> =
            self.hash_values(self.keys.invitations(email)).await?;
        list.sort_by_key(|i| i.created_at);
        Ok(list)
    }

    async fn delete_invitation(&self, email: &str, project_id: Id) -> StoreResult<()> {
        self.hash_delete(self.keys.invitations(email), project_id)
            .await
            .map(|_| ())
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let index = self
            .keys
            .of_project(key.project_id)
            .project_keys(key.project_id);
        self.hash_put(index, key.id, key.secret_hash.clone())
            .await?;
        self.set(&self.keys.api_key(&key.secret_hash), encode(key)?)
            .await
    }

    async fn list_api_keys(&self, project_id: Id) -> StoreResult<Vec<ApiKey>> {
        let index = self.keys.of_project(project_id).project_keys(project_id);
        let hashes: Vec<String> = self.cmd(redis::cmd("HVALS").arg(index)).await?;
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = hashes.iter().map(|h| self.keys.api_key(h)).collect();
        let raws: Vec<Option<String>> = self.cmd(redis::cmd("MGET").arg(keys)).await?;
        let mut list: Vec<ApiKey> = decode_all(raws.into_iter().flatten().collect())?;
        list.sort_by_key(|k| (k.created_at, k.id));
        Ok(list)
    }

    async fn delete_api_key(&self, project_id: Id, key_id: Id) -> StoreResult<Option<ApiKey>> {
        let index = self.keys.of_project(project_id).project_keys(project_id);
        let hash: Option<String> = self
            .cmd(redis::cmd("HGET").arg(&index).arg(key_id.to_string()))
            .await?;
        let Some(hash) = hash else {
            return Ok(None);
        };
        let record = self.keys.api_key(&hash);
        let key: Option<ApiKey> = self.get_json(record.clone()).await?;
        let _: () = self.cmd(redis::cmd("DEL").arg(&record)).await?;
        self.replicated(&record).await?;
        self.hash_delete(index, key_id).await?;
        Ok(key)
    }

    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>> {
        self.get_json(self.keys.api_key(secret_hash)).await
    }

    async fn failed_signins(&self, email: &str) -> StoreResult<FailedSignins> {
        let key = self.keys.signin_failures(email);
        let (count, ttl): (Option<u64>, i64) = self
            .pipe(redis::pipe().cmd("GET").arg(&key).cmd("PTTL").arg(&key))
            .await?;
        Ok(FailedSignins {
            count: count.unwrap_or(0),
            resets_in: Duration::from_millis(ttl.max(0) as u64),
        })
    }

    async fn record_failed_signin(
        &self,
        email: &str,
        window: Duration,
    ) -> StoreResult<FailedSignins> {
        let mut invocation = COUNT_FAILURE.prepare_invoke();
        invocation
            .key(self.keys.signin_failures(email))
            .arg(window.as_millis() as u64);
        let (count, ttl): (u64, i64) = self.script(&invocation).await?;
        Ok(FailedSignins {
            count,
            resets_in: Duration::from_millis(ttl.max(0) as u64),
        })
    }

    async fn clear_failed_signins(&self, email: &str) -> StoreResult<()> {
        let _: () = self
            .cmd(redis::cmd("DEL").arg(self.keys.signin_failures(email)))
            .await?;
        Ok(())
    }
}

impl RedisStore {
    /// Claims `email` for `uid`: `Conflict` if another user's record has it.
    async fn claim_email(&self, email: &str, uid: Id) -> StoreResult<()> {
        let key = self.keys.email(email);
        let mut take_over_from = String::new();
        for _ in 0..2 {
            let mut claim = CLAIM_EMAIL.prepare_invoke();
            claim
                .key(&key)
                .arg(uid.to_string())
                .arg(&take_over_from)
                .arg(STALE_CLAIM.as_millis() as u64);
            let answer: String = self.script(&claim).await?;
            if answer == "ok" {
                return self.replicated(&key).await;
            }
            let holder: Id = answer
                .parse()
                .map_err(|_| StoreError::Internal(format!("corrupt email claim `{answer}`")))?;
            if self
                .get_user(holder)
                .await?
                .is_some_and(|u| u.email == email)
            {
                return Err(StoreError::Conflict);
            }
            take_over_from = answer;
        }
        Err(StoreError::Conflict)
    }

    async fn email_holder(&self, email: &str) -> StoreResult<Option<Id>> {
        let claim: Option<String> = self
            .cmd(redis::cmd("GET").arg(self.keys.email(email)))
            .await?;
        Ok(claim.and_then(|c| c.split('|').next().and_then(|id| id.parse().ok())))
    }
}
