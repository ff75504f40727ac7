//! The login prompt's line discipline, before there is a terminal: the
//! client types a character at a time (we said WILL ECHO), so we echo
//! (or not, for a password) and edit the line as a terminal would: erase
//! (DEL, BS, IAC EC), kill (^U, IAC EL), word erase (^W), interrupt (^C,
//! IAC IP: the login is abandoned), end of file (^D on an empty line).
//! Bounded: a line longer than its maximum stops growing.

/// How a prompt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The line, without its end.
    Line(Vec<u8>),
    /// Interrupted, or end of file: no answer.
    Abandoned,
}

/// One prompt's line being typed.
#[derive(Clone, Debug)]
pub struct LineEditor {
    line: Vec<u8>,
    echo: bool,
    max: usize,
    done: Option<Outcome>,
}

impl LineEditor {
    pub fn new(echo: bool, max: usize) -> LineEditor {
        LineEditor {
            line: Vec::new(),
            echo,
            max,
            done: None,
        }
    }

    pub fn finished(&self) -> Option<&Outcome> {
        self.done.as_ref()
    }

    pub fn take(&mut self) -> Option<Outcome> {
        self.done.take()
    }

    /// The person interrupted (IAC IP, BRK): the line is abandoned.
    pub fn interrupt(&mut self, echo_out: &mut Vec<u8>) {
        if self.done.is_none() {
            echo_out.extend_from_slice(b"^C\r\n");
            self.done = Some(Outcome::Abandoned);
        }
    }

    /// Bytes typed (NVT end of line already applied: CR ends a line).
    /// Consumes up to the end of the line; returns the count. What to
    /// show the person goes to `echo_out`.
    pub fn feed(&mut self, bytes: &[u8], echo_out: &mut Vec<u8>) -> usize {
        for (i, &b) in bytes.iter().enumerate() {
            if self.done.is_some() {
                return i;
            }
            match b {
                b'\r' | b'\n' => {
                    echo_out.extend_from_slice(b"\r\n");
                    self.done = Some(Outcome::Line(std::mem::take(&mut self.line)));
                }
                0x7f | 0x08 => self.erase(1, echo_out),
                0x15 => self.erase(self.line.len(), echo_out),
                0x17 => {
                    let keep = self.line.trim_ascii_end().len();
                    let word = self.line[..keep]
                        .iter()
                        .rposition(|&c| c == b' ')
                        .map_or(0, |p| p + 1);
                    let chars = count_chars(&self.line[word..]);
                    self.erase(chars, echo_out);
                }
                0x03 => self.interrupt(echo_out),
                0x04 if self.line.is_empty() => {
                    echo_out.extend_from_slice(b"\r\n");
                    self.done = Some(Outcome::Abandoned);
                }
                c if c < 0x20 => {}
                c => {
                    if self.line.len() < self.max {
                        self.line.push(c);
                        if self.echo {
                            echo_out.push(c);
                        }
                    }
                }
            }
        }
        bytes.len()
    }

    /// Erase `n` characters (UTF-8 aware) from the end.
    fn erase(&mut self, n: usize, echo_out: &mut Vec<u8>) {
        for _ in 0..n {
            let Some(start) = last_char_start(&self.line) else {
                return;
            };
            self.line.truncate(start);
            if self.echo {
                echo_out.extend_from_slice(b"\x08 \x08");
            }
        }
    }
}

fn last_char_start(line: &[u8]) -> Option<usize> {
    let mut i = line.len().checked_sub(1)?;
    while i > 0 && line[i] & 0xc0 == 0x80 {
        i -= 1;
    }
    Some(i)
}

fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xc0 != 0x80).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(echo: bool, input: &[u8]) -> (Option<Outcome>, Vec<u8>, usize) {
        let mut e = LineEditor::new(echo, 16);
        let mut out = Vec::new();
        let n = e.feed(input, &mut out);
        (e.take(), out, n)
    }

    #[test]
    fn a_line_and_its_echo() {
        let (o, echo, n) = typed(true, b"demo\rpass");
        assert_eq!(o, Some(Outcome::Line(b"demo".to_vec())));
        assert_eq!(echo, b"demo\r\n");
        assert_eq!(n, 5, "what follows the line stays for the next prompt");
    }

    #[test]
    fn passwords_are_not_echoed() {
        let (o, echo, _) = typed(false, b"s3cret\r");
        assert_eq!(o, Some(Outcome::Line(b"s3cret".to_vec())));
        assert_eq!(echo, b"\r\n");
    }

    #[test]
    fn editing() {
        let (o, echo, _) = typed(true, b"demx\x7fo\r");
        assert_eq!(o, Some(Outcome::Line(b"demo".to_vec())));
        assert_eq!(echo, b"demx\x08 \x08o\r\n");
        let (o, _, _) = typed(true, b"junk\x15demo\r");
        assert_eq!(o, Some(Outcome::Line(b"demo".to_vec())));
        let (o, _, _) = typed(true, b"a bc\x17d\r");
        assert_eq!(o, Some(Outcome::Line(b"a d".to_vec())));
        let (o, _, _) = typed(true, "d\u{e9}\x08\x08x\r".as_bytes());
        assert_eq!(o, Some(Outcome::Line(b"x".to_vec())));
        // Erasing an empty line does nothing (IAC EC first thing).
        let (o, echo, _) = typed(true, b"\x7f\x15\x17\r");
        assert_eq!(o, Some(Outcome::Line(vec![])));
        assert_eq!(echo, b"\r\n");
    }

    #[test]
    fn interrupt_and_end_of_file() {
        let (o, _, _) = typed(true, b"dem\x03o\r");
        assert_eq!(o, Some(Outcome::Abandoned));
        let (o, _, _) = typed(true, b"\x04");
        assert_eq!(o, Some(Outcome::Abandoned));
        // ^D with something typed is ignored.
        let (o, _, _) = typed(true, b"a\x04\r");
        assert_eq!(o, Some(Outcome::Line(b"a".to_vec())));
        let mut e = LineEditor::new(true, 8);
        let mut out = Vec::new();
        e.interrupt(&mut out);
        assert_eq!(e.take(), Some(Outcome::Abandoned));
    }

    #[test]
    fn lines_are_bounded_and_controls_dropped() {
        let (o, echo, _) = typed(
            true,
            &[b'a'; 100]
                .iter()
                .chain(b"\x1b[A\r")
                .copied()
                .collect::<Vec<_>>(),
        );
        assert_eq!(o, Some(Outcome::Line(vec![b'a'; 16])));
        assert_eq!(echo.len(), 18);
    }
}
