//! The claim checks every token gets, whatever its key: shared by the HS256 path (`jwt.rs`) and
//! the JWKS keys (`jwk.rs`), so neither imports the other for it.

use jsonwebtoken::Validation;

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// The validation rules every token gets, whatever its key: `exp` and `nbf` checked when present
/// (with [`LEEWAY_SECS`]), neither required (tokens without `exp` are accepted, as before), and
/// `aud` not checked, since no audience is configured (Tiledesk's `aud` must not fail).
pub fn relax_validation(validation: &mut Validation) {
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
}
