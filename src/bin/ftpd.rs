//! ftpd: see ftpd(8).
fn main() {
    classicd::runtime::run(&classicd::ftp::SERVICE)
}
