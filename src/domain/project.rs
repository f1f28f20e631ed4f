use super::{Id, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Project {
    pub id: Id,
    pub name: String,
    pub created_by: Id,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
