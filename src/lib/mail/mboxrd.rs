//! mboxrd quoting: a body line matching `^>*From ` gets one more `>` when
//! it is stored in an mbox, and loses one when it is read back, so that no
//! body line is ever taken for a message separator.

/// mboxrd quoting: `quote` turns lines matching `^>*From ` into `>` + line;
/// unquoting removes one `>` from lines matching `^>+From `. Fed in pieces,
/// constant memory (a run of `>` is counted, not stored).
#[derive(Clone, Debug)]
pub struct FromQuoter {
    quote: bool,
    at_start: bool,
    /// At line start: the number of '>' seen, then how much of "From " matched.
    gts: u64,
    matched: usize,
    pending: bool,
}

const FROM_: &[u8] = b"From ";

impl FromQuoter {
    pub fn quoter() -> FromQuoter {
        FromQuoter::new(true)
    }

    pub fn unquoter() -> FromQuoter {
        FromQuoter::new(false)
    }

    fn new(quote: bool) -> FromQuoter {
        FromQuoter {
            quote,
            at_start: true,
            gts: 0,
            matched: 0,
            pending: false,
        }
    }

    fn flush_pending(&mut self, out: &mut Vec<u8>) {
        for _ in 0..self.gts {
            out.push(b'>');
        }
        out.extend_from_slice(&FROM_[..self.matched]);
        self.gts = 0;
        self.matched = 0;
        self.pending = false;
    }

    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            if self.at_start {
                let b = input[0];
                if self.matched == 0 && b == b'>' {
                    self.gts += 1;
                    self.pending = true;
                    input = &input[1..];
                    continue;
                }
                if b == FROM_[self.matched] {
                    self.matched += 1;
                    self.pending = true;
                    input = &input[1..];
                    if self.matched == FROM_.len() {
                        let gts = if self.quote {
                            self.gts + 1
                        } else {
                            self.gts.saturating_sub(1)
                        };
                        self.gts = gts;
                        self.flush_pending(out);
                        self.at_start = false;
                    }
                    continue;
                }
                self.flush_pending(out);
                self.at_start = false;
            }
            match input.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    out.extend_from_slice(&input[..=p]);
                    input = &input[p + 1..];
                    self.at_start = true;
                }
                None => {
                    out.extend_from_slice(input);
                    input = &[];
                }
            }
        }
    }

    /// End of input: emit a pending partial match.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.pending {
            self.flush_pending(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(quoter: FromQuoter, input: &[u8], piece: usize) -> Vec<u8> {
        let mut q = quoter;
        let mut out = Vec::new();
        for c in input.chunks(piece.max(1)) {
            q.feed(c, &mut out);
        }
        q.finish(&mut out);
        out
    }

    #[test]
    fn from_quoting_round_trips() {
        let input = b"From a\nxFrom b\n>From c\n>>From d\n>Fro\nFrom\n>\n>>";
        for piece in [1, 2, 5, 100] {
            let quoted = q(FromQuoter::quoter(), input, piece);
            assert_eq!(
                quoted,
                b">From a\nxFrom b\n>>From c\n>>>From d\n>Fro\nFrom\n>\n>>".to_vec()
            );
            assert_eq!(q(FromQuoter::unquoter(), &quoted, piece), input.to_vec());
        }
    }
}
