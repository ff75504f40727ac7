//! System accounts: NSS for the account, PAM to authenticate, authorise and
//! open the session (sudo-rs order: authenticate, account, open session,
//! environment; the session closes when the login is dropped).
//!
//! The conversation is either fixed (a name and password the protocol
//! already has: FTP, POP3, SMTP AUTH) or relayed: each prompt and message
//! of the PAM stack goes to the client's terminal through the pre-login
//! process, and each answer comes back (telnetd's and rlogind's login),
//! expired passwords changed as the stack asks.

use std::cell::RefCell;
use std::ffi::{CStr, CString};

use pam_client::{Context, Flag, SessionToken};
use pam_client::{ConversationHandler, ErrorCode};

use super::{system_account, Account, AuthError, Converse};

/// The conversation of one PAM context.
pub(super) enum Conv {
    /// Answers known beforehand: the name for a visible prompt, the
    /// password for a hidden one.
    Fixed { user: String, password: String },
    /// Relayed to the client; None once the login is over (a prompt after
    /// it, at session close, gets no answer).
    Relayed(Option<Box<dyn Converse>>),
}

fn cstring(s: String) -> Result<CString, ErrorCode> {
    CString::new(s).map_err(|_| ErrorCode::CONV_ERR)
}

impl Conv {
    fn ask(&mut self, prompt: &CStr, echo: bool) -> Result<CString, ErrorCode> {
        match self {
            Conv::Fixed { user, password } => {
                cstring(if echo { user.clone() } else { password.clone() })
            }
            Conv::Relayed(Some(c)) => match c.prompt(&prompt.to_string_lossy(), echo) {
                Some(answer) => cstring(answer),
                None => Err(ErrorCode::CONV_ERR),
            },
            Conv::Relayed(None) => Err(ErrorCode::CONV_ERR),
        }
    }

    fn tell(&mut self, msg: &CStr, error: bool) {
        if let Conv::Relayed(Some(c)) = self {
            c.show(&msg.to_string_lossy(), error);
        }
    }
}

impl ConversationHandler for Conv {
    fn prompt_echo_on(&mut self, prompt: &CStr) -> Result<CString, ErrorCode> {
        self.ask(prompt, true)
    }

    fn prompt_echo_off(&mut self, prompt: &CStr) -> Result<CString, ErrorCode> {
        self.ask(prompt, false)
    }

    fn text_info(&mut self, msg: &CStr) {
        self.tell(msg, false);
    }

    fn error_msg(&mut self, msg: &CStr) {
        self.tell(msg, true);
    }
}

pub(super) struct PamLogin {
    context: Context<Conv>,
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

thread_local! {
    /// The PAM stacks kept open in this process (see `keep_loaded`).
    static RESIDENT: RefCell<Vec<(String, Context<Conv>)>> = const { RefCell::new(Vec::new()) };
}

/// Keep the PAM stack of `service` open in this process for as long as it
/// lives: a context that never authenticates anyone, whose only effect is
/// that the stack's modules stay loaded. Each login opens its own context
/// as before, but finds the modules already mapped and relocated instead of
/// loading them and unloading them again at its end (the dynamic linker's
/// work was a fifth of a reused monitor's time per rsh command). Only for
/// a process that serves one login after another (a reused monitor).
pub(super) fn keep_loaded(service: &str) {
    RESIDENT.with(|r| {
        let mut r = r.borrow_mut();
        if r.iter().any(|(s, _)| s == service) {
            return;
        }
        match Context::new(service, None, Conv::Relayed(None)) {
            Ok(c) => r.push((service.to_string(), c)),
            Err(e) => log::debug!("PAM service {service} not kept loaded: {e}"),
        }
    });
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
            | C::CONV_ERR
    )
}

/// A name and password known beforehand.
pub(super) fn login(
    service: &str,
    name: &str,
    password: &str,
    peer: &str,
) -> Result<(Account, PamLogin), AuthError> {
    let conv = Conv::Fixed {
        user: name.to_string(),
        password: password.to_string(),
    };
    run(service, Some(name), peer, conv, false)
}

/// A login whose prompts go to the client (the name too, when `name` is
/// None); an expired password is changed if the stack allows it.
pub(super) fn login_interactive(
    service: &str,
    name: Option<&str>,
    peer: &str,
    conv: Box<dyn Converse>,
) -> Result<(Account, PamLogin), AuthError> {
    run(service, name, peer, Conv::Relayed(Some(conv)), true)
}

fn run(
    service: &str,
    name: Option<&str>,
    peer: &str,
    conv: Conv,
    interactive: bool,
) -> Result<(Account, PamLogin), AuthError> {
    let unavailable = |e: pam_client::Error| AuthError::Unavailable(format!("PAM: {e}"));
    let classify = |e: pam_client::Error| {
        if is_denial(&e) {
            AuthError::Denied
        } else {
            unavailable(e)
        }
    };
    let mut context = Context::new(service, name, conv).map_err(unavailable)?;
    let _ = context.set_rhost(Some(peer));
    crate::sys::with_huge_crypt_scratch(|| context.authenticate(Flag::DISALLOW_NULL_AUTHTOK))
        .map_err(classify)?;
    let user = context
        .user()
        .unwrap_or_else(|_| name.unwrap_or_default().to_string());
    // Past a correct password, any refusal is a plain denial: a distinct,
    // faster answer would tell the client that the password was right. A
    // person at a terminal may change an expired password, as login(1)
    // lets them.
    match context.acct_mgmt(Flag::DISALLOW_NULL_AUTHTOK) {
        Ok(()) => {}
        Err(e) if interactive && e.code() == ErrorCode::NEW_AUTHTOK_REQD => {
            context
                .chauthtok(Flag::CHANGE_EXPIRED_AUTHTOK)
                .map_err(|e| {
                    log::info!("PAM password change for {user}: {e}");
                    AuthError::Denied
                })?;
        }
        Err(e) => {
            log::info!("PAM account check for {user}: {e}");
            return Err(AuthError::Denied);
        }
    }
    // The conversation is over: nothing more is relayed to the client.
    if let Conv::Relayed(c) = context.conversation_mut() {
        *c = None;
    }
    open(context, &user)
}

/// A login proven by host trust (rlogind, rshd): PAM_RUSER and PAM_RHOST
/// are set; with `authenticate` the stack's auth stage decides (pam_rhosts:
/// `trust = pam`), with no conversation (a module that prompts fails);
/// without, the daemon's own trust decision stands for it. The account
/// stage and the session follow, as for a password.
pub(super) fn login_trusted(
    service: &str,
    account: Account,
    rhost: &str,
    ruser: &str,
    authenticate: bool,
) -> Result<(Account, PamLogin), AuthError> {
    let unavailable = |e: pam_client::Error| AuthError::Unavailable(format!("PAM: {e}"));
    let name = account.name.as_str();
    let mut context =
        Context::new(service, Some(name), Conv::Relayed(None)).map_err(unavailable)?;
    let _ = context.set_rhost(Some(rhost));
    let _ = context.set_ruser(Some(ruser));
    if authenticate {
        context.authenticate(Flag::SILENT).map_err(|e| {
            if is_denial(&e) {
                log::info!("PAM trust for {name}: {e}");
                AuthError::Denied
            } else {
                unavailable(e)
            }
        })?;
    }
    if let Err(e) = context.acct_mgmt(Flag::SILENT) {
        log::info!("PAM account check for {name}: {e}");
        return Err(AuthError::Denied);
    }
    // The account was looked up for the trust decision: PAM_USER is
    // still its name (no prompt could change it), so it is not looked up
    // again (NSS's group lists are most of an account's lookup).
    open_as(context, account)
}

/// The account and its session, once PAM has said yes.
fn open(context: Context<Conv>, user: &str) -> Result<(Account, PamLogin), AuthError> {
    let account = system_account(user).ok_or(AuthError::Denied)?;
    open_as(context, account)
}

/// The session of an account already looked up.
fn open_as(mut context: Context<Conv>, account: Account) -> Result<(Account, PamLogin), AuthError> {
    let user = account.name.as_str();
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
