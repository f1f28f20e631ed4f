//! Users, the email index, invitations, API keys and sign-in counters in the memory engine.

use super::MemoryStore;
use crate::domain::{ApiKey, Id, PendingInvitation, User};
use crate::store::{AccountStore, FailedSignins, StoreError, StoreResult};
use async_trait::async_trait;
use std::time::{Duration, Instant};

#[async_trait]
impl AccountStore for MemoryStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let mut s = self.lock();
        if s.user_by_email.contains_key(&user.email) || s.users.contains_key(&user.id) {
            return Err(StoreError::Conflict);
        }
        s.user_by_email.insert(user.email.clone(), user.id);
        s.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn get_user(&self, id: Id) -> StoreResult<Option<User>> {
        Ok(self.lock().users.get(&id).cloned())
    }

    async fn get_users(&self, ids: &[Id]) -> StoreResult<Vec<Option<User>>> {
        let s = self.lock();
        Ok(ids.iter().map(|id| s.users.get(id).cloned()).collect())
    }

    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let s = self.lock();
        Ok(s.user_by_email
            .get(email)
            .and_then(|id| s.users.get(id))
            .cloned())
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let mut s = self.lock();
        let current = s.users.get_mut(&user.id).ok_or(StoreError::NotFound)?;
        let email = current.email.clone();
        *current = User {
            email,
            ..user.clone()
        };
        Ok(())
    }

    async fn change_user_email(&self, user: &User) -> StoreResult<()> {
        let mut s = self.lock();
        let old = s
            .users
            .get(&user.id)
            .ok_or(StoreError::NotFound)?
            .email
            .clone();
        if s.user_by_email
            .get(&user.email)
            .is_some_and(|id| *id != user.id)
        {
            return Err(StoreError::Conflict);
        }
        s.user_by_email.remove(&old);
        s.user_by_email.insert(user.email.clone(), user.id);
        s.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn put_invitation(&self, invitation: &PendingInvitation) -> StoreResult<()> {
        self.lock()
            .invitations
            .entry(invitation.email.clone())
            .or_default()
            .insert(invitation.project_id, invitation.clone());
        Ok(())
    }

    async fn list_invitations(&self, email: &str) -> StoreResult<Vec<PendingInvitation>> {
        let s = self.lock();
        let mut list: Vec<_> = s
            .invitations
            .get(email)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        list.sort_by_key(|i| i.created_at);
        Ok(list)
    }

    async fn delete_invitation(&self, email: &str, project_id: Id) -> StoreResult<()> {
        let mut s = self.lock();
        if let Some(m) = s.invitations.get_mut(email) {
            m.remove(&project_id);
            if m.is_empty() {
                s.invitations.remove(email);
            }
        }
        Ok(())
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let mut s = self.lock();
        if s.api_key_by_hash.contains_key(&key.secret_hash) {
            return Err(StoreError::Conflict);
        }
        s.api_key_by_hash.insert(key.secret_hash.clone(), key.id);
        s.api_keys.insert(key.id, key.clone());
        Ok(())
    }

    async fn list_api_keys(&self, project_id: Id) -> StoreResult<Vec<ApiKey>> {
        let s = self.lock();
        let mut keys: Vec<_> = s
            .api_keys
            .values()
            .filter(|k| k.project_id == project_id)
            .cloned()
            .collect();
        keys.sort_by_key(|k| (k.created_at, k.id));
        Ok(keys)
    }

    async fn delete_api_key(&self, project_id: Id, key_id: Id) -> StoreResult<Option<ApiKey>> {
        let mut s = self.lock();
        match s.api_keys.get(&key_id) {
            Some(k) if k.project_id == project_id => {}
            _ => return Ok(None),
        }
        let key = s.api_keys.remove(&key_id);
        if let Some(k) = &key {
            s.api_key_by_hash.remove(&k.secret_hash);
        }
        Ok(key)
    }

    async fn find_api_key(&self, secret_hash: &str) -> StoreResult<Option<ApiKey>> {
        let s = self.lock();
        Ok(s.api_key_by_hash
            .get(secret_hash)
            .and_then(|id| s.api_keys.get(id))
            .cloned())
    }

    async fn failed_signins(&self, email: &str) -> StoreResult<FailedSignins> {
        let s = self.lock();
        Ok(match s.failed_signins.get(email) {
            Some((count, started, window)) if started.elapsed() < *window => FailedSignins {
                count: *count,
                resets_in: *window - started.elapsed(),
            },
            _ => FailedSignins {
                count: 0,
                resets_in: Duration::ZERO,
            },
        })
    }

    async fn record_failed_signin(
        &self,
        email: &str,
        window: Duration,
    ) -> StoreResult<FailedSignins> {
        let mut s = self.lock();
        let entry =
            s.failed_signins
                .entry(email.to_string())
                .or_insert((0, Instant::now(), window));
        if entry.1.elapsed() >= entry.2 {
            *entry = (0, Instant::now(), window);
        }
        entry.0 += 1;
        Ok(FailedSignins {
            count: entry.0,
            resets_in: entry.2.saturating_sub(entry.1.elapsed()),
        })
    }

    async fn clear_failed_signins(&self, email: &str) -> StoreResult<()> {
        self.lock().failed_signins.remove(email);
        Ok(())
    }
}
