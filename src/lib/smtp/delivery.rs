//! smtpd's narrow privileged path: what the unprivileged dialogue asks of
//! its root monitor, and the answers, with a bounded codec. The dialogue
//! never touches the spool, the aliases, ~/.forward or a mailbox; it asks:
//!
//! - `Resolve`: the expansion of a local part (aliases, accounts,
//!   .forward), for RCPT (the monitor keeps it under the RCPT address),
//!   VRFY and EXPN;
//! - `Begin`: a new message in the queue, starting with the Received
//!   header the dialogue wrote (the monitor puts the queue id in it);
//! - `Data(chunk)`: the next bytes of the message, as stored;
//! - `Recipients` then `Commit`: the transaction, which the monitor checks
//!   against its own lookups before it delivers or queues the message;
//! - `Abort`: drop the message.
//!
//! Only `Resolve` and `Commit` are answered; the others are told (one-way
//! messages), and a failure among them makes the commit fail. A message
//! that fits in one channel message (most mail) is not told at all: its
//! `Begin`, data and recipients ride in the `Commit`, so a message costs
//! one round trip per recipient lookup and one for the commit; each
//! crossing between the processes is a process switch.
//!
//! The monitor trusts nothing here: every field is bounded, and the
//! dialogue names only the recipients it accepted: where their mail goes
//! the monitor takes from its own lookups (or, for an address elsewhere,
//! from whether this client may relay).

use super::aliases::{Resolution, Target};
use super::command::{MailParams, NotifyFlags, RcptParams, RetKind};
use crate::runtime::session::ipc::{Malformed, Reader, Writer};

/// Longest address or local part carried.
const MAX_ADDRESS: usize = 1024;
/// Most targets one recipient expands to (as `aliases::MAX_TARGETS`).
const MAX_TARGETS: usize = 1000;
/// A `Data` chunk, at most.
pub const MAX_CHUNK: usize = 64 * 1024;

/// A recipient the dialogue accepted: the address as the client gave it
/// and its DSN parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rcpt {
    pub address: String,
    pub params: RcptParams,
}
/// Recipients are sent in batches of about this many bytes.
pub const BATCH: usize = 48 * 1024;

/// A request of the dialogue.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `address`: the RCPT address (empty for VRFY and EXPN).
    Resolve {
        address: String,
        local: String,
    },
    /// The Received header, and where in it " id QUEUEID" goes.
    Begin {
        header: String,
        id_at: u32,
    },
    Data(Vec<u8>),
    /// More accepted recipients of the transaction to come.
    Recipients(Vec<Rcpt>),
    Commit(Commit),
    Abort,
}

/// The end of DATA: the transaction as the dialogue saw it.
#[derive(Debug, PartialEq, Eq)]
pub struct Commit {
    /// The message's start, when no `Begin` was told for it (a message
    /// that fits here whole): the Received header and where its id goes.
    pub begin: Option<(String, u32)>,
    /// The message's last bytes, not told in `Data`.
    pub data: Vec<u8>,
    pub sender: String,
    pub params: MailParams,
    /// The last recipients (earlier ones came in `Recipients`).
    pub recipients: Vec<Rcpt>,
    pub helo: String,
    pub size: u64,
    /// The SASL user, when the client logged in (the monitor checks it).
    pub auth_user: Option<String>,
    /// An LMTP transaction: no relaying, a reply per recipient.
    pub lmtp: bool,
}

/// The monitor's answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Response {
    /// A lookup's answer, and whether the queue can take a message now
    /// (so that DATA can be refused at once rather than after the message).
    Resolution(Resolution, bool),
    /// Stored (or delivered) under this id, or dropped ("(discarded)").
    Queued(String),
    /// The queue could not take it: 451.
    TempFail,
    /// LMTP: a reply (code, text after the code) per recipient of the
    /// commit, in RCPT order.
    Delivered(Vec<(u16, String)>),
}

mod tag {
    pub const RESOLVE: u8 = 1;
    pub const BEGIN: u8 = 2;
    pub const DATA: u8 = 3;
    pub const RECIPIENTS: u8 = 4;
    pub const COMMIT: u8 = 5;
    pub const ABORT: u8 = 6;

    pub const RESOLUTION: u8 = 101;
    pub const QUEUED: u8 = 104;
    pub const TEMPFAIL: u8 = 105;
    pub const DELIVERED: u8 = 106;
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

fn put_rcpts(mut w: Writer, list: &[Rcpt]) -> Writer {
    w = w.u32(list.len() as u32);
    for a in list {
        w = w.str(&a.address).u8(notify_byte(a.params.notify));
        w = put_opt(w, &a.params.orcpt);
    }
    w
}

fn get_rcpts(r: &mut Reader) -> Result<Vec<Rcpt>, Malformed> {
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
        out.push(Rcpt {
            address,
            params: RcptParams { notify, orcpt },
        });
    }
    Ok(out)
}

/// The encoded size of one recipient (for batching).
pub fn rcpt_size(a: &Rcpt) -> usize {
    put_rcpts(Writer::default(), std::slice::from_ref(a))
        .finish()
        .len()
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Resolve { address, local } => {
                Writer::new(tag::RESOLVE).str(address).str(local).finish()
            }
            Request::Begin { header, id_at } => {
                Writer::new(tag::BEGIN).str(header).u32(*id_at).finish()
            }
            Request::Data(b) => Writer::new(tag::DATA).bytes(b).finish(),
            Request::Recipients(list) => put_rcpts(Writer::new(tag::RECIPIENTS), list).finish(),
            Request::Commit(c) => {
                let ret = match c.params.ret {
                    None => 0,
                    Some(RetKind::Full) => 1,
                    Some(RetKind::Hdrs) => 2,
                };
                let mut w = Writer::new(tag::COMMIT);
                w = match &c.begin {
                    Some((header, id_at)) => w.u8(1).str(header).u32(*id_at),
                    None => w.u8(0),
                };
                w = w
                    .bytes(&c.data)
                    .str(&c.sender)
                    .u8(ret)
                    .u8(u8::from(c.params.smtputf8))
                    .u8(u8::from(c.params.body_8bit));
                w = put_opt(w, &c.params.envid);
                w = w.str(&c.helo).u64(c.size);
                w = put_opt(w, &c.auth_user).u8(u8::from(c.lmtp));
                put_rcpts(w, &c.recipients).finish()
            }
            Request::Abort => Writer::new(tag::ABORT).finish(),
        }
    }

    pub fn decode(msg: &[u8]) -> Result<Request, Malformed> {
        let (t, mut r) = Reader::new(msg)?;
        let req = match t {
            tag::RESOLVE => Request::Resolve {
                address: r.str(MAX_ADDRESS)?.to_string(),
                local: r.str(MAX_ADDRESS)?.to_string(),
            },
            tag::BEGIN => Request::Begin {
                header: r.str(MAX_CHUNK)?.to_string(),
                id_at: r.u32()?,
            },
            tag::DATA => Request::Data(r.bytes(MAX_CHUNK)?.to_vec()),
            tag::RECIPIENTS => Request::Recipients(get_rcpts(&mut r)?),
            tag::COMMIT => {
                let begin = match r.u8()? {
                    0 => None,
                    1 => Some((r.str(MAX_CHUNK)?.to_string(), r.u32()?)),
                    _ => return Err(Malformed),
                };
                let data = r.bytes(MAX_CHUNK)?.to_vec();
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
                let lmtp = r.bool()?;
                let recipients = get_rcpts(&mut r)?;
                Request::Commit(Commit {
                    begin,
                    data,
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
                    lmtp,
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
            Response::Resolution(res, ready) => {
                let w = Writer::new(tag::RESOLUTION).u8(u8::from(*ready));
                match res {
                    // Only EXPN shows the list: a long one is cut to what
                    // fits in a message.
                    Resolution::Targets(t) => {
                        let mut room = MAX_CHUNK;
                        let shown: Vec<Target> = t
                            .iter()
                            .take_while(|t| {
                                let n = match t {
                                    Target::Local(s) | Target::Remote(s) => s.len() + 5,
                                    Target::Discard => 1,
                                };
                                room = room.saturating_sub(n);
                                room > 0
                            })
                            .cloned()
                            .collect();
                        put_targets(w.u8(0), &shown).finish()
                    }
                    Resolution::Unknown => w.u8(1).finish(),
                    Resolution::Loop => w.u8(2).finish(),
                    Resolution::Unavailable(why) => w.u8(3).str(why).finish(),
                }
            }
            Response::Queued(id) => Writer::new(tag::QUEUED).str(id).finish(),
            Response::TempFail => Writer::new(tag::TEMPFAIL).finish(),
            Response::Delivered(list) => {
                let mut w = Writer::new(tag::DELIVERED).u32(list.len() as u32);
                for (code, text) in list {
                    w = w.u32(u32::from(*code)).str(text);
                }
                w.finish()
            }
        }
    }

    pub fn decode(msg: &[u8]) -> Result<Response, Malformed> {
        let (t, mut r) = Reader::new(msg)?;
        let resp = match t {
            tag::RESOLUTION => {
                let ready = r.bool()?;
                let res = match r.u8()? {
                    0 => Resolution::Targets(get_targets(&mut r)?),
                    1 => Resolution::Unknown,
                    2 => Resolution::Loop,
                    3 => Resolution::Unavailable(r.str(MAX_ADDRESS)?.to_string()),
                    _ => return Err(Malformed),
                };
                Response::Resolution(res, ready)
            }
            tag::QUEUED => Response::Queued(r.str(MAX_ADDRESS)?.to_string()),
            tag::TEMPFAIL => Response::TempFail,
            tag::DELIVERED => {
                let n = r.u32()? as usize;
                if n > super::state::MAX_RECIPIENTS {
                    return Err(Malformed);
                }
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    let code = u16::try_from(r.u32()?).map_err(|_| Malformed)?;
                    if !(200..600).contains(&code) {
                        return Err(Malformed);
                    }
                    list.push((code, r.str(MAX_ADDRESS)?.to_string()));
                }
                Response::Delivered(list)
            }
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted() -> Rcpt {
        Rcpt {
            address: "staff@mx.test".into(),
            params: RcptParams {
                notify: Some(NotifyFlags {
                    success: true,
                    failure: false,
                    delay: true,
                }),
                orcpt: Some("rfc822;staff@mx.test".into()),
            },
        }
    }

    fn targets() -> Vec<Target> {
        vec![
            Target::Local("demo".into()),
            Target::Remote("x@far.test".into()),
            Target::Discard,
        ]
    }

    #[test]
    fn requests_round_trip() {
        let all = [
            Request::Resolve {
                address: "demo@mx.test".into(),
                local: "demo".into(),
            },
            Request::Begin {
                header: "Received: from x\r\n".into(),
                id_at: 14,
            },
            Request::Data(vec![7; MAX_CHUNK]),
            Request::Recipients(vec![accepted(), accepted()]),
            Request::Commit(Commit {
                begin: Some(("Received: x\r\n".into(), 10)),
                data: b"Subject: y\r\n\r\nbody\r\n".to_vec(),
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
                lmtp: true,
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
            Response::Resolution(Resolution::Targets(targets()), true),
            Response::Resolution(Resolution::Unknown, false),
            Response::Resolution(Resolution::Loop, true),
            Response::Resolution(Resolution::Unavailable("x".into()), true),
            Response::Queued("ABC".into()),
            Response::TempFail,
            Response::Delivered(vec![(250, "2.0.0 ok".into()), (452, "4.2.2 full".into())]),
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
        let w = Writer::new(tag::DELIVERED).u32(1).u32(99).str("x").finish();
        assert!(Response::decode(&w).is_err());
        // A NOTIFY byte out of range.
        let mut bad = Request::Recipients(vec![accepted()]).encode();
        let at = 1 + 4 + 4 + "staff@mx.test".len();
        bad[at] = 9;
        assert!(Request::decode(&bad).is_err());
        // Trailing bytes.
        let mut extra = Request::Abort.encode();
        extra.push(0);
        assert!(Request::decode(&extra).is_err());
    }
}
