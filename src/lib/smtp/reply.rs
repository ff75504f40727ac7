//! SMTP replies: a code, an RFC 3463 enhanced status, one or more lines.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code (`5.1.1`); None for 220/221 greetings and 334.
    pub status: Option<&'static str>,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status),
            lines: vec![text.into()],
        }
    }

    /// A reply without an enhanced status code.
    pub fn plain(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines: vec![text.into()],
        }
    }

    pub fn multi(code: u16, status: Option<&'static str>, lines: Vec<String>) -> Reply {
        Reply {
            code,
            status,
            lines,
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The reply as sent on the wire, CRLF-terminated lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.lines.len().max(1);
        for i in 0..n {
            let sep = if i + 1 == n { ' ' } else { '-' };
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            // Replies never carry a client's CR or LF onwards.
            let text: String = text
                .chars()
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                .collect();
            match self.status {
                Some(s) => write!(f, "{}{}{} {}\r\n", self.code, sep, s, text)?,
                None => write!(f, "{}{}{}\r\n", self.code, sep, text)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        assert_eq!(
            Reply::new(250, "2.0.0", "Ok").to_string(),
            "250 2.0.0 Ok\r\n"
        );
        assert_eq!(Reply::plain(334, "").to_string(), "334 \r\n");
        let m = Reply::multi(250, None, vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(m.to_string(), "250-a\r\n250-b\r\n250 c\r\n");
        assert_eq!(
            Reply::new(550, "5.1.1", "x\r\ny").to_string(),
            "550 5.1.1 x  y\r\n"
        );
    }
}
