//! tftpd's packets: parse, then for what the server builds (DATA, ACK,
//! ERROR, OACK) build again and parse to the same; option negotiation and
//! netascii conversion on what the packet carries.
#![no_main]
use classicd::tftp::packet::{self, ErrorCode, Packet};

const CODES: [ErrorCode; 9] = [
    ErrorCode::NotDefined,
    ErrorCode::FileNotFound,
    ErrorCode::AccessViolation,
    ErrorCode::DiskFull,
    ErrorCode::IllegalOperation,
    ErrorCode::UnknownTransferId,
    ErrorCode::FileExists,
    ErrorCode::NoSuchUser,
    ErrorCode::BadOptions,
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(p) = packet::parse(data) else {
        return;
    };
    match &p {
        Packet::Request(r) => {
            assert!(!r.filename.is_empty());
            let (n, ack) = packet::negotiate(&r.options, 65464, 64);
            assert!((8..=65464).contains(&n.blksize) && n.windowsize >= 1);
            assert!(n.timeout_secs >= 1 && n.timeout_secs <= packet::MAX_TIMEOUT);
            // The server sends an OACK only when it acknowledges something.
            if !ack.is_empty() {
                let oack = packet::oack(&ack);
                assert_eq!(packet::parse(&oack), Ok(Packet::OAck(ack)));
            }
        }
        Packet::Data {
            block,
            data: payload,
        } => {
            let mut out = Vec::new();
            packet::data(*block, payload, &mut out);
            assert_eq!(out, data);
            // netascii: what goes out comes back.
            let mut wire = Vec::new();
            packet::to_netascii(payload, &mut wire);
            let mut back = Vec::new();
            let mut cr = false;
            for c in wire.chunks(1 + *block as usize % 7) {
                packet::from_netascii(c, &mut cr, &mut back);
            }
            assert!(!cr);
            assert_eq!(back, *payload);
        }
        Packet::Ack { block } => {
            assert_eq!(packet::parse(&packet::ack(*block)), Ok(p.clone()));
        }
        Packet::Error { code, message } => {
            if let Some(&c) = CODES.get(*code as usize) {
                let again = packet::error(c, message);
                let parsed = packet::parse(&again);
                assert_eq!(
                    parsed,
                    Ok(Packet::Error {
                        code: *code,
                        message: message.clone()
                    })
                );
            }
        }
        Packet::OAck(options) => {
            assert_eq!(packet::oack(options), data);
        }
    }
});
