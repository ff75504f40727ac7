//! stub
use crate::runtime::session::{PreLogin, TcpProtocol};
pub struct Imap;
pub static IMAP: Imap = Imap;
impl TcpProtocol for Imap {
    fn prelogin(&self, _s: PreLogin) {}
}
