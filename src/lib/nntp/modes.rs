//! nntpd's extra command-line modes: `--newgroup`, `--rmgroup`,
//! `--expire` (and `--feed`, in `feed`). They act on the spool as its
//! owner, under the spool lock; a running server sees the change at once.

use std::time::{SystemTime, UNIX_EPOCH};

use super::spool::active::Flag;
use super::spool::{expire, Spool};
use super::Config;
use crate::runtime::config::Settings;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// As root, become the spool's owner (when it is not root) for good:
/// files this mode makes belong to it, as the server's do.
fn as_spool_owner(spool: &Spool) -> Result<(), String> {
    spool
        .create()
        .map_err(|e| format!("{}: {e}", spool.dir.display()))?;
    if !crate::auth::running_as_root() {
        return Ok(());
    }
    let (uid, gid) = spool.owner().map_err(|e| e.to_string())?;
    if uid == 0 {
        return Ok(());
    }
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    crate::auth::drop_privileges(&crate::auth::Account {
        name,
        uid,
        gid,
        home: spool.dir.clone(),
        shell: "/bin/false".into(),
        virtual_user: true,
        groups: vec![gid],
    })
    .map_err(|e| format!("cannot become the spool's owner: {e}"))
}

fn creator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| crate::auth::plausible_name(u))
        .unwrap_or_else(|| "nntpd".into())
}

/// `nntpd --newgroup NAME [y|n|m] [DESCRIPTION...]`
pub fn newgroup(settings: &Settings, args: &[String]) -> i32 {
    let cfg = settings.daemon::<Config>();
    let spool = Spool::new(&cfg.spool_dir);
    let Some(name) = args.first() else {
        eprintln!("nntpd: --newgroup NAME [y|n|m] [DESCRIPTION]");
        return 2;
    };
    let (flag, rest) = match args.get(1).map(String::as_str) {
        Some("y") => (Flag::Yes, &args[2..]),
        Some("n") => (Flag::No, &args[2..]),
        Some("m") => (Flag::Moderated, &args[2..]),
        _ => (Flag::Yes, &args[1..]),
    };
    if !super::command::valid_group_name(name) {
        eprintln!(
            "nntpd: '{}' is not a newsgroup name",
            crate::auth::printable(name)
        );
        return 2;
    }
    if let Err(e) = as_spool_owner(&spool) {
        eprintln!("nntpd: {e}");
        return 1;
    }
    let description = (!rest.is_empty()).then(|| rest.join(" "));
    match spool.new_group(
        name,
        flag.clone(),
        description.as_deref(),
        &creator(),
        now() as u64,
    ) {
        Ok(true) => {
            println!("created {name} ({})", flag.as_str());
            0
        }
        Ok(false) => {
            println!("{name} exists; its flag is now {}", flag.as_str());
            0
        }
        Err(e) => {
            eprintln!("nntpd: {e}");
            1
        }
    }
}

/// `nntpd --rmgroup NAME`
pub fn rmgroup(settings: &Settings, args: &[String]) -> i32 {
    let cfg = settings.daemon::<Config>();
    let spool = Spool::new(&cfg.spool_dir);
    let [name] = args else {
        eprintln!("nntpd: --rmgroup NAME");
        return 2;
    };
    if let Err(e) = as_spool_owner(&spool) {
        eprintln!("nntpd: {e}");
        return 1;
    }
    match spool.remove_group(name) {
        Ok(true) => {
            println!("removed {name}");
            0
        }
        Ok(false) => {
            eprintln!("nntpd: no group {}", crate::auth::printable(name));
            1
        }
        Err(e) => {
            eprintln!("nntpd: {e}");
            1
        }
    }
}

/// `nntpd --expire`
pub fn expire(settings: &Settings, args: &[String]) -> i32 {
    if !args.is_empty() {
        eprintln!("nntpd: --expire takes no arguments");
        return 2;
    }
    let cfg = settings.daemon::<Config>();
    let spool = Spool::new(&cfg.spool_dir);
    if let Err(e) = as_spool_owner(&spool) {
        eprintln!("nntpd: {e}");
        return 1;
    }
    match expire::run(cfg, now()) {
        Ok(r) => {
            log::info!(
                "expire: {} groups, {} articles removed, {} kept, {} history lines dropped",
                r.groups,
                r.removed,
                r.kept,
                r.history_dropped
            );
            println!(
                "{} groups, {} articles removed, {} kept, {} history lines dropped",
                r.groups, r.removed, r.kept, r.history_dropped
            );
            0
        }
        Err(e) => {
            eprintln!("nntpd: expire: {e}");
            1
        }
    }
}
