//! A whole IMAP command (tag, name, arguments; literals inline) to a
//! [`Command`]. No I/O. The tag is recovered even when the rest is bad, so
//! the BAD reply carries it.

use super::syntax::{err, Input, Result, SeqSet, SyntaxError, MAX_DEPTH};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged {
    pub tag: String,
    pub uid: bool,
    pub command: Command,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SectionText {
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    Mime,
}

/// `BODY[1.2.HEADER]`: the part path and what of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchAtt {
    Flags,
    InternalDate,
    Rfc822Size,
    Envelope,
    /// BODY (no section): BODYSTRUCTURE without extension data.
    Body,
    BodyStructure,
    Uid,
    ModSeq,
    Rfc822,
    Rfc822Header,
    Rfc822Text,
    Section {
        peek: bool,
        section: Section,
        partial: Option<(u32, u32)>,
    },
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<(u32, u32)>,
    },
    BinarySize(Vec<u32>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Seq(SeqSet),
    Uid(SeqSet),
    Flag(&'static str, bool),
    Keyword(String, bool),
    New,
    Old,
    Recent(bool),
    Header(String, String),
    Body(String),
    Text(String),
    Before(i64),
    On(i64),
    Since(i64),
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    Larger(u64),
    Smaller(u64),
    ModSeq(u64),
    Not(Box<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    And(Vec<SearchKey>),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchReturn {
    /// RETURN given (ESEARCH form of the answer).
    pub extended: bool,
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
    pub ret_subscribed: bool,
    pub ret_children: bool,
    pub ret_special_use: bool,
    pub ret_status: Option<Vec<String>>,
    /// LIST-EXTENDED syntax used (selection options or several patterns).
    pub extended: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    pub known_uids: Option<SeqSet>,
    pub seq_match: Option<(SeqSet, SeqSet)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Capability,
    Noop,
    Logout,
    StartTls,
    Login(String, String),
    Authenticate(String, Option<String>),
    Enable(Vec<String>),
    Id(Vec<(String, Option<String>)>),
    Select {
        mailbox: Vec<u8>,
        read_only: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    },
    Create(Vec<u8>),
    Delete(Vec<u8>),
    Rename(Vec<u8>, Vec<u8>),
    Subscribe(Vec<u8>),
    Unsubscribe(Vec<u8>),
    List {
        reference: Vec<u8>,
        patterns: Vec<Vec<u8>>,
        options: ListOptions,
    },
    Lsub(Vec<u8>, Vec<u8>),
    Namespace,
    Status(Vec<u8>, Vec<String>),
    Append {
        mailbox: Vec<u8>,
        flags: Vec<String>,
        date: Option<i64>,
        message: Vec<u8>,
    },
    Check,
    Close,
    Unselect,
    Expunge(Option<SeqSet>),
    Search {
        ret: SearchReturn,
        charset: Option<String>,
        key: SearchKey,
    },
    Fetch {
        set: SeqSet,
        atts: Vec<FetchAtt>,
        changed_since: Option<u64>,
        vanished: bool,
    },
    Store {
        set: SeqSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    },
    Copy(SeqSet, Vec<u8>),
    Move(SeqSet, Vec<u8>),
    Idle,
}

/// Why a command was refused, with the tag when one was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadCommand {
    pub tag: Option<String>,
    pub why: String,
}

/// Parse one command: the bytes of its lines (CRLF between them, none at
/// the end), literals inline.
pub fn parse(b: &[u8]) -> std::result::Result<Tagged, BadCommand> {
    let mut i = Input::new(b);
    let tag = match i.tag() {
        Ok(t) => t.to_string(),
        Err(_) => {
            return Err(BadCommand {
                tag: None,
                why: "missing or bad tag".into(),
            })
        }
    };
    let bad = |e: SyntaxError, tag: &str| BadCommand {
        tag: Some(tag.to_string()),
        why: e.0,
    };
    if i.sp().is_err() {
        return Err(bad(SyntaxError("missing command".into()), &tag));
    }
    let uid = i.eat_word("UID") && i.sp().is_ok();
    let command = command(&mut i, uid).map_err(|e| bad(e, &tag))?;
    i.end().map_err(|e| bad(e, &tag))?;
    Ok(Tagged { tag, uid, command })
}

fn command(i: &mut Input, uid: bool) -> Result<Command> {
    let name = i.atom()?.to_ascii_uppercase();
    if uid
        && !matches!(
            name.as_str(),
            "FETCH" | "SEARCH" | "STORE" | "COPY" | "MOVE" | "EXPUNGE"
        )
    {
        return err(format!("UID {name} is not a command"));
    }
    let c = match name.as_str() {
        "CAPABILITY" => Command::Capability,
        "NOOP" => Command::Noop,
        "LOGOUT" => Command::Logout,
        "STARTTLS" => Command::StartTls,
        "CHECK" => Command::Check,
        "CLOSE" => Command::Close,
        "UNSELECT" => Command::Unselect,
        "NAMESPACE" => Command::Namespace,
        "IDLE" => Command::Idle,
        "LOGIN" => {
            i.sp()?;
            let u = i.astring_text()?;
            i.sp()?;
            let p = i.astring_text()?;
            Command::Login(u, p)
        }
        "AUTHENTICATE" => {
            i.sp()?;
            let mech = i.atom()?.to_ascii_uppercase();
            let initial = if i.eat(b' ') {
                let a = i.rest();
                i.pos = i.b.len();
                Some(String::from_utf8_lossy(a).into_owned())
            } else {
                None
            };
            Command::Authenticate(mech, initial)
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while i.eat(b' ') {
                caps.push(i.atom()?.to_ascii_uppercase());
            }
            if caps.is_empty() {
                return err("ENABLE needs a capability");
            }
            Command::Enable(caps)
        }
        "ID" => {
            i.sp()?;
            Command::Id(id_params(i)?)
        }
        "SELECT" | "EXAMINE" => {
            i.sp()?;
            let mailbox = i.astring()?;
            let (condstore, qresync) = select_params(i)?;
            Command::Select {
                mailbox,
                read_only: name == "EXAMINE",
                condstore,
                qresync,
            }
        }
        "CREATE" | "DELETE" | "SUBSCRIBE" | "UNSUBSCRIBE" => {
            i.sp()?;
            let m = i.astring()?;
            // CREATE's optional parameters (RFC 4466): USE (special-use).
            if name == "CREATE" && i.eat(b' ') {
                skip_parens(i, 0)?;
            }
            match name.as_str() {
                "CREATE" => Command::Create(m),
                "DELETE" => Command::Delete(m),
                "SUBSCRIBE" => Command::Subscribe(m),
                _ => Command::Unsubscribe(m),
            }
        }
        "RENAME" => {
            i.sp()?;
            let a = i.astring()?;
            i.sp()?;
            let b = i.astring()?;
            Command::Rename(a, b)
        }
        "LIST" => list(i)?,
        "LSUB" => {
            i.sp()?;
            let r = i.astring()?;
            i.sp()?;
            let p = i.list_mailbox()?;
            Command::Lsub(r, p)
        }
        "STATUS" => {
            i.sp()?;
            let m = i.astring()?;
            i.sp()?;
            Command::Status(m, status_items(i)?)
        }
        "APPEND" => append(i)?,
        "EXPUNGE" => {
            if uid {
                i.sp()?;
                Command::Expunge(Some(i.sequence_set()?))
            } else {
                Command::Expunge(None)
            }
        }
        "SEARCH" => search(i)?,
        "FETCH" => fetch(i)?,
        "STORE" => store(i)?,
        "COPY" | "MOVE" => {
            i.sp()?;
            let set = i.sequence_set()?;
            i.sp()?;
            let m = i.astring()?;
            if name == "COPY" {
                Command::Copy(set, m)
            } else {
                Command::Move(set, m)
            }
        }
        _ => return err(format!("unknown command {name}")),
    };
    Ok(c)
}

/// Skip a parenthesized list whatever it holds (bounded nesting).
fn skip_parens(i: &mut Input, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return err("nested too deeply");
    }
    i.expect(b'(')?;
    loop {
        match i.peek() {
            None => return err("unterminated list"),
            Some(b')') => {
                i.pos += 1;
                return Ok(());
            }
            Some(b'(') => skip_parens(i, depth + 1)?,
            Some(b'"') | Some(b'{') => {
                i.string()?;
            }
            Some(_) => i.pos += 1,
        }
    }
}

fn id_params(i: &mut Input) -> Result<Vec<(String, Option<String>)>> {
    if i.eat_word("NIL") {
        return Ok(Vec::new());
    }
    i.expect(b'(')?;
    let mut v = Vec::new();
    if i.eat(b')') {
        return Ok(v);
    }
    loop {
        let k = String::from_utf8_lossy(&i.string()?).into_owned();
        i.sp()?;
        let val = i
            .nstring_or_nil()?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        if v.len() < 30 {
            v.push((k, val));
        }
        if i.eat(b')') {
            return Ok(v);
        }
        i.sp()?;
    }
}

fn select_params(i: &mut Input) -> Result<(bool, Option<Qresync>)> {
    let mut condstore = false;
    let mut qresync = None;
    if !i.eat(b' ') {
        return Ok((false, None));
    }
    i.expect(b'(')?;
    loop {
        if i.eat(b')') {
            break;
        }
        if i.eat_word("CONDSTORE") {
            condstore = true;
        } else if i.eat_word("QRESYNC") {
            i.sp()?;
            i.expect(b'(')?;
            let uidvalidity = i.nz_number()?;
            i.sp()?;
            let modseq = i.number()?;
            let mut q = Qresync {
                uidvalidity,
                modseq,
                known_uids: None,
                seq_match: None,
            };
            if i.eat(b' ') {
                if i.at_sequence_set() {
                    q.known_uids = Some(i.sequence_set()?);
                    i.eat(b' ');
                }
                if i.eat(b'(') {
                    let a = i.sequence_set()?;
                    i.sp()?;
                    let b = i.sequence_set()?;
                    i.expect(b')')?;
                    q.seq_match = Some((a, b));
                }
            }
            i.expect(b')')?;
            qresync = Some(q);
        } else {
            return err("unknown SELECT parameter");
        }
        i.eat(b' ');
    }
    Ok((condstore, qresync))
}

fn list(i: &mut Input) -> Result<Command> {
    let mut o = ListOptions::default();
    i.sp()?;
    if i.eat(b'(') {
        o.extended = true;
        while !i.eat(b')') {
            let w = i.atom()?.to_ascii_uppercase();
            match w.as_str() {
                "SUBSCRIBED" => o.subscribed = true,
                "REMOTE" => o.remote = true,
                "RECURSIVEMATCH" => o.recursive_match = true,
                "SPECIAL-USE" => o.special_use = true,
                _ => return err(format!("unknown LIST selection option {w}")),
            }
            i.eat(b' ');
        }
        if o.recursive_match && !o.subscribed && !o.special_use {
            return err("RECURSIVEMATCH needs another selection option");
        }
        i.sp()?;
    }
    let reference = i.astring()?;
    i.sp()?;
    let mut patterns = Vec::new();
    if i.eat(b'(') {
        o.extended = true;
        loop {
            patterns.push(i.list_mailbox()?);
            if i.eat(b')') {
                break;
            }
            i.sp()?;
            if patterns.len() > 100 {
                return err("too many patterns");
            }
        }
    } else {
        patterns.push(i.list_mailbox()?);
    }
    if i.eat(b' ') {
        if !i.eat_word("RETURN") {
            return err("expected RETURN");
        }
        o.extended = true;
        i.sp()?;
        i.expect(b'(')?;
        while !i.eat(b')') {
            let w = i.atom()?.to_ascii_uppercase();
            match w.as_str() {
                "SUBSCRIBED" => o.ret_subscribed = true,
                "CHILDREN" => o.ret_children = true,
                "SPECIAL-USE" => o.ret_special_use = true,
                "STATUS" => {
                    i.sp()?;
                    o.ret_status = Some(status_items(i)?);
                }
                _ => return err(format!("unknown LIST return option {w}")),
            }
            i.eat(b' ');
        }
    }
    Ok(Command::List {
        reference,
        patterns,
        options: o,
    })
}

const STATUS_ITEMS: &[&str] = &[
    "MESSAGES",
    "RECENT",
    "UIDNEXT",
    "UIDVALIDITY",
    "UNSEEN",
    "SIZE",
    "HIGHESTMODSEQ",
    "DELETED",
    "APPENDLIMIT",
];

fn status_items(i: &mut Input) -> Result<Vec<String>> {
    i.expect(b'(')?;
    let mut v = Vec::new();
    loop {
        let w = i.atom()?.to_ascii_uppercase();
        if !STATUS_ITEMS.contains(&w.as_str()) {
            return err(format!("unknown STATUS item {w}"));
        }
        if !v.contains(&w) {
            v.push(w);
        }
        if i.eat(b')') {
            return Ok(v);
        }
        i.sp()?;
    }
}

fn append(i: &mut Input) -> Result<Command> {
    i.sp()?;
    let mailbox = i.astring()?;
    i.sp()?;
    let mut flags = Vec::new();
    if i.peek() == Some(b'(') {
        flags = i.flag_list()?;
        i.sp()?;
    }
    let mut date = None;
    if i.peek() == Some(b'"') {
        let d = i.string()?;
        date = Some(
            super::date::parse_datetime(&d).ok_or_else(|| SyntaxError("bad date-time".into()))?,
        );
        i.sp()?;
    }
    let message = i.literal()?.to_vec();
    Ok(Command::Append {
        mailbox,
        flags,
        date,
        message,
    })
}

fn search(i: &mut Input) -> Result<Command> {
    let mut ret = SearchReturn::default();
    let mut charset = None;
    i.sp()?;
    if i.eat_word("RETURN") {
        ret.extended = true;
        i.sp()?;
        i.expect(b'(')?;
        while !i.eat(b')') {
            let w = i.atom()?.to_ascii_uppercase();
            match w.as_str() {
                "MIN" => ret.min = true,
                "MAX" => ret.max = true,
                "ALL" => ret.all = true,
                "COUNT" => ret.count = true,
                "SAVE" => return err("SEARCHRES is not supported"),
                _ => return err(format!("unknown RETURN option {w}")),
            }
            i.eat(b' ');
        }
        if !(ret.min || ret.max || ret.count) {
            ret.all = true;
        }
        i.sp()?;
    }
    if i.eat_word("CHARSET") {
        i.sp()?;
        charset = Some(String::from_utf8_lossy(&i.astring()?).to_ascii_uppercase());
        i.sp()?;
    }
    let mut keys = vec![search_key(i, 0)?];
    while i.eat(b' ') {
        keys.push(search_key(i, 0)?);
        if keys.len() > 1000 {
            return err("too many search keys");
        }
    }
    let key = if keys.len() == 1 {
        keys.pop().expect("one")
    } else {
        SearchKey::And(keys)
    };
    Ok(Command::Search { ret, charset, key })
}

fn text_arg(i: &mut Input) -> Result<String> {
    i.sp()?;
    Ok(String::from_utf8_lossy(&i.astring()?).into_owned())
}

fn date_arg(i: &mut Input) -> Result<i64> {
    i.sp()?;
    let d = i.astring()?;
    super::date::parse_date(&d).ok_or_else(|| SyntaxError("bad date".into()))
}

fn search_key(i: &mut Input, depth: usize) -> Result<SearchKey> {
    use SearchKey as K;
    if depth > MAX_DEPTH {
        return err("search nested too deeply");
    }
    if i.eat(b'(') {
        let mut keys = vec![search_key(i, depth + 1)?];
        while i.eat(b' ') {
            keys.push(search_key(i, depth + 1)?);
            if keys.len() > 1000 {
                return err("too many search keys");
            }
        }
        i.expect(b')')?;
        return Ok(if keys.len() == 1 {
            keys.pop().expect("one")
        } else {
            K::And(keys)
        });
    }
    if i.at_sequence_set() {
        return Ok(K::Seq(i.sequence_set()?));
    }
    let w = i.atom()?.to_ascii_uppercase();
    Ok(match w.as_str() {
        "ALL" => K::All,
        "ANSWERED" => K::Flag("\\Answered", true),
        "DELETED" => K::Flag("\\Deleted", true),
        "DRAFT" => K::Flag("\\Draft", true),
        "FLAGGED" => K::Flag("\\Flagged", true),
        "SEEN" => K::Flag("\\Seen", true),
        "UNANSWERED" => K::Flag("\\Answered", false),
        "UNDELETED" => K::Flag("\\Deleted", false),
        "UNDRAFT" => K::Flag("\\Draft", false),
        "UNFLAGGED" => K::Flag("\\Flagged", false),
        "UNSEEN" => K::Flag("\\Seen", false),
        "NEW" => K::New,
        "OLD" => K::Old,
        "RECENT" => K::Recent(true),
        "KEYWORD" | "UNKEYWORD" => {
            i.sp()?;
            K::Keyword(i.atom()?.to_string(), w == "KEYWORD")
        }
        "BCC" | "CC" | "FROM" | "TO" | "SUBJECT" => {
            let v = text_arg(i)?;
            K::Header(w.clone(), v)
        }
        "HEADER" => {
            let f = text_arg(i)?;
            let v = text_arg(i)?;
            K::Header(f.to_ascii_uppercase(), v)
        }
        "BODY" => K::Body(text_arg(i)?),
        "TEXT" => K::Text(text_arg(i)?),
        "BEFORE" => K::Before(date_arg(i)?),
        "ON" => K::On(date_arg(i)?),
        "SINCE" => K::Since(date_arg(i)?),
        "SENTBEFORE" => K::SentBefore(date_arg(i)?),
        "SENTON" => K::SentOn(date_arg(i)?),
        "SENTSINCE" => K::SentSince(date_arg(i)?),
        "LARGER" => {
            i.sp()?;
            K::Larger(i.number()?)
        }
        "SMALLER" => {
            i.sp()?;
            K::Smaller(i.number()?)
        }
        "UID" => {
            i.sp()?;
            K::Uid(i.sequence_set()?)
        }
        "NOT" => {
            i.sp()?;
            K::Not(Box::new(search_key(i, depth + 1)?))
        }
        "OR" => {
            i.sp()?;
            let a = search_key(i, depth + 1)?;
            i.sp()?;
            let b = search_key(i, depth + 1)?;
            K::Or(Box::new(a), Box::new(b))
        }
        "MODSEQ" => {
            i.sp()?;
            // An optional entry name and type (`"/flags/\\seen" all`).
            if i.peek() == Some(b'"') {
                i.string()?;
                i.sp()?;
                i.atom()?;
                i.sp()?;
            }
            K::ModSeq(i.number()?)
        }
        _ => return err(format!("unknown search key {w}")),
    })
}

fn fetch(i: &mut Input) -> Result<Command> {
    i.sp()?;
    let set = i.sequence_set()?;
    i.sp()?;
    let mut atts = Vec::new();
    if i.eat(b'(') {
        loop {
            atts.push(fetch_att(i)?);
            if i.eat(b')') {
                break;
            }
            i.sp()?;
            if atts.len() > 100 {
                return err("too many fetch items");
            }
        }
    } else if i.eat_word("ALL") {
        atts = vec![
            FetchAtt::Flags,
            FetchAtt::InternalDate,
            FetchAtt::Rfc822Size,
            FetchAtt::Envelope,
        ];
    } else if i.eat_word("FAST") {
        atts = vec![
            FetchAtt::Flags,
            FetchAtt::InternalDate,
            FetchAtt::Rfc822Size,
        ];
    } else if i.eat_word("FULL") {
        atts = vec![
            FetchAtt::Flags,
            FetchAtt::InternalDate,
            FetchAtt::Rfc822Size,
            FetchAtt::Envelope,
            FetchAtt::Body,
        ];
    } else {
        atts.push(fetch_att(i)?);
    }
    let mut changed_since = None;
    let mut vanished = false;
    if i.eat(b' ') {
        i.expect(b'(')?;
        loop {
            if i.eat_word("CHANGEDSINCE") {
                i.sp()?;
                changed_since = Some(i.number()?);
            } else if i.eat_word("VANISHED") {
                vanished = true;
            } else {
                return err("unknown FETCH modifier");
            }
            if i.eat(b')') {
                break;
            }
            i.sp()?;
        }
        if vanished && changed_since.is_none() {
            return err("VANISHED needs CHANGEDSINCE");
        }
    }
    Ok(Command::Fetch {
        set,
        atts,
        changed_since,
        vanished,
    })
}

fn part_path(i: &mut Input) -> Result<Vec<u32>> {
    let mut part = Vec::new();
    while i.peek().is_some_and(|c| c.is_ascii_digit()) {
        part.push(i.nz_number()?);
        if part.len() > 64 {
            return err("part path too deep");
        }
        if !i.eat(b'.') {
            break;
        }
    }
    Ok(part)
}

fn partial(i: &mut Input) -> Result<Option<(u32, u32)>> {
    if !i.eat(b'<') {
        return Ok(None);
    }
    let start = i.number32()?;
    i.expect(b'.')?;
    let len = i.nz_number()?;
    i.expect(b'>')?;
    Ok(Some((start, len)))
}

fn header_list(i: &mut Input) -> Result<Vec<String>> {
    i.sp()?;
    i.expect(b'(')?;
    let mut v = Vec::new();
    loop {
        v.push(String::from_utf8_lossy(&i.astring()?).to_ascii_uppercase());
        if i.eat(b')') {
            return Ok(v);
        }
        i.sp()?;
        if v.len() > 200 {
            return err("too many header fields");
        }
    }
}

fn section(i: &mut Input) -> Result<Section> {
    i.expect(b'[')?;
    let mut s = Section {
        part: part_path(i)?,
        text: None,
    };
    if i.peek() != Some(b']') {
        let w = i.atom()?.to_ascii_uppercase();
        s.text = Some(match w.as_str() {
            "HEADER" => SectionText::Header,
            "TEXT" => SectionText::Text,
            "MIME" if !s.part.is_empty() => SectionText::Mime,
            "HEADER.FIELDS" => SectionText::HeaderFields(header_list(i)?),
            "HEADER.FIELDS.NOT" => SectionText::HeaderFieldsNot(header_list(i)?),
            _ => return err(format!("bad section {w}")),
        });
    }
    i.expect(b']')?;
    Ok(s)
}

fn fetch_att(i: &mut Input) -> Result<FetchAtt> {
    let start = i.pos;
    while i
        .peek()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
    {
        i.pos += 1;
    }
    let w = String::from_utf8_lossy(&i.b[start..i.pos]).to_ascii_uppercase();
    Ok(match w.as_str() {
        "FLAGS" => FetchAtt::Flags,
        "INTERNALDATE" => FetchAtt::InternalDate,
        "RFC822.SIZE" => FetchAtt::Rfc822Size,
        "ENVELOPE" => FetchAtt::Envelope,
        "BODYSTRUCTURE" => FetchAtt::BodyStructure,
        "UID" => FetchAtt::Uid,
        "MODSEQ" => FetchAtt::ModSeq,
        "RFC822" => FetchAtt::Rfc822,
        "RFC822.HEADER" => FetchAtt::Rfc822Header,
        "RFC822.TEXT" => FetchAtt::Rfc822Text,
        "BODY" | "BODY.PEEK" if i.peek() == Some(b'[') => {
            let section = section(i)?;
            FetchAtt::Section {
                peek: w == "BODY.PEEK",
                section,
                partial: partial(i)?,
            }
        }
        "BODY" => FetchAtt::Body,
        "BINARY" | "BINARY.PEEK" | "BINARY.SIZE" => {
            i.expect(b'[')?;
            let part = part_path(i)?;
            i.expect(b']')?;
            if w == "BINARY.SIZE" {
                FetchAtt::BinarySize(part)
            } else {
                FetchAtt::Binary {
                    peek: w == "BINARY.PEEK",
                    part,
                    partial: partial(i)?,
                }
            }
        }
        _ => return err(format!("unknown fetch item {w}")),
    })
}

fn store(i: &mut Input) -> Result<Command> {
    i.sp()?;
    let set = i.sequence_set()?;
    i.sp()?;
    let mut unchanged_since = None;
    if i.eat(b'(') {
        if !i.eat_word("UNCHANGEDSINCE") {
            return err("unknown STORE modifier");
        }
        i.sp()?;
        unchanged_since = Some(i.number()?);
        i.expect(b')')?;
        i.sp()?;
    }
    let mode = if i.eat(b'+') {
        StoreMode::Add
    } else if i.eat(b'-') {
        StoreMode::Remove
    } else {
        StoreMode::Replace
    };
    let w = i.atom()?.to_ascii_uppercase();
    let silent = match w.as_str() {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return err("expected FLAGS or FLAGS.SILENT"),
    };
    i.sp()?;
    let flags = if i.peek() == Some(b'(') {
        i.flag_list()?
    } else {
        let mut v = vec![i.flag()?];
        while i.eat(b' ') {
            v.push(i.flag()?);
        }
        v
    };
    Ok(Command::Store {
        set,
        mode,
        silent,
        flags,
        unchanged_since,
    })
}

/// Fuzzing entry point: any bytes as one command. Must never panic.
pub fn fuzz_command(data: &[u8]) {
    let _ = parse(data);
}

/// Fuzzing entry point for the IMAP grammar, with what can be written back
/// checked by parsing it again (cargo-fuzz target `imap`):
/// - one command (literals inline) parses or is refused, never panics; a
///   parsed command's tag is the bytes it starts with;
/// - a sequence set read from the input, written out again over a mailbox
///   of up to 1,000 messages (`compress`), reads back as the same numbers;
/// - a mailbox name in modified UTF-7 that decodes, encodes back to a name
///   that decodes the same; any text encodes to a name that decodes to it.
pub fn fuzz_imap(data: &[u8]) {
    use super::syntax::{compress, Input};
    if let Ok(t) = parse(data) {
        assert!(!t.tag.is_empty() && data.starts_with(t.tag.as_bytes()));
    }
    if let Ok(set) = Input::new(data).sequence_set() {
        let largest = 1 + u32::from(data.first().copied().unwrap_or(0)) * 4;
        let nums: Vec<u32> = (1..=largest)
            .filter(|&n| set.contains(n, largest))
            .collect();
        if !nums.is_empty() {
            let text = compress(&nums);
            let again = Input::new(text.as_bytes())
                .sequence_set()
                .unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
            let back: Vec<u32> = (1..=largest)
                .filter(|&n| again.contains(n, largest))
                .collect();
            assert_eq!(back, nums, "{text:?}");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(name) = super::mutf7::decode(text) {
            let written = super::mutf7::encode(&name);
            assert_eq!(
                super::mutf7::decode(&written).as_deref(),
                Some(name.as_str())
            );
        }
        let written = super::mutf7::encode(text);
        assert_eq!(
            super::mutf7::decode(&written).as_deref(),
            Some(text),
            "{written:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Tagged {
        parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn bad(s: &[u8]) -> BadCommand {
        parse(s).expect_err(&String::from_utf8_lossy(s))
    }

    #[test]
    fn fuzz_entry_holds_on_seeds() {
        for seed in [
            &b"a1 UID FETCH 1:*,3,7:5 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"[..],
            b"1:3,5,*",
            b"*:4294967295,2",
            b"&AOk-t&AOk-",
            b"INBOX.&ZeVnLIqe-",
            b"&-&",
            b"a LOGIN {4}\r\ndemo {2+}\r\npw",
            b"\xff\xfe",
        ] {
            fuzz_imap(seed);
        }
    }

    #[test]
    fn simple_commands() {
        assert_eq!(ok("a1 CAPABILITY").command, Command::Capability);
        assert_eq!(ok("a noop").command, Command::Noop);
        assert_eq!(ok("x LOGOUT").tag, "x");
        assert_eq!(
            ok("a LOGIN demo \"pa ss\"").command,
            Command::Login("demo".into(), "pa ss".into())
        );
        assert_eq!(
            ok("a LOGIN {4}\r\ndemo {2+}\r\npw").command,
            Command::Login("demo".into(), "pw".into())
        );
        assert_eq!(
            ok("a AUTHENTICATE PLAIN AGRlbW8AZGVtbw==").command,
            Command::Authenticate("PLAIN".into(), Some("AGRlbW8AZGVtbw==".into()))
        );
        assert_eq!(
            ok("a ENABLE QRESYNC condstore").command,
            Command::Enable(vec!["QRESYNC".into(), "CONDSTORE".into()])
        );
        assert_eq!(
            ok("a ID (\"name\" \"mutt\" \"version\" NIL)").command,
            Command::Id(vec![
                ("name".into(), Some("mutt".into())),
                ("version".into(), None)
            ])
        );
        assert_eq!(ok("a ID NIL").command, Command::Id(vec![]));
        assert_eq!(
            ok("a UID EXPUNGE 1:3").command,
            Command::Expunge(Some(SeqSet(vec![(1, 3)])))
        );
        assert!(ok("a UID FETCH 1 FLAGS").uid);
    }

    #[test]
    fn mailbox_commands() {
        match ok("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))").command
        {
            Command::Select {
                mailbox,
                read_only,
                qresync: Some(q),
                ..
            } => {
                assert_eq!(mailbox, b"INBOX");
                assert!(!read_only);
                assert_eq!(q.uidvalidity, 67890007);
                assert_eq!(q.modseq, 20050715194045000);
                assert!(q.known_uids.is_some());
            }
            c => panic!("{c:?}"),
        }
        assert!(matches!(
            ok("a EXAMINE \"Sent\" (CONDSTORE)").command,
            Command::Select {
                read_only: true,
                condstore: true,
                ..
            }
        ));
        assert_eq!(
            ok("a RENAME a b").command,
            Command::Rename(b"a".to_vec(), b"b".to_vec())
        );
        assert_eq!(
            ok("a CREATE Foo (USE (\\Drafts))").command,
            Command::Create(b"Foo".to_vec())
        );
        match ok("a LIST (SUBSCRIBED) \"\" (\"*\" %) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))")
            .command
        {
            Command::List {
                patterns, options, ..
            } => {
                assert_eq!(patterns, vec![b"*".to_vec(), b"%".to_vec()]);
                assert!(options.subscribed && options.ret_children && options.extended);
                assert_eq!(
                    options.ret_status,
                    Some(vec!["MESSAGES".into(), "UNSEEN".into()])
                );
            }
            c => panic!("{c:?}"),
        }
        assert!(matches!(
            ok("a LIST \"\" INBOX.*").command,
            Command::List { .. }
        ));
        assert_eq!(
            ok("a STATUS INBOX (MESSAGES SIZE)").command,
            Command::Status(b"INBOX".to_vec(), vec!["MESSAGES".into(), "SIZE".into()])
        );
        match ok("a APPEND Sent (\\Seen) \" 1-Jan-2020 10:00:00 +0000\" {5}\r\nhello").command {
            Command::Append {
                mailbox,
                flags,
                date,
                message,
            } => {
                assert_eq!(mailbox, b"Sent");
                assert_eq!(flags, vec!["\\Seen"]);
                assert_eq!(date, Some(1577872800));
                assert_eq!(message, b"hello");
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn fetch_store_search() {
        match ok("a FETCH 1:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100> BINARY[1] RFC822.SIZE) (CHANGEDSINCE 5 VANISHED)").command {
            Command::Fetch { atts, changed_since, vanished, .. } => {
                assert_eq!(atts.len(), 4);
                assert_eq!(atts[1], FetchAtt::Section {
                    peek: true,
                    section: Section { part: vec![1, 2], text: Some(SectionText::HeaderFields(vec!["FROM".into(), "TO".into()])) },
                    partial: Some((0, 100)),
                });
                assert_eq!(changed_since, Some(5));
                assert!(vanished);
            }
            c => panic!("{c:?}"),
        }
        assert!(
            matches!(ok("a FETCH 1 ALL").command, Command::Fetch { atts, .. } if atts.len() == 4)
        );
        assert!(matches!(
            ok("a FETCH 1 BODY[]").command,
            Command::Fetch { .. }
        ));
        assert!(
            matches!(ok("a FETCH 1 BODY").command, Command::Fetch { atts, .. } if atts == vec![FetchAtt::Body])
        );
        match ok("a UID STORE 1:3 +FLAGS.SILENT (\\Deleted $Junk)").command {
            Command::Store {
                mode,
                silent,
                flags,
                ..
            } => {
                assert_eq!(mode, StoreMode::Add);
                assert!(silent);
                assert_eq!(flags, vec!["\\Deleted", "$Junk"]);
            }
            c => panic!("{c:?}"),
        }
        assert!(matches!(
            ok("a STORE 1 (UNCHANGEDSINCE 12) FLAGS \\Seen").command,
            Command::Store {
                unchanged_since: Some(12),
                ..
            }
        ));
        match ok("a SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR FROM alice (SUBJECT \"hi there\" NOT SEEN) SINCE 1-Feb-2024 UID 1:*").command {
            Command::Search { ret, charset, key } => {
                assert!(ret.extended && ret.min && ret.count && !ret.all);
                assert_eq!(charset.as_deref(), Some("UTF-8"));
                assert!(matches!(key, SearchKey::And(ref v) if v.len() == 3));
            }
            c => panic!("{c:?}"),
        }
        assert!(matches!(
            ok("a SEARCH 1:5,7").command,
            Command::Search {
                key: SearchKey::Seq(_),
                ..
            }
        ));
        assert!(matches!(ok("a MOVE 1:2 Trash").command, Command::Move(..)));
    }

    #[test]
    fn bad_input() {
        assert_eq!(bad(b"").tag, None);
        assert_eq!(bad(b"*").tag, None);
        assert_eq!(bad(b"a").tag.as_deref(), Some("a"));
        assert_eq!(bad(b"a FOO").tag.as_deref(), Some("a"));
        for b in [
            &b"a LOGIN"[..],
            b"a LOGIN x",
            b"a UID NOOP",
            b"a SELECT",
            b"a FETCH 0 FLAGS",
            b"a FETCH 1 (FLAGS",
            b"a FETCH 1 BODY[9999999999]",
            b"a FETCH 1 BODY[HEADER.FIELDS ()]",
            b"a STORE 1 FLAGS",
            b"a STORE 1 XFLAGS \\Seen",
            b"a SEARCH",
            b"a SEARCH FROM",
            b"a SEARCH BEFORE 32-Foo-2020",
            b"a LOGIN {5}\r\nab",
            b"a NOOP extra",
            b"a APPEND x {99999999999999999999}\r\n",
            b"a LIST (RECURSIVEMATCH) \"\" *",
            b"a STATUS INBOX (BOGUS)",
            b"a ENABLE",
        ] {
            bad(b);
        }
        // Deep nesting ends in a BAD, not a stack overflow.
        let deep = format!("a SEARCH {}ALL{}", "(".repeat(100_000), ")".repeat(100_000));
        bad(deep.as_bytes());
        let deep = format!("a SEARCH {}ALL", "NOT ".repeat(100_000));
        bad(deep.as_bytes());
        // Garbage of every kind.
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let v: Vec<u8> = (0..64)
                .map(|_| {
                    x = x.wrapping_mul(1103515245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            fuzz_command(&v);
            let mut w = b"a FETCH 1 (".to_vec();
            w.extend_from_slice(&v);
            fuzz_command(&w);
        }
    }
}
