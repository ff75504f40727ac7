//! Coming in: the lines of a dot-terminated block, as the bounded line
//! reader gives them, back to content lines.

use crate::net::Ending;

/// What one line of a block is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DotLine<'a> {
    /// The terminating "." line: the block is over.
    End,
    /// A content line, unstuffed, without its line end.
    Text(&'a [u8]),
}

/// Un-stuffing with the strict end rule: the block ends only at a "." line
/// ended by CRLF that follows a line ended by CRLF (`CRLF . CRLF`). A bare
/// LF is taken as the end of a text line but never as part of the end of
/// the block, so none of the SMTP-smuggling variants (`<LF>.<LF>`,
/// `<CR><LF>.<LF>`, `<LF>.<CR><LF>`, `<CR>.<CR>`...) ends a block early or
/// starts another; a lone "." that does not end it is content as it is.
#[derive(Clone, Debug)]
pub struct Unstuffer {
    /// The previous line ended with CRLF (the command line counts).
    after_crlf: bool,
    ended: bool,
}

impl Default for Unstuffer {
    fn default() -> Self {
        Unstuffer {
            after_crlf: true,
            ended: false,
        }
    }
}

impl Unstuffer {
    /// A block that follows a command line ended with CRLF (DATA, POST...).
    pub fn new() -> Unstuffer {
        Unstuffer::default()
    }

    /// Classify the next line (without its terminator); after the end,
    /// every line is `End`.
    pub fn line<'a>(&mut self, line: &'a [u8], ending: Ending) -> DotLine<'a> {
        if self.ended {
            return DotLine::End;
        }
        let after_crlf = std::mem::replace(&mut self.after_crlf, ending == Ending::CrLf);
        if line == b"." && ending == Ending::CrLf && after_crlf {
            self.ended = true;
            return DotLine::End;
        }
        match line {
            [b'.', rest @ ..] if !rest.is_empty() => DotLine::Text(rest),
            _ => DotLine::Text(line),
        }
    }

    pub fn ended(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_removed_and_only_crlf_dot_crlf_ends() {
        let mut u = Unstuffer::new();
        assert_eq!(u.line(b"..a", Ending::CrLf), DotLine::Text(b".a"));
        assert_eq!(u.line(b"..", Ending::CrLf), DotLine::Text(b"."));
        assert_eq!(u.line(b"x", Ending::Lf), DotLine::Text(b"x"));
        // After a bare LF, a "." line is content.
        assert_eq!(u.line(b".", Ending::CrLf), DotLine::Text(b"."));
        // A "." line ended by a bare LF is content too.
        assert_eq!(u.line(b".", Ending::Lf), DotLine::Text(b"."));
        assert!(!u.ended());
        assert_eq!(u.line(b"y", Ending::CrLf), DotLine::Text(b"y"));
        assert_eq!(u.line(b".", Ending::CrLf), DotLine::End);
        assert!(u.ended());
        assert_eq!(u.line(b"more", Ending::CrLf), DotLine::End);
    }

    #[test]
    fn an_empty_block_ends_at_once() {
        let mut u = Unstuffer::new();
        assert_eq!(u.line(b".", Ending::CrLf), DotLine::End);
    }
}
