//! The builtin login's line editing: the rlogin client puts its terminal
//! in raw mode, so before the shell's pseudo-terminal exists the server
//! echoes and edits what is typed at the "login:" and "Password:" prompts
//! itself, as a terminal in cooked mode would. Pure: bytes in, echo and a
//! finished line out.

/// Longest answer to a prompt.
pub const ANSWER_MAX: usize = 256;

/// What a typed byte did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Nothing to show (or the answer is hidden).
    Nothing,
    /// Show these bytes (the echo).
    Echo(Vec<u8>),
    /// The answer is complete; show the echo (a new line).
    Done(String, Vec<u8>),
    /// The person gave up (^C, or ^D on an empty line).
    Abandon,
}

/// One prompt's answer being typed.
pub struct LineEditor {
    line: Vec<u8>,
    echo: bool,
    /// The last byte was CR: an LF or NUL right after it is part of it.
    after_cr: bool,
}

impl LineEditor {
    pub fn new(echo: bool) -> LineEditor {
        LineEditor {
            line: Vec::new(),
            echo,
            after_cr: false,
        }
    }

    /// Whether the byte right after a finished line is the rest of its
    /// end (CR LF, CR NUL) and not typed-ahead input.
    pub fn swallows(previous_was_cr: bool, b: u8) -> bool {
        previous_was_cr && matches!(b, b'\n' | 0)
    }

    pub fn feed(&mut self, b: u8) -> Edit {
        let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
        match b {
            b'\r' | b'\n' => {
                let _ = after_cr;
                let line = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                Edit::Done(line, b"\r\n".to_vec())
            }
            // ^C; ^D on an empty line.
            0x03 => Edit::Abandon,
            0x04 if self.line.is_empty() => Edit::Abandon,
            // Erase: BS, DEL.
            0x08 | 0x7f => match self.line.pop() {
                Some(_) if self.echo => Edit::Echo(b"\x08 \x08".to_vec()),
                _ => Edit::Nothing,
            },
            // Kill the line: ^U.
            0x15 => {
                let n = self.line.len();
                self.line.clear();
                if self.echo {
                    Edit::Echo(b"\x08 \x08".repeat(n))
                } else {
                    Edit::Nothing
                }
            }
            // Other controls are not part of an answer.
            0..=0x1f => Edit::Nothing,
            _ if self.line.len() >= ANSWER_MAX => Edit::Nothing,
            _ => {
                self.line.push(b);
                if self.echo {
                    Edit::Echo(vec![b])
                } else {
                    Edit::Nothing
                }
            }
        }
    }
}

/// Text for the terminal: every LF made CR LF, as a cooked terminal shows it.
pub fn crlf(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    let mut prev = 0u8;
    for &b in text.as_bytes() {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

/// Fuzz entry point: the editor on any bytes; returns the lines it made.
pub fn fuzz_line_editor(data: &[u8]) -> Vec<String> {
    let mut e = LineEditor::new(data.first().is_some_and(|b| b & 1 == 1));
    let mut lines = Vec::new();
    for &b in data {
        if let Edit::Done(l, _) = e.feed(b) {
            assert!(l.len() <= ANSWER_MAX * 3);
            lines.push(l);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(echo: bool, input: &[u8]) -> (Vec<u8>, Option<Edit>) {
        let mut e = LineEditor::new(echo);
        let mut shown = Vec::new();
        for &b in input {
            match e.feed(b) {
                Edit::Echo(x) => shown.extend(x),
                Edit::Nothing => {}
                end => return (shown, Some(end)),
            }
        }
        (shown, None)
    }

    #[test]
    fn names_are_echoed_and_edited() {
        let (shown, end) = typed(true, b"demx\x7fo\r");
        assert_eq!(shown, b"demx\x08 \x08o");
        assert_eq!(end, Some(Edit::Done("demo".into(), b"\r\n".to_vec())));
        let (_, end) = typed(true, b"wrong\x15demo\n");
        assert_eq!(end, Some(Edit::Done("demo".into(), b"\r\n".to_vec())));
    }

    #[test]
    fn passwords_are_not_echoed() {
        let (shown, end) = typed(false, b"s3cret\x08t\r");
        assert!(shown.is_empty());
        assert_eq!(end, Some(Edit::Done("s3cret".into(), b"\r\n".to_vec())));
    }

    #[test]
    fn giving_up_and_odd_bytes() {
        assert_eq!(typed(true, b"ab\x03").1, Some(Edit::Abandon));
        assert_eq!(typed(true, b"\x04").1, Some(Edit::Abandon));
        let (shown, end) = typed(true, b"a\x04\x1b[Ab\r");
        assert_eq!(shown, b"a[Ab");
        assert_eq!(end, Some(Edit::Done("a[Ab".into(), b"\r\n".to_vec())));
        // Bounded.
        let mut long = vec![b'x'; ANSWER_MAX + 50];
        long.push(b'\r');
        match typed(false, &long).1 {
            Some(Edit::Done(l, _)) => assert_eq!(l.len(), ANSWER_MAX),
            other => panic!("{other:?}"),
        }
        assert!(LineEditor::swallows(true, b'\n'));
        assert!(LineEditor::swallows(true, 0));
        assert!(!LineEditor::swallows(false, b'\n'));
    }

    #[test]
    fn text_gets_cr_lf() {
        assert_eq!(crlf("a\nb\r\nc"), b"a\r\nb\r\nc");
    }
}
