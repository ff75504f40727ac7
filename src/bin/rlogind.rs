//! rlogind: see rlogind(8).
fn main() {
    classicd::runtime::run(&classicd::rlogin::SERVICE)
}
