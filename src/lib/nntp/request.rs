//! nntpd's narrow privileged path: what the unprivileged dialogue asks of
//! its monitor, and the answers, with a bounded codec. The dialogue runs
//! in an empty chroot and holds no file of the spool: it asks, and the
//! monitor (which checks every name and every right itself) answers with
//! values and, for reads, an open read-only descriptor:
//!
//! - `Rights`: what this client may do (read, post, feed), asked at the
//!   start and again after AUTHINFO;
//! - `Group`: a group's marks, with its overview file;
//! - `List`: the active, active.times, newsgroups, distrib.pats or history
//!   file (LIST, NEWGROUPS, NEWNEWS);
//! - `Article`, `ArticleById`: an article's file;
//! - `Check`: whether a message-id is wanted (CHECK, IHAVE);
//! - `Offers` (or `Begin`, `Data`..., `End` for a large article), told:
//!   articles of POST, IHAVE or TAKETHIS, as canonical text, as many as fit
//!   one message, kept in the monitor's batch;
//! - `Commit`: the last articles of the batch, and store it all; the
//!   answer has one outcome per article, given only once the batch is
//!   durable. A batch that fits one message costs one round trip.

use crate::runtime::session::ipc::{Malformed, Reader, Writer};

/// Largest piece of article data in one message.
pub const MAX_CHUNK: usize = 64 * 1024;
/// Most articles in one batch.
pub const MAX_BATCH: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListFile {
    Active,
    ActiveTimes,
    Newsgroups,
    DistribPats,
    History,
}

/// How an article arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Post,
    Ihave,
    Takethis,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Rights,
    Group(String),
    List(ListFile),
    Article(String, u64),
    ArticleById(String),
    Check(String),
    /// Whole articles.
    Offers(Vec<Piece>),
    Begin(Kind, String),
    Data(Vec<u8>),
    /// The article begun is complete; `too_big`: it was cut short
    /// because it passed the size limit.
    End(bool),
    /// The batch's last articles (perhaps none), then store it.
    Commit(Vec<Piece>),
}

/// A whole article: how it came, the message-id offered (empty for POST),
/// its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub kind: Kind,
    pub id: String,
    pub text: Vec<u8>,
}

impl Piece {
    /// What it adds to a message.
    pub fn size(&self) -> usize {
        self.text.len() + self.id.len() + 9
    }
}

/// Pieces of at most this many bytes in all go in one message.
pub const MAX_PIECES: usize = 72 * 1024;

/// The encoded size of `pieces`.
fn size(pieces: &[Piece]) -> usize {
    4 + pieces.iter().map(Piece::size).sum::<usize>()
}

fn put_pieces(mut w: Writer, pieces: &[Piece]) -> Writer {
    w = w.u32(pieces.len() as u32);
    for p in pieces {
        w = w.u8(kind_byte(p.kind)).str(&p.id).bytes(&p.text);
    }
    w
}

fn get_pieces(r: &mut Reader) -> Result<Vec<Piece>, Malformed> {
    let n = r.u32()? as usize;
    if n > MAX_BATCH {
        return Err(Malformed);
    }
    let mut out = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        out.push(Piece {
            kind: kind_from(r.u8()?)?,
            id: r.str(MAX_TEXT)?.to_string(),
            text: r.bytes(MAX_PIECES)?.to_vec(),
        });
    }
    Ok(out)
}

/// What a CHECK or IHAVE offer gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    Yes,
    /// Already here (or refused before).
    No,
    /// Not now (the spool is unavailable).
    Later,
}

/// What became of an article, as the dialogue needs it for its reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted(String),
    Duplicate,
    Refused(String),
    Failed(String),
    /// Mailed to the moderator of a moderated group.
    Mailed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Rights {
        /// The peer this client is (from peers_file), if any.
        peer: Option<String>,
        read: bool,
        post: bool,
    },
    /// With the overview file.
    Group {
        low: u64,
        high: u64,
        count: u64,
        flag: String,
    },
    NoSuchGroup,
    /// With the file.
    File,
    NoFile,
    /// With the article's file: where it is (by message-id).
    Found(String, u64),
    NotPermitted,
    Want(Want),
    Outcomes(Vec<Outcome>),
    Unavailable(String),
}

mod tag {
    pub const RIGHTS: u8 = 1;
    pub const GROUP: u8 = 2;
    pub const LIST: u8 = 3;
    pub const ARTICLE: u8 = 4;
    pub const BY_ID: u8 = 5;
    pub const CHECK: u8 = 6;
    pub const OFFER: u8 = 7;
    pub const BEGIN: u8 = 8;
    pub const DATA: u8 = 9;
    pub const END: u8 = 10;
    pub const COMMIT: u8 = 11;

    pub const R_RIGHTS: u8 = 101;
    pub const R_GROUP: u8 = 102;
    pub const R_NO_GROUP: u8 = 103;
    pub const R_FILE: u8 = 104;
    pub const R_NO_FILE: u8 = 105;
    pub const R_FOUND: u8 = 106;
    pub const R_NOT_PERMITTED: u8 = 107;
    pub const R_WANT: u8 = 108;
    pub const R_OUTCOMES: u8 = 109;
    pub const R_UNAVAILABLE: u8 = 110;
}

const MAX_NAME: usize = 250;
const MAX_TEXT: usize = 512;

fn kind_byte(k: Kind) -> u8 {
    match k {
        Kind::Post => 0,
        Kind::Ihave => 1,
        Kind::Takethis => 2,
    }
}

fn kind_from(b: u8) -> Result<Kind, Malformed> {
    match b {
        0 => Ok(Kind::Post),
        1 => Ok(Kind::Ihave),
        2 => Ok(Kind::Takethis),
        _ => Err(Malformed),
    }
}

fn list_byte(l: ListFile) -> u8 {
    match l {
        ListFile::Active => 0,
        ListFile::ActiveTimes => 1,
        ListFile::Newsgroups => 2,
        ListFile::DistribPats => 3,
        ListFile::History => 4,
    }
}

fn list_from(b: u8) -> Result<ListFile, Malformed> {
    Ok(match b {
        0 => ListFile::Active,
        1 => ListFile::ActiveTimes,
        2 => ListFile::Newsgroups,
        3 => ListFile::DistribPats,
        4 => ListFile::History,
        _ => return Err(Malformed),
    })
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Request::Rights => Writer::new(tag::RIGHTS).finish(),
            Request::Group(g) => Writer::new(tag::GROUP).str(g).finish(),
            Request::List(l) => Writer::new(tag::LIST).u8(list_byte(*l)).finish(),
            Request::Article(g, n) => Writer::new(tag::ARTICLE).str(g).u64(*n).finish(),
            Request::ArticleById(id) => Writer::new(tag::BY_ID).str(id).finish(),
            Request::Check(id) => Writer::new(tag::CHECK).str(id).finish(),
            Request::Offers(p) => {
                put_pieces(Writer::with_capacity(tag::OFFER, size(p)), p).finish()
            }
            Request::Begin(k, id) => Writer::new(tag::BEGIN).u8(kind_byte(*k)).str(id).finish(),
            Request::Data(d) => Writer::new(tag::DATA).bytes(d).finish(),
            Request::End(too_big) => Writer::new(tag::END).u8(u8::from(*too_big)).finish(),
            Request::Commit(p) => {
                put_pieces(Writer::with_capacity(tag::COMMIT, size(p)), p).finish()
            }
        }
    }

    pub fn decode(msg: &[u8]) -> Result<Request, Malformed> {
        let (t, mut r) = Reader::new(msg)?;
        let req = match t {
            tag::RIGHTS => Request::Rights,
            tag::GROUP => Request::Group(r.str(MAX_TEXT)?.to_string()),
            tag::LIST => Request::List(list_from(r.u8()?)?),
            tag::ARTICLE => Request::Article(r.str(MAX_TEXT)?.to_string(), r.u64()?),
            tag::BY_ID => Request::ArticleById(r.str(MAX_TEXT)?.to_string()),
            tag::CHECK => Request::Check(r.str(MAX_TEXT)?.to_string()),
            tag::OFFER => Request::Offers(get_pieces(&mut r)?),
            tag::BEGIN => Request::Begin(kind_from(r.u8()?)?, r.str(MAX_TEXT)?.to_string()),
            tag::DATA => Request::Data(r.bytes(MAX_CHUNK)?.to_vec()),
            tag::END => Request::End(r.bool()?),
            tag::COMMIT => Request::Commit(get_pieces(&mut r)?),
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(req)
    }
}

fn put_outcome(w: Writer, o: &Outcome) -> Writer {
    match o {
        Outcome::Accepted(id) => w.u8(0).str(id),
        Outcome::Duplicate => w.u8(1),
        Outcome::Refused(why) => w.u8(2).str(why),
        Outcome::Failed(why) => w.u8(3).str(why),
        Outcome::Mailed(to) => w.u8(4).str(to),
    }
}

fn get_outcome(r: &mut Reader) -> Result<Outcome, Malformed> {
    Ok(match r.u8()? {
        0 => Outcome::Accepted(r.str(MAX_TEXT)?.to_string()),
        1 => Outcome::Duplicate,
        2 => Outcome::Refused(r.str(MAX_TEXT)?.to_string()),
        3 => Outcome::Failed(r.str(MAX_TEXT)?.to_string()),
        4 => Outcome::Mailed(r.str(MAX_TEXT)?.to_string()),
        _ => return Err(Malformed),
    })
}

/// A text cut to fit a reply line.
pub fn short(s: &str) -> String {
    let s = crate::auth::printable(s);
    match s.char_indices().nth(200) {
        Some((i, _)) => s[..i].to_string(),
        None => s,
    }
}

impl Response {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Response::Rights { peer, read, post } => {
                let w = Writer::new(tag::R_RIGHTS);
                let w = match peer {
                    Some(p) => w.u8(1).str(p),
                    None => w.u8(0),
                };
                w.u8(u8::from(*read)).u8(u8::from(*post)).finish()
            }
            Response::Group {
                low,
                high,
                count,
                flag,
            } => Writer::new(tag::R_GROUP)
                .u64(*low)
                .u64(*high)
                .u64(*count)
                .str(flag)
                .finish(),
            Response::NoSuchGroup => Writer::new(tag::R_NO_GROUP).finish(),
            Response::File => Writer::new(tag::R_FILE).finish(),
            Response::NoFile => Writer::new(tag::R_NO_FILE).finish(),
            Response::Found(g, n) => Writer::new(tag::R_FOUND).str(g).u64(*n).finish(),
            Response::NotPermitted => Writer::new(tag::R_NOT_PERMITTED).finish(),
            Response::Want(w) => Writer::new(tag::R_WANT)
                .u8(match w {
                    Want::Yes => 0,
                    Want::No => 1,
                    Want::Later => 2,
                })
                .finish(),
            Response::Outcomes(list) => {
                let mut w = Writer::new(tag::R_OUTCOMES).u32(list.len() as u32);
                for o in list {
                    w = put_outcome(w, o);
                }
                w.finish()
            }
            Response::Unavailable(why) => Writer::new(tag::R_UNAVAILABLE).str(&short(why)).finish(),
        }
    }

    pub fn decode(msg: &[u8]) -> Result<Response, Malformed> {
        let (t, mut r) = Reader::new(msg)?;
        let resp = match t {
            tag::R_RIGHTS => {
                let peer = match r.u8()? {
                    0 => None,
                    1 => Some(r.str(MAX_NAME)?.to_string()),
                    _ => return Err(Malformed),
                };
                Response::Rights {
                    peer,
                    read: r.bool()?,
                    post: r.bool()?,
                }
            }
            tag::R_GROUP => Response::Group {
                low: r.u64()?,
                high: r.u64()?,
                count: r.u64()?,
                flag: r.str(MAX_NAME)?.to_string(),
            },
            tag::R_NO_GROUP => Response::NoSuchGroup,
            tag::R_FILE => Response::File,
            tag::R_NO_FILE => Response::NoFile,
            tag::R_FOUND => Response::Found(r.str(MAX_NAME)?.to_string(), r.u64()?),
            tag::R_NOT_PERMITTED => Response::NotPermitted,
            tag::R_WANT => Response::Want(match r.u8()? {
                0 => Want::Yes,
                1 => Want::No,
                2 => Want::Later,
                _ => return Err(Malformed),
            }),
            tag::R_OUTCOMES => {
                let n = r.u32()? as usize;
                if n > MAX_BATCH {
                    return Err(Malformed);
                }
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(get_outcome(&mut r)?);
                }
                Response::Outcomes(list)
            }
            tag::R_UNAVAILABLE => Response::Unavailable(r.str(MAX_TEXT)?.to_string()),
            _ => return Err(Malformed),
        };
        r.end()?;
        Ok(resp)
    }
}

/// Fuzzing entry point: any bytes as a request (what the root monitor
/// decodes from the unprivileged side) and as a response.
pub fn fuzz_request(data: &[u8]) {
    if let Ok(r) = Request::decode(data) {
        assert_eq!(Request::decode(&r.encode()), Ok(r));
    }
    if let Ok(r) = Response::decode(data) {
        let _ = r.encode();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Rights,
            Request::Group("a.b".into()),
            Request::List(ListFile::History),
            Request::Article("a.b".into(), 7),
            Request::ArticleById("<a@b>".into()),
            Request::Check("<a@b>".into()),
            Request::Offers(vec![Piece {
                kind: Kind::Takethis,
                id: "<a@b>".into(),
                text: b"text".to_vec(),
            }]),
            Request::Begin(Kind::Post, String::new()),
            Request::Data(vec![0; 100]),
            Request::End(true),
            Request::Commit(vec![]),
            Request::Commit(vec![Piece {
                kind: Kind::Post,
                id: String::new(),
                text: b"x".to_vec(),
            }]),
        ] {
            assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            Response::Rights {
                peer: Some("up".into()),
                read: true,
                post: false,
            },
            Response::Group {
                low: 1,
                high: 9,
                count: 9,
                flag: "y".into(),
            },
            Response::NoSuchGroup,
            Response::File,
            Response::NoFile,
            Response::Found("a".into(), 3),
            Response::NotPermitted,
            Response::Want(Want::Later),
            Response::Outcomes(vec![
                Outcome::Accepted("<a@b>".into()),
                Outcome::Duplicate,
                Outcome::Refused("x".into()),
                Outcome::Failed("y".into()),
                Outcome::Mailed("m@x".into()),
            ]),
            Response::Unavailable("z".into()),
        ] {
            assert_eq!(Response::decode(&r.encode()), Ok(r));
        }
    }

    #[test]
    fn bad_messages() {
        assert!(Request::decode(b"").is_err());
        assert!(Request::decode(&[99]).is_err());
        assert!(Request::decode(&[tag::LIST, 9]).is_err());
        // Trailing bytes.
        let mut m = Request::Commit(vec![]).encode();
        m.push(0);
        assert!(Request::decode(&m).is_err());
        // A chunk over the limit.
        let big = Writer::new(tag::DATA)
            .bytes(&vec![0; MAX_CHUNK + 1])
            .finish();
        assert!(Request::decode(&big).is_err());
        let many = Writer::new(tag::R_OUTCOMES)
            .u32(MAX_BATCH as u32 + 1)
            .finish();
        assert!(Response::decode(&many).is_err());
    }

    #[test]
    fn fuzz_entry_survives() {
        fuzz_request(&[tag::OFFER, 9]);
        fuzz_request(&[tag::R_RIGHTS, 1, 0, 0, 0, 1, b'x', 1, 1]);
    }
}
