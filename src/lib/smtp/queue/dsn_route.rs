//! Where a DSN to a local sender goes: the sender's local part expanded
//! through aliases(5) like any local recipient (postmaster, lists), but
//! without ~/.forward (a notification follows the address, not a user's
//! personal redirection).

use std::path::Path;

use super::route;
use super::Route;
use crate::auth::{AuthError, Authenticator};
use crate::smtp::aliases::{self, Aliases, Directory, Resolution, Target};
use crate::smtp::Config;

const MAX_INCLUDE: u64 = 1024 * 1024;

struct Dir<'a> {
    auth: &'a Authenticator,
    cfg: &'a Config,
}

impl Directory for Dir<'_> {
    fn account(&self, name: &str) -> Result<Option<String>, String> {
        match self.auth.lookup(name) {
            Ok(a) => Ok(a.map(|a| a.name)),
            Err(AuthError::Denied) => Ok(None),
            Err(AuthError::Unavailable(why)) => Err(why),
        }
    }

    fn forward(&self, _account: &str) -> Option<String> {
        None
    }

    fn include(&self, path: &str) -> Result<String, String> {
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if !meta.is_file() || meta.len() > MAX_INCLUDE {
            return Err("not a regular file of reasonable size".into());
        }
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }

    fn is_local_domain(&self, domain: &str) -> bool {
        self.cfg.is_local_domain(domain)
    }
}

/// The (address, route) pairs a DSN to `sender` is delivered to.
pub fn dsn_recipients(
    cfg: &Config,
    auth: &Authenticator,
    aliases_file: Option<&Path>,
    sender: &str,
) -> Vec<(String, Route)> {
    let domain = route::domain_of(sender);
    if !(domain.is_empty() || cfg.is_local_domain(&domain)) {
        return vec![(sender.to_string(), Route::Remote)];
    }
    let local = route::local_part(sender);
    let fallback = || {
        vec![(
            sender.to_string(),
            Route::Local {
                account: local.to_ascii_lowercase(),
                mailbox_spec: None,
            },
        )]
    };
    let table = aliases_file
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| Aliases::parse(&t).0)
        .unwrap_or_else(|| Aliases::parse("").0);
    let (res, _) = aliases::resolve(&table, &Dir { auth, cfg }, local);
    match res {
        Resolution::Targets(targets) => targets
            .into_iter()
            .filter_map(|t| match t {
                Target::Local(account) => Some((
                    sender.to_string(),
                    Route::Local {
                        account,
                        mailbox_spec: None,
                    },
                )),
                Target::Remote(addr) => Some((addr, Route::Remote)),
                Target::Discard => None,
            })
            .collect(),
        _ => fallback(),
    }
}
