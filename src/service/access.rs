//! Who is calling, and with which role in a given project.

use crate::domain::{ApiKey, Id, Project, Role, Teammate, User};
use crate::error::{Error, Result};
use crate::store::ProjectStore;

/// An authenticated caller: a signed-in user or a project API key.
#[derive(Clone, Debug)]
pub enum Principal {
    User(User),
    ApiKey(ApiKey),
}

impl Principal {
    pub fn user(&self) -> Option<&User> {
        match self {
            Principal::User(u) => Some(u),
            Principal::ApiKey(_) => None,
        }
    }

    /// The id recorded as `createdBy` for things this caller creates.
    pub fn actor_id(&self) -> Id {
        match self {
            Principal::User(u) => u.id,
            Principal::ApiKey(k) => k.id,
        }
    }
}

/// A caller's standing in one project, resolved once per request.
#[derive(Clone, Debug)]
pub struct Access {
    pub project: Project,
    pub role: Role,
    pub principal: Principal,
    /// The caller's own teammate (users only).
    pub teammate: Option<Teammate>,
}

impl Access {
    /// Resolves the caller's role in `project_id`.
    ///
    /// 404 if the project does not exist; 403 if the caller is not an active member (a
    /// disabled, trashed or removed teammate, or an API key of another project).
    pub async fn resolve(
        store: &dyn ProjectStore,
        principal: Principal,
        project_id: Id,
    ) -> Result<Self> {
        let project = store
            .get_project(project_id)
            .await?
            .ok_or_else(|| Error::not_found("project"))?;
        let (role, teammate) = match &principal {
            Principal::ApiKey(key) => {
                if key.project_id != project_id {
                    return Err(Error::forbidden("this API key belongs to another project"));
                }
                (key.role, None)
            }
            Principal::User(user) => {
                let teammate = store
                    .find_teammate_by_user(project_id, user.id)
                    .await?
                    .filter(Teammate::is_active)
                    .ok_or_else(|| {
                        Error::forbidden("you are not an active member of this project")
                    })?;
                (teammate.role, Some(teammate))
            }
        };
        Ok(Access {
            project,
            role,
            principal,
            teammate,
        })
    }

    /// 403 unless the caller's role is at least `min`.
    pub fn require(&self, min: Role) -> Result<()> {
        if self.role >= min {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "this requires the {min} role or above; you are {}",
                self.role
            )))
        }
    }
}

impl Principal {
    /// The user behind the caller, or 403 for an API key on a user-only route.
    pub fn require_user(&self) -> Result<&User> {
        self.user()
            .ok_or_else(|| Error::forbidden("this route needs a user, not an API key"))
    }
}
