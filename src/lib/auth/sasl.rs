//! SASL PLAIN (RFC 4616) and LOGIN payloads, and the base64 they travel in
//! (shared by smtpd's AUTH, pop3d's AUTH and imapd's AUTHENTICATE).

/// Decode standard base64 (padding optional, no white space).
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim_end_matches('=');
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Some(out)
}

pub fn b64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A decoded PLAIN response: (authorization id, user, password).
pub fn decode_plain(resp: &str) -> Option<(String, String, String)> {
    let raw = b64_decode(resp)?;
    let mut parts = raw.split(|&b| b == 0);
    let authz = parts.next()?;
    let user = parts.next()?;
    let pass = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    Some((
        String::from_utf8(authz.to_vec()).ok()?,
        String::from_utf8(user.to_vec()).ok()?,
        String::from_utf8(pass.to_vec()).ok()?,
    ))
}

/// A decoded LOGIN step (user name or password).
pub fn decode_text(resp: &str) -> Option<String> {
    String::from_utf8(b64_decode(resp)?)
        .ok()
        .filter(|s| !s.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_roundtrip() {
        for s in ["", "a", "ab", "abc", "abcd", "\0demo\0demo"] {
            assert_eq!(b64_decode(&b64_encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(b64_encode(b"Username:"), "VXNlcm5hbWU6");
        assert_eq!(b64_decode("AGRlbW8AZGVtbw==").unwrap(), b"\0demo\0demo");
        assert_eq!(b64_decode("AGRlbW8AZGVtbw").unwrap(), b"\0demo\0demo");
        assert!(b64_decode("a").is_none());
        assert!(b64_decode("a*bc").is_none());
    }

    #[test]
    fn plain() {
        assert_eq!(
            decode_plain("AGRlbW8AZGVtbw=="),
            Some(("".into(), "demo".into(), "demo".into()))
        );
        assert_eq!(decode_plain(&b64_encode(b"demo")), None);
        assert_eq!(decode_plain(&b64_encode(b"a\0b\0c\0d")), None);
    }
}
