//! rlogind's side of the pty relay (4.3BSD rlogind's `protocol()`): client
//! bytes go to the terminal with the window-size escapes taken out (and
//! applied) wherever they fall; the terminal's packet-mode control bytes
//! that matter to the client go to it as TCP urgent data: flush-write
//! (0x02), and the no-stop/do-stop pair (0x10/0x20) when the terminal goes
//! raw or cooked, each with the window request (0x80) set until the client
//! has sent a window size.

use super::command::{next_piece, Piece, ESCAPE_LEN};
use crate::pty::{Filter, Outputs, PacketControl, UrgentMark, WindowSize};

/// TIOCPKT_WINDOW: the server wants the client's window size.
pub const WINDOW_REQUEST: u8 = 0x80;

/// The control bits the client acts on (BSD's `pkcontrol`).
const TO_CLIENT: u8 = PacketControl::FLUSHWRITE | PacketControl::NOSTOP | PacketControl::DOSTOP;

pub struct RloginFilter {
    /// No window size has come from the client since the request.
    pub window_pending: bool,
    /// Window sizes applied so far (a count, not a list: a client may send
    /// them for as long as it likes) and the last one.
    pub resizes: u64,
    pub last_window: Option<WindowSize>,
}

impl RloginFilter {
    pub fn new(window_pending: bool) -> RloginFilter {
        RloginFilter {
            window_pending,
            resizes: 0,
            last_window: None,
        }
    }

    /// The urgent byte for a control byte from the terminal, if the client
    /// must hear of it.
    pub fn urgent_for(&self, control: u8) -> Option<u8> {
        let window = if self.window_pending {
            WINDOW_REQUEST
        } else {
            0
        };
        (control & TO_CLIENT != 0).then_some(control | window)
    }
}

impl Filter for RloginFilter {
    fn on_network(&mut self, input: &[u8], _urgent: UrgentMark, out: &mut Outputs) -> usize {
        let mut at = 0;
        while at < input.len() {
            match next_piece(&input[at..]) {
                Piece::Data(n) => {
                    let n = n.min(out.terminal_room());
                    if n == 0 || !out.to_terminal(&input[at..at + n]) {
                        break;
                    }
                    at += n;
                }
                Piece::Window(size) => {
                    if let Err(e) = out.resize(size) {
                        log::debug!("window size: {e}");
                    }
                    if self.resizes == 0 {
                        // Once per session: tests and admins see that the
                        // client's window took (a client that never sends it
                        // leaves the shell at 24x80).
                        log::info!(
                            "window size from the client: {} rows, {} columns",
                            size.rows,
                            size.cols
                        );
                    }
                    self.window_pending = false;
                    self.resizes += 1;
                    self.last_window = Some(size);
                    at += ESCAPE_LEN;
                }
                Piece::Incomplete => break,
            }
        }
        at
    }

    fn on_packet_control(&mut self, control: PacketControl, out: &mut Outputs) {
        if let Some(byte) = self.urgent_for(control.0) {
            // CONTROL_ROOM is free: it fits.
            let _ = out.urgent(byte);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_for_the_client() {
        let mut f = RloginFilter::new(true);
        assert_eq!(f.urgent_for(PacketControl::FLUSHWRITE), Some(0x82));
        assert_eq!(f.urgent_for(PacketControl::NOSTOP), Some(0x90));
        assert_eq!(f.urgent_for(PacketControl::DOSTOP), Some(0xa0));
        assert_eq!(
            f.urgent_for(PacketControl::FLUSHREAD | PacketControl::FLUSHWRITE),
            Some(0x83)
        );
        // Not for the client: flush-read alone, stop, start.
        assert_eq!(f.urgent_for(PacketControl::FLUSHREAD), None);
        assert_eq!(f.urgent_for(PacketControl::STOP), None);
        assert_eq!(f.urgent_for(PacketControl::START), None);
        // Once a window size came, no more window request.
        f.window_pending = false;
        assert_eq!(f.urgent_for(PacketControl::NOSTOP), Some(0x10));
    }
}
