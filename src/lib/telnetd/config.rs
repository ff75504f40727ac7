//! telnetd's keys (CONTRACT.md: `login`, `issue_file`) and their typed
//! form, built once at load.
//!
//! `login = PROGRAM ARGS` is cut into words here, from the configuration
//! alone; at a connection each word is expanded on its own (`%h`), so no
//! client data can add or split an argument.

use std::path::PathBuf;

use crate::runtime::config::{ConfigError, DaemonConfig, KeySpec, Kind, Settings};

pub const KEYS: &[KeySpec] = &[
    KeySpec::new(
        "login",
        Kind::Text,
        "builtin",
        "builtin, or a login program and its arguments (%h: the client's host)",
    ),
    KeySpec::new(
        "issue_file",
        Kind::Path,
        "/etc/issue.net",
        "shown before the login prompt (empty: nothing)",
    ),
];

/// One piece of a login program's argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    /// `%h`: the client's forward-confirmed host name, else its address.
    Host,
}

/// One argument, expanded at each connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg(pub Vec<Piece>);

impl Arg {
    pub fn expand(&self, host: &str) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.as_str(),
                Piece::Host => host,
            })
            .collect()
    }
}

/// How a client logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Login {
    /// telnetd prompts, checks, and starts the account's shell.
    Builtin,
    /// A program run as root on the terminal, which authenticates itself.
    Program { path: PathBuf, args: Vec<Arg> },
}

/// telnetd's configuration, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub login: Login,
    /// None: show nothing.
    pub issue_file: Option<PathBuf>,
}

/// `Service::config` of telnetd.
pub fn build(s: &Settings) -> Result<DaemonConfig, ConfigError> {
    Ok(Box::new(Config::from_settings(s)?))
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Config, ConfigError> {
        let login = parse_login(s.text("login")).map_err(|e| s.error("login", e))?;
        if !s.common().tls_listen.is_empty() {
            return Err(s.error("tls_listen", "telnetd speaks no TLS"));
        }
        Ok(Config {
            login,
            issue_file: s.path("issue_file"),
        })
    }
}

/// `builtin`, or an absolute program path and its arguments.
pub fn parse_login(text: &str) -> Result<Login, String> {
    let text = text.trim();
    if text == "builtin" {
        return Ok(Login::Builtin);
    }
    let mut words = text.split_whitespace();
    let program = words.next().ok_or("empty: 'builtin' or a program")?;
    let path = PathBuf::from(program);
    if !path.is_absolute() {
        return Err(format!("'{program}' is not an absolute path"));
    }
    if program.contains('%') {
        return Err("the program's path may not hold %".into());
    }
    let args = words.map(parse_arg).collect::<Result<Vec<_>, _>>()?;
    Ok(Login::Program { path, args })
}

fn parse_arg(word: &str) -> Result<Arg, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => text.push('%'),
            Some('h') => {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Host);
            }
            Some(other) => {
                return Err(format!(
                    "unknown escape %{other} in '{word}' (only %h and %%)"
                ))
            }
            None => return Err(format!("'{word}' ends with a lone %")),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(Arg(pieces))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::invocation::load_options;

    fn config(options: &[&str]) -> Result<Config, ConfigError> {
        load_options(&super::super::SERVICE, options).map(|s| s.daemon::<Config>().clone())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.login, Login::Builtin);
        assert_eq!(c.issue_file, Some(PathBuf::from("/etc/issue.net")));
        assert_eq!(config(&["issue_file="]).unwrap().issue_file, None);
    }

    #[test]
    fn login_programs_are_cut_at_load() {
        let c = config(&["login=/bin/login -p -h %h"]).unwrap();
        let Login::Program { path, args } = c.login else {
            panic!()
        };
        assert_eq!(path, PathBuf::from("/bin/login"));
        let expanded: Vec<String> = args.iter().map(|a| a.expand("host.example")).collect();
        assert_eq!(expanded, ["-p", "-h", "host.example"]);
        // An expansion is one argument whatever it holds.
        let spaced: Vec<String> = args.iter().map(|a| a.expand("a b -f root")).collect();
        assert_eq!(spaced.len(), 3);
        let Login::Program { args, .. } = parse_login("/x --host=%h 100%%").unwrap() else {
            panic!()
        };
        let expanded: Vec<String> = args.iter().map(|a| a.expand("h")).collect();
        assert_eq!(expanded, ["--host=h", "100%"]);
    }

    #[test]
    fn bad_login_values() {
        for bad in [
            "login=",
            "login=login -p",
            "login=/bin/login %u",
            "login=/bin/login -h %",
            "login=/bin/%h",
        ] {
            assert_eq!(config(&[bad]).unwrap_err().key, "login", "{bad}");
        }
        assert_eq!(config(&["issue_file=issue"]).unwrap_err().key, "issue_file");
    }
}
