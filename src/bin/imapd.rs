//! imapd: see imapd(8).
fn main() {
    classicd::runtime::run(&classicd::imap::SERVICE)
}
