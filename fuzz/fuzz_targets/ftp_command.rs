//! ftpd's control line: Telnet stripping, then the command parser.
#![no_main]
use classicd::ftp::command;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = command::has_telnet_interrupt(data);
    let line = command::strip_telnet(data);
    assert!(line.len() <= data.len());
    assert!(command::verb_of(&line).chars().count() <= 16);
    let shown = command::loggable(&line);
    assert!(
        shown.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{shown:?}"
    );
    if command::verb_of(&line) == "PASS" {
        assert_eq!(shown, "PASS ****");
    }
    let _ = format!("{:?}", command::parse(&line));
});
