//! The fields of the rsh handshake (rshd(8)), each NUL-terminated:
//! the stderr port in decimal (empty or "0": none), the client's user name,
//! the local user name, the command. Pure: bytes in, values or refusals out.

/// Longest stderr port field: "65535".
pub const PORT_MAX: usize = 5;
/// Longest user name (the bound; BSD's was 16).
pub const NAME_MAX: usize = 32;
/// Longest command: it crosses to the account's process in the hand-over
/// (16 KiB in all), so a little less.
pub const COMMAND_MAX: usize = 12 * 1024;

/// Why a field is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bad {
    /// The port field is not decimal digits, or over 65535.
    Port,
    /// A user name that is not one (empty, odd bytes, a leading '-').
    Name,
    /// A field longer than its bound.
    TooLong,
}

/// The stderr port: None when the client wants no second connection.
pub fn parse_port(field: &[u8]) -> Result<Option<u16>, Bad> {
    if field.len() > PORT_MAX {
        return Err(Bad::Port);
    }
    if field.is_empty() {
        return Ok(None);
    }
    if !field.iter().all(u8::is_ascii_digit) {
        return Err(Bad::Port);
    }
    let value: u32 = field.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'));
    match u16::try_from(value) {
        Ok(0) => Ok(None),
        Ok(port) => Ok(Some(port)),
        Err(_) => Err(Bad::Port),
    }
}

/// A user name from the network: at most NAME_MAX bytes of the safe set,
/// never starting with '-' (the `-froot` class: a name that a program
/// would take for an option).
pub fn parse_name(field: &[u8]) -> Result<String, Bad> {
    if field.len() > NAME_MAX {
        return Err(Bad::TooLong);
    }
    let name = std::str::from_utf8(field).map_err(|_| Bad::Name)?;
    if !crate::auth::plausible_name(name) {
        return Err(Bad::Name);
    }
    Ok(name.to_string())
}

/// The command: any bytes but NUL (it ends the field), at most COMMAND_MAX.
pub fn parse_command(field: &[u8]) -> Result<Vec<u8>, Bad> {
    if field.len() > COMMAND_MAX {
        return Err(Bad::TooLong);
    }
    Ok(field.to_vec())
}

/// Fuzz entry point: every field parser on the same bytes, none panics.
pub fn fuzz_rsh_fields(data: &[u8]) {
    let _ = parse_port(data);
    let _ = parse_name(data);
    let _ = parse_command(data);
    let mut m = super::state::Machine::new(false);
    let mut action = m.start(1000);
    for field in data.split(|&b| b == 0) {
        if !matches!(action, super::state::Action::ReadField { .. }) {
            break;
        }
        action = m.handle(super::state::Input::Field(field.to_vec()));
        if let super::state::Action::ConnectBack(_) = action {
            action = m.handle(super::state::Input::BackConnected(true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port(b""), Ok(None));
        assert_eq!(parse_port(b"0"), Ok(None));
        assert_eq!(parse_port(b"1022"), Ok(Some(1022)));
        assert_eq!(parse_port(b"00514"), Ok(Some(514)));
        assert_eq!(parse_port(b"65535"), Ok(Some(65535)));
        for bad in [
            &b"65536"[..],
            b"99999",
            b"100000",
            b"-1",
            b"+5",
            b" 5",
            b"5 ",
            b"0x10",
            b"1e3",
            b"\xff",
        ] {
            assert_eq!(parse_port(bad), Err(Bad::Port), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(parse_name(b"alice").as_deref(), Ok("alice"));
        assert_eq!(parse_name(&[b'a'; 32]).map(|n| n.len()), Ok(32));
        assert_eq!(parse_name(&[b'a'; 33]), Err(Bad::TooLong));
        for bad in [
            &b""[..],
            b"-froot",
            b"-",
            b"a b",
            b"a\tb",
            b"a\nb",
            b"../x",
            b"x:y",
            b"\xc3\xa9",
        ] {
            assert_eq!(parse_name(bad), Err(Bad::Name), "{bad:?}");
        }
    }

    #[test]
    fn commands() {
        assert_eq!(
            parse_command(b"ls -l; echo $HOME"),
            Ok(b"ls -l; echo $HOME".to_vec())
        );
        assert_eq!(parse_command(b"").unwrap(), b"");
        assert_eq!(
            parse_command(&vec![b'x'; COMMAND_MAX]).unwrap().len(),
            COMMAND_MAX
        );
        assert_eq!(
            parse_command(&vec![b'x'; COMMAND_MAX + 1]),
            Err(Bad::TooLong)
        );
    }

    #[test]
    fn fuzz_entry_survives_odd_input() {
        for data in [
            &b""[..],
            b"\0\0\0\0",
            b"514\0bob\0alice\0ls\0",
            b"99999999\0",
            b"\xff\xfe\0-x\0",
        ] {
            fuzz_rsh_fields(data);
        }
    }
}
