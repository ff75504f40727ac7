//! smtpd's narrow privileged path: what the unprivileged dialogue asks of
//! its root monitor, and the answers, with a bounded codec. The dialogue
//! never touches the spool, the aliases, ~/.forward or a mailbox; it asks:
//!
//! - `Resolve(local part)`: the recipient's expansion (aliases, accounts,
//!   .forward), for RCPT, VRFY and EXPN;
//! - `Begin`: a new message in the queue (its id goes in Received);
//! - `Data(chunk)`: the next bytes of the message, as stored;
//! - `Recipients` then `Commit`: the transaction, which the monitor checks
//!   against its own lookups before it delivers or queues the message;
//! - `Abort`: drop the message.
//!
//! The monitor trusts nothing here: every field is bounded, and every
//! target of the envelope must be one its own lookups produced (or a
//! relayed address the client may relay to).

use super::aliases::{Resolution, Target};
use super::command::{MailParams, NotifyFlags, RcptParams, RetKind};
use super::state::Accepted;
use crate::runtime::session::ipc::{Malformed, Reader, Writer};

/// Longest address or local part carried.
const MAX_ADDRESS: usize = 1024;
/// Most targets one recipient expands to (as `aliases::MAX_TARGETS`).
const MAX_TARGETS: usize = 1000;
/// A `Data` chunk, at most.
pub const MAX_CHUNK: usize = 64 * 1024;
/// Recipients are sent in batches of about this many bytes.
pub const BATCH: usize = 48 * 1024;

/// A request of the dialogue.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Resolve(String),
    Begin,
    Data(Vec<u8>),
    /// More accepted recipients of the transaction to come.
    Recipients(Vec<Accepted>),
    Commit(Commit),
    Abort,
}

/// The end of DATA: the transaction as the dialogue saw it.
#[derive(Debug, PartialEq, Eq)]
pub struct Commit {
    pub sender: String,
    pub params: MailParams,
    /// The last recipients (earlier ones came in `Recipients`).
    pub recipients: Vec<Accepted>,
    pub helo: String,
    pub size: u64,
    /// The SASL user, when the client logged in (the monitor checks it).
    pub auth_user: Option<String>,
}

/// The monitor's answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Response {
    Resolution(Resolution),
    /// The new message's queue id.
    Begun(String),
    Ok,
    /// Stored (or delivered) under this id, or dropped ("(discarded)").
    Queued(String),
    /// The queue could not take it: 451.
    TempFail,
}

mod tag {
    pub const RESOLVE: u8 = 1;
    pub const BEGIN: u8 = 2;
    pub const DATA: u8 = 3;
    pub const RECIPIENTS: u8 = 4;
    pub const COMMIT: u8 = 5;
    pub const ABORT: u8 = 6;

    pub const RESOLUTION: u8 = 101;
    pub const BEGUN: u8 = 102;
    pub const OK: u8 = 103;
    pub const QUEUED: u8 = 104;
    pub const TEMPFAIL: u8 = 105;
}

fn put_opt(w: Writer, v: &Option<String>) -> Writer {
    match v {
        Some(s) => w.u8(1).str(s),
        None => w.u8(0),
    }
}

fn get_opt(r: &mut Reader, max: usize) -> Result<Option<String>, Malformed> {
    Ok(match r.u8()? {
        0 => None,
        1 => Some(r.str(max)?.to_string()),
        _ => return Err(Malformed),
    })
}

fn put_targets(mut w: Writer, targets: &[Target]) -> Writer {
    w = w.u32(targets.len() as u32);
    for t in targets {
        w = match t {
            Target::Local(n) => w.u8(0).str(n),
            Target::Remote(a) => w.u8(1).str(a),
            Target::Discard => w.u8(2),
        };
    }
    w
}

fn get_targets(r: &mut Reader) -> Result<Vec<Target>, Malformed> {
    let n = r.u32()? as usize;
    if n > MAX_TARGETS {
        return Err(Malformed);
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(match r.u8()? {
            0 => Target::Local(r.str(MAX_ADDRESS)?.to_string()),
            1 => Target::Remote(r.str(MAX_ADDRESS)?.to_string()),
            2 => Target::Discard,
            _ => return Err(Malformed),
        });
    }
    Ok(out)
}

fn notify_byte(n: Option<NotifyFlags>) -> u8 {
    match n {
        None => 0x80,
        Some(f) => u8::from(f.success) | u8::from(f.failure) << 1 | u8::from(f.delay) << 2,
    }
}

fn notify_from(b: u8) -> Result<Option<NotifyFlags>, Malformed> {
    match b {
        0x80 => Ok(None),
        b if b < 8 => Ok(Some(NotifyFlags {
            success: b & 1 != 0,
            failure: b & 2 != 0,
            delay: b & 4 != 0,
        })),
        _ => Err(Malformed),
    }
}

fn put_accepted(mut w: Writer, list: &[Accepted]) -> Writer {
    w = w.u32(list.len() as u32);
    for a in list {
        w = w.str(&a.address).u8(notify_byte(a.params.notify));
        w = put_opt(w, &a.params.orcpt);
        w = put_targets(w, &a.targets);
    }
    w
}

fn get_accepted(r: &mut Reader) -> Result<Vec<Accepted>, Malformed> {
    let n = r.u32()? as usize;
    // Each takes at least a few bytes: the count cannot outrun the message.
    if n > super::state::MAX_RECIPIENTS {
        return Err(Malformed);
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let address = r.str(MAX_ADDRESS)?.to_string();
        let notify = notify_from(r.u8()?)?;
        let orcpt = get_opt(r, MAX_ADDRESS)?;
        let targets = get_targets(r)?;
        out.push(Accepted {
            address,
            params: RcptParams { notify, orcpt },
            targets,
        });
    }
    Ok(out)
}

/// The encoded size of one accepted recipient (for batching).
pub fn accepted_size(a: &Accepted) -> usize {
    put_accepted(Writer::default(), std::slice::from_ref(a))
        .finish()
        .len()
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Resolve(local) => Writer::new(tag::RESOLVE).str(local).finish(),
            Request::Begin => Writer::new(tag::BEGIN).finish(),
            Request::Data(b) => Writer::new(tag::DATA).bytes(b).finish(),
            Request::Recipients(list) => put_accepted(Writer::new(tag::RECIPIENTS), list).finish(),
            Request::Commit(c) => {
                let ret = match c.params.ret {
                    None => 0,
                    Some(RetKind::Full) => 1,
                    Some(RetKind::Hdrs) => 2,
                };
                let mut w = Writer::new(tag::COMMIT)
                    .str(&c.sender)
                    .u8(ret)
                    .u8(u8::from(c.params.smtputf8))
                    .u8(u8::from(c.params.body_8bit));
                w = put_opt(w, &c.params.envid);
                w = w.str(&c.helo).u64(c.size);
                w = put_opt(w, &c.auth_user);
                put_accepted(w, &c.recipients).finish()
            }
            Request::Abort => Writer::new(tag::ABORT).finish(),
        }
    }

    pub fn decode(msg: &[u8]) -> Result<Request, Malformed> {
        let (t, mut r) = Reader::new(msg)?;
        let req = match t {
            tag::RESOLVE => Request::Resolve(r.str(MAX_ADDRESS)?.to_string()),
            tag::BEGIN => Request::Begin,
            tag::DATA => Request::Data(r.bytes(MAX_CHUNK)?.to_vec()),
            tag::RECIPIENTS => Request::Recipients(get_accepted(&mut r)?),
            tag::COMMIT => {
                let sender = r.str(MAX_ADDRESS)?.to_string();
                let ret = match r.u8()? {
                    0 => None,
                    1 => Some(RetKind::Full),
                    2 => Some(RetKind::Hdrs),
                    _ => return Err(Malformed),
                };
                let smtputf8 = r.bool()?;
                let body_8bit = r.bool()?;
                let envid = get_opt(&mut r, MAX_ADDRESS)?;
                let helo = r.str(MAX_ADDRESS)?.to_string();
                let size = r.u64()?;
                let auth_user = get_opt(&mut r, MAX_ADDRESS)?;
                let recipients = get_accepted(&mut r)?;
                Request::Commit(Commit {
                    sender,
                    params: MailParams {
                        ret,
                        smtputf8,
                        body_8bit,
                        envid,
                        ..MailParams::default()
                    },
                    recipients,
                    helo,
                    size,
                    auth_user,
                })
            }
            tag::ABORT => Request::Abort,
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(req)
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Response::Resolution(res) => {
                let w = Writer::new(tag::RESOLUTION);
                match res {
                    Resolution::Targets(t) => put_targets(w.u8(0), t).finish(),
                    Resolution::Unknown => w.u8(1).finish(),
                    Resolution::Loop => w.u8(2).finish(),
                    Resolution::Unavailable(why) => w.u8(3).str(why).finish(),
                }
            }
            Response::Begun(id) => Writer::new(tag::BEGUN).str(id).finish(),
            Response::Ok => Writer::new(tag::OK).finish(),
            Response::Queued(id) => Writer::new(tag::QUEUED).str(id).finish(),
            Response::TempFail => Writer::new(tag::TEMPFAIL).finish(),
        }
    }

    pub fn decode(msg: &[u8]) -> Result<Response, Malformed> {
        let (t, mut r) = Reader::new(msg)?;
        let resp = match t {
            tag::RESOLUTION => Response::Resolution(match r.u8()? {
                0 => Resolution::Targets(get_targets(&mut r)?),
                1 => Resolution::Unknown,
                2 => Resolution::Loop,
                3 => Resolution::Unavailable(r.str(MAX_ADDRESS)?.to_string()),
                _ => return Err(Malformed),
            }),
            tag::BEGUN => Response::Begun(r.str(MAX_ADDRESS)?.to_string()),
            tag::OK => Response::Ok,
            tag::QUEUED => Response::Queued(r.str(MAX_ADDRESS)?.to_string()),
            tag::TEMPFAIL => Response::TempFail,
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted() -> Accepted {
        Accepted {
            address: "staff@mx.test".into(),
            params: RcptParams {
                notify: Some(NotifyFlags {
                    success: true,
                    failure: false,
                    delay: true,
                }),
                orcpt: Some("rfc822;staff@mx.test".into()),
            },
            targets: vec![
                Target::Local("demo".into()),
                Target::Remote("x@far.test".into()),
                Target::Discard,
            ],
        }
    }

    #[test]
    fn requests_round_trip() {
        let all = [
            Request::Resolve("demo".into()),
            Request::Begin,
            Request::Data(vec![7; MAX_CHUNK]),
            Request::Recipients(vec![accepted(), accepted()]),
            Request::Commit(Commit {
                sender: "a@far.test".into(),
                params: MailParams {
                    ret: Some(RetKind::Hdrs),
                    envid: Some("E1".into()),
                    body_8bit: true,
                    ..MailParams::default()
                },
                recipients: vec![accepted()],
                helo: "client".into(),
                size: 12345,
                auth_user: Some("demo".into()),
            }),
            Request::Abort,
        ];
        for r in all {
            assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn responses_round_trip() {
        let all = [
            Response::Resolution(Resolution::Targets(accepted().targets)),
            Response::Resolution(Resolution::Unknown),
            Response::Resolution(Resolution::Loop),
            Response::Resolution(Resolution::Unavailable("x".into())),
            Response::Begun("ABC".into()),
            Response::Ok,
            Response::Queued("ABC".into()),
            Response::TempFail,
        ];
        for r in all {
            assert_eq!(Response::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(Request::decode(&[]).is_err());
        assert!(Request::decode(&[99]).is_err());
        // A huge recipient count in a short message.
        let w = Writer::new(tag::RECIPIENTS).u32(u32::MAX).finish();
        assert!(Request::decode(&w).is_err());
        // A NOTIFY byte out of range.
        let mut bad = Request::Recipients(vec![accepted()]).encode();
        let at = 1 + 4 + 4 + "staff@mx.test".len();
        bad[at] = 9;
        assert!(Request::decode(&bad).is_err());
        // Trailing bytes.
        let mut extra = Request::Begin.encode();
        extra.push(0);
        assert!(Request::decode(&extra).is_err());
    }
}
