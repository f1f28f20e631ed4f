//! The gateway's operations, shared by every API family (Tiledesk REST, the agent socket, Dixa,
//! Desk): who may do what, and how a change is applied to the store.
//!
//! Handlers parse wire formats and call these; these enforce the rules and talk to the store.

mod access;
mod accounts;
mod invitations;
mod teammate_patch;
mod teammates;
mod teams;

pub use access::{Access, Principal};
pub use accounts::{Accounts, SignupRequest, SIGNIN_ATTEMPTS, SIGNIN_WINDOW};
pub use teammate_patch::TeammatePatch;
pub use teammates::{InviteOutcome, InviteRequest, RemoveMode, Teammates};
pub use teams::Teams;
