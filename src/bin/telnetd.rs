//! telnetd: see telnetd(8).
fn main() {
    classicd::runtime::run(&classicd::telnetd::SERVICE)
}
