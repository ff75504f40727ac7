//! pop3d: see pop3d(8).
fn main() {
    classicd::runtime::run(&classicd::pop3::SERVICE)
}
