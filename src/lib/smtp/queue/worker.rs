//! The worker side of the queue runner: one delivery job in a forked
//! process, results reported to the runner as lines on a pipe.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::client::{ClientMessage, ClientRcpt, Outcome};
use super::local::{self, At, LocalTask};
use super::route::NextHop;
use super::spool::{self, StoredEnvelope};
use super::{dns, relay, Notify, Ret};
use crate::auth::{self, Authenticator};
use crate::smtp::Config;

/// One result from a worker.
#[derive(Clone, Debug)]
pub struct Res {
    pub rcpt: usize,
    pub outcome: Outcome,
    pub text: String,
    pub relay: String,
    /// The remote took over DSN duties (it announced DSN).
    pub remote_dsn: bool,
}

pub enum Job {
    Local {
        account: String,
        tasks: Vec<LocalTask>,
    },
    Remote {
        id: String,
        hop: NextHop,
        rcpts: Vec<usize>,
    },
}

fn format_result(id: &str, r: &Res) -> String {
    format!(
        "{id} {} {} {} {} {}\n",
        r.rcpt,
        match r.outcome {
            Outcome::Sent => 'S',
            Outcome::Deferred => 'D',
            Outcome::Failed => 'F',
        },
        r.remote_dsn as u8,
        spool::escape(&r.relay),
        spool::escape(&r.text)
    )
}

pub fn parse_result(line: &str) -> Option<(String, Res)> {
    let f: Vec<&str> = line.split(' ').collect();
    if f.len() != 6 {
        return None;
    }
    let outcome = match f[2] {
        "S" => Outcome::Sent,
        "D" => Outcome::Deferred,
        "F" => Outcome::Failed,
        _ => return None,
    };
    Some((
        f[0].to_string(),
        Res {
            rcpt: f[1].parse().ok()?,
            outcome,
            remote_dsn: f[3] == "1",
            relay: spool::unescape(f[4]).ok()?,
            text: spool::unescape(f[5]).ok()?,
        },
    ))
}

/// After the privilege drop: die with the runner.
fn tie_to_parent(parent: Pid) {
    crate::sys::die_with_parent(Signal::SIGKILL);
    if nix::unistd::getppid() != parent {
        std::process::exit(1);
    }
}

pub fn run_worker(cfg: &Config, auth: &Authenticator, parent: Pid, job: Job, w: OwnedFd) {
    let mut out = File::from(w);
    let mut send = |id: &str, r: Res| {
        let _ = out.write_all(format_result(id, &r).as_bytes());
    };
    match job {
        Job::Local { account, tasks } => {
            local::run_job(
                auth,
                &cfg.mail_location,
                &cfg.queue_dir,
                &account,
                &tasks,
                &|| tie_to_parent(parent),
                &mut |t: &LocalTask, outcome, text| {
                    send(
                        &t.id,
                        Res {
                            rcpt: t.rcpt,
                            outcome,
                            text,
                            relay: "local".into(),
                            remote_dsn: false,
                        },
                    )
                },
            );
        }
        Job::Remote { id, hop, rcpts } => {
            let fail_all = |send: &mut dyn FnMut(&str, Res), text: String| {
                for r in &rcpts {
                    send(
                        &id,
                        Res {
                            rcpt: *r,
                            outcome: Outcome::Deferred,
                            text: text.clone(),
                            relay: "none".into(),
                            remote_dsn: false,
                        },
                    );
                }
            };
            let (file, se) = match spool::open_message(&cfg.queue_dir, &id) {
                Ok(x) => x,
                Err(e) => {
                    fail_all(
                        &mut send,
                        format!("4.3.0 cannot open the queued message: {e}"),
                    );
                    return;
                }
            };
            if auth::running_as_root() {
                if let Some(nobody) = auth::system_account("nobody") {
                    if let Err(e) = auth::drop_privileges(&nobody) {
                        fail_all(&mut send, format!("4.3.0 cannot drop privileges: {e}"));
                        return;
                    }
                }
            }
            tie_to_parent(parent);
            let msg = client_message(&se, &rcpts);
            let resolver = dns::Resolver::from_system();
            let file = Arc::new(file);
            let size = se.size;
            let mut open = || -> io::Result<Box<dyn Read>> {
                Ok(Box::new(At {
                    file: file.clone(),
                    pos: 0,
                    end: size,
                }))
            };
            let res = relay::deliver(
                &cfg.hostname,
                &resolver,
                &hop,
                &msg,
                &mut open,
                &relay::Timeouts::default(),
            );
            for (rcpt, r) in res.results {
                send(
                    &id,
                    Res {
                        rcpt,
                        outcome: r.outcome,
                        text: r.text,
                        relay: res.relay.clone(),
                        remote_dsn: res.remote_dsn,
                    },
                );
            }
        }
    }
}

fn notify_param(n: &Notify) -> Option<String> {
    if n.never {
        return Some("NEVER".into());
    }
    let v: Vec<&str> = [
        (n.success, "SUCCESS"),
        (n.failure, "FAILURE"),
        (n.delay, "DELAY"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, s)| *s)
    .collect();
    (!v.is_empty()).then(|| v.join(","))
}

fn client_message(se: &StoredEnvelope, rcpts: &[usize]) -> ClientMessage {
    let env = &se.env;
    ClientMessage {
        sender: env.sender.clone(),
        size: se.size,
        body_8bit: env.body_8bit,
        smtputf8: env.smtputf8,
        ret: env.ret.map(|r| match r {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }),
        envid: env.envid.clone(),
        rcpts: rcpts
            .iter()
            .map(|&i| {
                let r = &env.recipients[i];
                ClientRcpt {
                    index: i,
                    address: r.address.clone(),
                    notify: notify_param(&r.notify),
                    orcpt: r.orcpt.clone(),
                }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_round_trip() {
        let r = Res {
            rcpt: 3,
            outcome: Outcome::Failed,
            text: "550 5.1.1 no such user: x y".into(),
            relay: "mx[127.0.0.1]:25".into(),
            remote_dsn: true,
        };
        let line = format_result("ABC", &r);
        assert!(line.ends_with('\n'));
        let (id, back) = parse_result(line.trim_end()).unwrap();
        assert_eq!(id, "ABC");
        assert_eq!(back.rcpt, 3);
        assert_eq!(back.outcome, Outcome::Failed);
        assert_eq!(back.text, r.text);
        assert_eq!(back.relay, r.relay);
        assert!(back.remote_dsn);
        assert!(parse_result("garbage").is_none());
    }

    #[test]
    fn notify_parameters() {
        assert_eq!(
            notify_param(&Notify::default()).as_deref(),
            Some("FAILURE,DELAY")
        );
        let never = Notify {
            never: true,
            success: false,
            failure: false,
            delay: false,
        };
        assert_eq!(notify_param(&never).as_deref(), Some("NEVER"));
    }
}
