//! nntpd: see nntpd(8).
fn main() {
    classicd::runtime::run(&classicd::nntp::SERVICE)
}
