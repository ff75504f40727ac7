//! tftpd: see tftpd(8).
fn main() {
    classicd::runtime::run(&classicd::tftp::SERVICE)
}
