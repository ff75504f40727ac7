//! Built without PAM (the `pam` feature off): system accounts cannot log
//! in, and say so; accounts from passwd_file work as ever.

use super::{Account, AuthError, Converse};

pub(super) struct PamLogin;

impl PamLogin {
    pub(super) fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

fn unavailable() -> AuthError {
    AuthError::Unavailable("built without PAM: set passwd_file".into())
}

pub(super) fn login(
    _service: &str,
    _name: &str,
    _password: &str,
    _peer: &str,
) -> Result<(Account, PamLogin), AuthError> {
    Err(unavailable())
}

pub(super) fn login_interactive(
    _service: &str,
    _name: Option<&str>,
    _peer: &str,
    _conv: Box<dyn Converse>,
) -> Result<(Account, PamLogin), AuthError> {
    Err(unavailable())
}

pub(super) fn login_trusted(
    _service: &str,
    _account: Account,
    _rhost: &str,
    _ruser: &str,
    _authenticate: bool,
) -> Result<(Account, PamLogin), AuthError> {
    Err(unavailable())
}

/// Nothing to keep loaded.
pub(super) fn keep_loaded(_service: &str) {}
