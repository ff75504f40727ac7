//! rshd: see rshd(8).
fn main() {
    classicd::runtime::run(&classicd::rsh::SERVICE)
}
