//! smtpd's DNS: replies as the resolver reads them (hickory-proto's
//! message format, our view of it), and the queries it writes. A reply
//! that decodes, encoded again and decoded, gives the same view; a query
//! decodes to the name, type and id it was built from.
#![no_main]
use classicd::smtp::queue::dns;
use hickory_proto::op::{Message, MessageType};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let view = dns::parse_response(data);
    if let Ok(m) = Message::from_vec(data) {
        assert_eq!(dns::response_of(&m), view);
        if let (Ok(first), Ok(bytes)) = (view, m.to_vec()) {
            let again = Message::from_vec(&bytes).expect("re-encoded reply decodes");
            let second = dns::response_of(&again).expect("still a response");
            assert_eq!(second, first, "the view changed through re-encoding");
            if let Some(q) = &first.question {
                let _ = dns::mx_plan(&q.name, &first);
            }
        }
    }
    // Queries: a name from the input.
    if data.len() >= 3 {
        let id = u16::from_be_bytes([data[0], data[1]]);
        let qtype =
            [dns::TYPE_A, dns::TYPE_AAAA, dns::TYPE_MX, dns::TYPE_CNAME][data[2] as usize % 4];
        if let Ok(name) = std::str::from_utf8(&data[3..]) {
            if let Ok(q) = dns::build_query(id, name, qtype) {
                assert!(q.len() <= 512);
                let m = Message::from_vec(&q).expect("our query decodes");
                assert_eq!(m.metadata.message_type, MessageType::Query);
                assert_eq!(m.metadata.id, id);
                assert_eq!(m.queries.len(), 1);
                let want = name.trim_end_matches('.').to_ascii_lowercase();
                assert_eq!(dns::name_text(m.queries[0].name()), want);
                assert_eq!(u16::from(m.queries[0].query_type()), qtype);
            }
        }
    }
});
