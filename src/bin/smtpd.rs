//! smtpd: see smtpd(8).
fn main() {
    classicd::runtime::run(&classicd::smtp::SERVICE)
}
