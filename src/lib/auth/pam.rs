//! System accounts: NSS for the account, PAM to authenticate, authorise and
//! open the session (sudo-rs order: authenticate, account, open session,
//! environment; the session closes when the login is dropped).

use pam_client::conv_mock::Conversation;
use pam_client::{Context, Flag, SessionToken};

use super::{system_account, Account, AuthError};

pub(super) struct PamLogin {
    context: Context<Conversation>,
    session: Option<SessionToken>,
}

impl PamLogin {
    pub(super) fn env(&self) -> Vec<(String, String)> {
        self.context
            .envlist()
            .iter_tuples()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect()
    }
}

impl Drop for PamLogin {
    fn drop(&mut self) {
        if let Some(token) = self.session.take() {
            let session = self.context.unleak_session(token);
            let _ = session.close(Flag::NONE);
        }
    }
}

fn is_denial(e: &pam_client::Error) -> bool {
    use pam_client::ErrorCode as C;
    matches!(
        e.code(),
        C::AUTH_ERR
            | C::USER_UNKNOWN
            | C::MAXTRIES
            | C::PERM_DENIED
            | C::ACCT_EXPIRED
            | C::NEW_AUTHTOK_REQD
            | C::CRED_INSUFFICIENT
            | C::AUTHINFO_UNAVAIL
            | C::AUTHTOK_EXPIRED
            | C::CRED_EXPIRED
    )
}

pub(super) fn login(
    service: &str,
    name: &str,
    password: &str,
    peer: &str,
) -> Result<(Account, PamLogin), AuthError> {
    let unavailable = |e: pam_client::Error| AuthError::Unavailable(format!("PAM: {e}"));
    let classify = |e: pam_client::Error| {
        if is_denial(&e) {
            AuthError::Denied
        } else {
            unavailable(e)
        }
    };
    let conv = Conversation::with_credentials(name, password);
    let mut context = Context::new(service, Some(name), conv).map_err(unavailable)?;
    let _ = context.set_rhost(Some(peer));
    crate::sys::with_huge_crypt_scratch(|| context.authenticate(Flag::DISALLOW_NULL_AUTHTOK))
        .map_err(classify)?;
    // Past a correct password, any refusal is a plain denial: a distinct,
    // faster answer would tell the client that the password was right.
    context
        .acct_mgmt(Flag::DISALLOW_NULL_AUTHTOK)
        .map_err(|e| {
            log::info!("PAM account check for {name}: {e}");
            AuthError::Denied
        })?;
    let user = context.user().unwrap_or_else(|_| name.to_string());
    let account = system_account(&user).ok_or(AuthError::Denied)?;
    // Opening a session and setting credentials needs root; an unprivileged
    // daemon (a lab) authenticates only.
    let session = if super::running_as_root() {
        match context.open_session(Flag::NONE) {
            Ok(s) => Some(s.leak()),
            Err(e) => {
                log::warn!("PAM session for {user} not opened: {e}");
                None
            }
        }
    } else {
        None
    };
    Ok((account, PamLogin { context, session }))
}
