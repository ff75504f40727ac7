//! The configuration: `key = value` lines from a file, then `-o KEY=VALUE`
//! overrides, checked against the daemon's schema. An unknown key or a bad
//! value is an error naming the file, line and key; nothing is ignored.
//!
//! Loading checks each value by its kind; then the typed forms are built
//! once (`Common` for the keys every daemon takes, one struct per daemon
//! from its `Service::config` builder) and kept inside the `Settings`.
//! Sessions read fields of those (`settings.common()`,
//! `settings.daemon::<ftp::Config>()`); the string-keyed getters below are
//! for the builders.

mod common;

pub use common::{Common, LogTo};

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The type of a configuration value, which decides how it is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `yes` or `no`.
    Bool,
    /// A non-negative integer.
    Uint,
    /// Seconds, a non-negative integer.
    Duration,
    /// Free text (may be empty).
    Text,
    /// A file or directory name: must be absolute when non-empty.
    Path,
    /// Comma-separated words.
    List,
    /// Comma-separated `ADDR:PORT` items, IPv6 as `[ADDR]:PORT`.
    Addrs,
    /// Comma-separated CIDR networks (`127.0.0.0/8`, `::1/128`).
    Networks,
    /// `LOW-HIGH` port range, or empty.
    PortRange,
    /// An octal file-mode mask such as `022`.
    Umask,
    /// `syslog` or `stderr`.
    LogTarget,
    /// A syslog facility name.
    Facility,
}

/// One key of a daemon's schema.
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    pub name: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    pub help: &'static str,
}

impl KeySpec {
    pub const fn new(
        name: &'static str,
        kind: Kind,
        default: &'static str,
        help: &'static str,
    ) -> Self {
        KeySpec {
            name,
            kind,
            default,
            help,
        }
    }
}

/// The keys every daemon takes (CONTRACT.md). Defaults that depend on the
/// daemon (listen, pam_service, log_facility, idle_timeout) are filled in by
/// the service description.
pub const COMMON_KEYS: &[KeySpec] = &[
    KeySpec::new("listen", Kind::Addrs, "", "plain listening addresses"),
    KeySpec::new("tls_listen", Kind::Addrs, "", "implicit-TLS addresses"),
    KeySpec::new("tls_cert", Kind::Path, "", "PEM certificate chain"),
    KeySpec::new("tls_key", Kind::Path, "", "PEM private key"),
    KeySpec::new("passwd_file", Kind::Path, "", "passwd(5) file of accounts"),
    KeySpec::new("pam_service", Kind::Text, "", "PAM service name"),
    KeySpec::new("log", Kind::LogTarget, "syslog", "syslog or stderr"),
    KeySpec::new("log_facility", Kind::Facility, "daemon", "syslog facility"),
    KeySpec::new("max_sessions", Kind::Uint, "200", "concurrent sessions"),
    KeySpec::new("max_per_ip", Kind::Uint, "20", "sessions per address"),
    KeySpec::new("idle_timeout", Kind::Duration, "600", "idle seconds"),
    KeySpec::new("login_attempts", Kind::Uint, "3", "failed logins allowed"),
    KeySpec::new("pid_file", Kind::Path, "", "pid file written by -D"),
    KeySpec::new("banner", Kind::Text, "", "greeting text"),
    KeySpec::new(
        "nopriv_user",
        Kind::Text,
        "nobody",
        "unprivileged account sessions run as before login",
    ),
    KeySpec::new(
        "login_timeout",
        Kind::Duration,
        "60",
        "seconds a client has to complete a login",
    ),
];

/// A daemon's typed configuration, as its builder returns it.
pub type DaemonConfig = Box<dyn Any + Send + Sync>;

/// Builds a daemon's typed configuration from the loaded settings, doing
/// the checks across its keys (`Service::config`). `settings.common()` is
/// already there to read.
pub type BuildConfig = fn(&Settings) -> Result<DaemonConfig, ConfigError>;

/// For daemons with no keys of their own.
pub fn no_daemon_config(_: &Settings) -> Result<DaemonConfig, ConfigError> {
    Ok(Box::new(()))
}

/// A checked value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    Uint(u64),
    Text(String),
    List(Vec<String>),
    Addrs(Vec<SocketAddr>),
    Networks(Vec<Network>),
    PortRange(Option<(u16, u16)>),
}

/// An IP network in CIDR form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl Network {
    pub fn parse(s: &str) -> Option<Network> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = a.trim_matches(|c| c == '[' || c == ']').parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().ok().filter(|&p| p <= max)?,
            None => max,
        };
        Some(Network { addr, prefix })
    }

    /// Whether `ip` is inside this network (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix as u32).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Where a setting came from, for error messages.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    Default,
    File(PathBuf, usize),
    Option,
}

/// A configuration error: names the file, line and key.
#[derive(Debug, PartialEq)]
pub struct ConfigError {
    pub origin: Origin,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File(p, line) => write!(f, "{}:{}: ", p.display(), line)?,
            Origin::Option => write!(f, "-o: ")?,
            Origin::Default => write!(f, "default: ")?,
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "key '{}': {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The schema of one daemon: the common keys, its own keys, and its own
/// defaults for common keys.
#[derive(Clone, Debug)]
pub struct Schema {
    keys: Vec<KeySpec>,
}

impl Schema {
    /// Common keys with `overrides` applied to their defaults, then `own`.
    pub fn new(own: &[KeySpec], overrides: &[(&'static str, String)]) -> Schema {
        let mut keys: Vec<KeySpec> = COMMON_KEYS.to_vec();
        keys.extend_from_slice(own);
        let mut schema = Schema { keys };
        for (name, value) in overrides {
            // Leaked once per process start: defaults live as long as the
            // program and there are a handful of them.
            let v: &'static str = Box::leak(value.clone().into_boxed_str());
            if let Some(k) = schema.keys.iter_mut().find(|k| k.name == *name) {
                k.default = v;
            }
        }
        schema
    }

    pub fn key(&self, name: &str) -> Option<&KeySpec> {
        self.keys.iter().find(|k| k.name == name)
    }

    pub fn keys(&self) -> &[KeySpec] {
        &self.keys
    }
}

/// The effective settings: every key of the schema with a checked value,
/// and once built, their typed forms.
#[derive(Clone)]
pub struct Settings {
    values: BTreeMap<&'static str, (Value, String, Origin)>,
    pub file: Option<PathBuf>,
    // Behind Arcs so that a Settings stays cheap to clone and shareable
    // with the sessions forked from the master.
    common: Option<Arc<Common>>,
    daemon: Option<Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("file", &self.file)
            .field("values", &self.values)
            .field("common", &self.common)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Defaults only.
    pub fn defaults(schema: &Schema) -> Settings {
        let mut values = BTreeMap::new();
        for k in schema.keys() {
            let v = parse_value(k.kind, k.default)
                .unwrap_or_else(|e| panic!("built-in default of {} is invalid: {}", k.name, e));
            values.insert(k.name, (v, k.default.to_string(), Origin::Default));
        }
        Settings {
            values,
            file: None,
            common: None,
            daemon: None,
        }
    }

    /// Build the typed forms: `Common`, then the daemon's own with `build`
    /// (which may read `common()`). Done once per load: at start, on
    /// SIGHUP and for -t, so that every check runs before anything serves.
    pub fn build_typed(
        &mut self,
        extra_listeners: &[&'static str],
        build: BuildConfig,
    ) -> Result<(), ConfigError> {
        self.common = Some(Arc::new(Common::build(self, extra_listeners)?));
        self.daemon = Some(Arc::from(build(self)?));
        Ok(())
    }

    /// The keys every daemon takes, typed.
    pub fn common(&self) -> &Common {
        self.common
            .as_deref()
            .expect("Settings::common() before build_typed()")
    }

    /// The daemon's typed configuration. Asking for another type than its
    /// builder made is a programming error, caught by any test that runs it.
    pub fn daemon<T: Any>(&self) -> &T {
        let daemon = self
            .daemon
            .as_deref()
            .expect("Settings::daemon() before build_typed()");
        match daemon.downcast_ref::<T>() {
            Some(t) => t,
            None => panic!(
                "the daemon's configuration is not a {}",
                std::any::type_name::<T>()
            ),
        }
    }

    /// Defaults, then the file's lines, then each `KEY=VALUE` override.
    pub fn load(
        schema: &Schema,
        file: Option<&Path>,
        overrides: &[String],
    ) -> Result<Settings, ConfigError> {
        let mut s = Settings::defaults(schema);
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                origin: Origin::File(path.to_path_buf(), 0),
                key: String::new(),
                message: format!("cannot read: {e}"),
            })?;
            s.apply_text(schema, &text, path)?;
            s.file = Some(path.to_path_buf());
        }
        for o in overrides {
            let (k, v) = o.split_once('=').ok_or_else(|| ConfigError {
                origin: Origin::Option,
                key: o.clone(),
                message: "expected KEY=VALUE".into(),
            })?;
            s.set(schema, k.trim(), v.trim(), Origin::Option)?;
        }
        Ok(s)
    }

    /// Apply the lines of a configuration file.
    pub fn apply_text(
        &mut self,
        schema: &Schema,
        text: &str,
        path: &Path,
    ) -> Result<(), ConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let origin = Origin::File(path.to_path_buf(), i + 1);
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(ConfigError {
                    origin,
                    key: line.split_whitespace().next().unwrap_or("").into(),
                    message: "expected 'key = value'".into(),
                });
            };
            self.set(schema, k.trim(), v.trim(), origin)?;
        }
        Ok(())
    }

    /// Set one key from text, checking it against the schema.
    pub fn set(
        &mut self,
        schema: &Schema,
        key: &str,
        value: &str,
        origin: Origin,
    ) -> Result<(), ConfigError> {
        let Some(spec) = schema.key(key) else {
            return Err(ConfigError {
                origin,
                key: key.into(),
                message: "unknown key".into(),
            });
        };
        let v = parse_value(spec.kind, value).map_err(|message| ConfigError {
            origin: origin.clone(),
            key: key.into(),
            message,
        })?;
        self.values
            .insert(spec.name, (v, value.to_string(), origin));
        Ok(())
    }

    fn get(&self, key: &str) -> &Value {
        match self.values.get(key) {
            Some((v, _, _)) => v,
            None => panic!("configuration key {key} is not in the schema"),
        }
    }

    pub fn bool(&self, key: &str) -> bool {
        match self.get(key) {
            Value::Bool(b) => *b,
            v => panic!("{key} is not a boolean: {v:?}"),
        }
    }

    pub fn uint(&self, key: &str) -> u64 {
        match self.get(key) {
            Value::Uint(n) => *n,
            v => panic!("{key} is not a number: {v:?}"),
        }
    }

    pub fn duration(&self, key: &str) -> std::time::Duration {
        std::time::Duration::from_secs(self.uint(key))
    }

    /// Text or path; empty means unset.
    pub fn text(&self, key: &str) -> &str {
        match self.get(key) {
            Value::Text(s) => s,
            v => panic!("{key} is not text: {v:?}"),
        }
    }

    /// Text or path, None when empty.
    pub fn opt_text(&self, key: &str) -> Option<&str> {
        Some(self.text(key)).filter(|s| !s.is_empty())
    }

    pub fn path(&self, key: &str) -> Option<PathBuf> {
        self.opt_text(key).map(PathBuf::from)
    }

    pub fn list(&self, key: &str) -> &[String] {
        match self.get(key) {
            Value::List(l) => l,
            v => panic!("{key} is not a list: {v:?}"),
        }
    }

    pub fn addrs(&self, key: &str) -> &[SocketAddr] {
        match self.get(key) {
            Value::Addrs(a) => a,
            v => panic!("{key} is not an address list: {v:?}"),
        }
    }

    pub fn networks(&self, key: &str) -> &[Network] {
        match self.get(key) {
            Value::Networks(n) => n,
            v => panic!("{key} is not a network list: {v:?}"),
        }
    }

    pub fn port_range(&self, key: &str) -> Option<(u16, u16)> {
        match self.get(key) {
            Value::PortRange(r) => *r,
            v => panic!("{key} is not a port range: {v:?}"),
        }
    }

    /// Where a setting's value came from.
    /// An error about `key`, naming where its value came from (file and
    /// line, `-o`, or the default): what a builder returns for a bad value.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: self.origin(key),
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn origin(&self, key: &str) -> Origin {
        self.values
            .get(key)
            .map(|(_, _, o)| o.clone())
            .unwrap_or(Origin::Default)
    }

    /// The raw text of a setting, as written or defaulted.
    /// The name a daemon gives itself in replies other than its banner
    /// (smtpd's busy 421): its own `hostname` key where its schema has one
    /// and it is set, else this host's fully qualified name.
    pub fn reply_name(&self) -> String {
        match self.values.get("hostname") {
            Some((_, raw, _)) if !raw.is_empty() => raw.clone(),
            _ => crate::host::fqdn(),
        }
    }

    pub fn raw(&self, key: &str) -> &str {
        self.values
            .get(key)
            .map(|(_, r, _)| r.as_str())
            .unwrap_or("")
    }

    /// Every setting as `key = value`, sorted, for `-t`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (k, (v, raw, _)) in &self.values {
            let shown = match v {
                Value::Addrs(a) => a
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                Value::Networks(n) => n
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                _ => raw.clone(),
            };
            out.push_str(&format!("{k} = {shown}\n"));
        }
        out
    }
}

fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

/// Parse one `ADDR:PORT` item. `*:PORT` means every IPv4 and IPv6 address.
pub fn parse_addr(item: &str) -> Result<Vec<SocketAddr>, String> {
    if let Some(port) = item.strip_prefix("*:") {
        let p: u16 = port.parse().map_err(|_| format!("bad port in '{item}'"))?;
        return Ok(vec![
            SocketAddr::from(([0, 0, 0, 0], p)),
            SocketAddr::from(([0u16; 8], p)),
        ]);
    }
    item.parse::<SocketAddr>()
        .map(|a| vec![a])
        .map_err(|_| format!("'{item}' is not ADDR:PORT (IPv6 as [ADDR]:PORT)"))
}

/// Check and convert the text of a value of the given kind.
pub fn parse_value(kind: Kind, s: &str) -> Result<Value, String> {
    match kind {
        Kind::Bool => match s {
            "yes" => Ok(Value::Bool(true)),
            "no" => Ok(Value::Bool(false)),
            _ => Err(format!("'{s}' is not yes or no")),
        },
        Kind::Uint | Kind::Duration => s
            .parse::<u64>()
            .map(Value::Uint)
            .map_err(|_| format!("'{s}' is not a non-negative integer")),
        Kind::Text => Ok(Value::Text(s.to_string())),
        Kind::Path => {
            if s.is_empty() || s.starts_with('/') {
                Ok(Value::Text(s.to_string()))
            } else {
                Err(format!("'{s}' is not an absolute path"))
            }
        }
        Kind::List => Ok(Value::List(split_list(s))),
        Kind::Addrs => {
            let mut out = Vec::new();
            for item in split_list(s) {
                out.extend(parse_addr(&item)?);
            }
            Ok(Value::Addrs(out))
        }
        Kind::Networks => split_list(s)
            .iter()
            .map(|n| Network::parse(n).ok_or_else(|| format!("'{n}' is not a CIDR network")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Networks),
        Kind::PortRange => {
            if s.is_empty() {
                return Ok(Value::PortRange(None));
            }
            let bad = || format!("'{s}' is not LOW-HIGH with 1 <= LOW <= HIGH <= 65535");
            let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
            let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
            let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
            if lo == 0 || lo > hi {
                return Err(bad());
            }
            Ok(Value::PortRange(Some((lo, hi))))
        }
        Kind::Umask => match u32::from_str_radix(s, 8) {
            Ok(m) if m <= 0o777 => Ok(Value::Uint(m as u64)),
            _ => Err(format!("'{s}' is not an octal mask such as 022")),
        },
        Kind::LogTarget => match s {
            "syslog" | "stderr" => Ok(Value::Text(s.to_string())),
            _ => Err(format!("'{s}' is not syslog or stderr")),
        },
        Kind::Facility => {
            if super::log::facility_from_name(s).is_some() {
                Ok(Value::Text(s.to_string()))
            } else {
                Err(format!("'{s}' is not a syslog facility"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &[KeySpec] = &[
        KeySpec::new("anonymous", Kind::Bool, "no", ""),
        KeySpec::new("pasv_ports", Kind::PortRange, "", ""),
        KeySpec::new("umask", Kind::Umask, "022", ""),
        KeySpec::new("relay_from", Kind::Networks, "127.0.0.0/8, ::1/128", ""),
    ];

    fn schema() -> Schema {
        Schema::new(OWN, &[("listen", "0.0.0.0:21,[::]:21".to_string())])
    }

    #[test]
    fn defaults_fill_every_key() {
        let s = Settings::defaults(&schema());
        assert_eq!(s.uint("max_sessions"), 200);
        assert!(!s.bool("anonymous"));
        assert_eq!(s.addrs("listen").len(), 2);
        assert_eq!(s.uint("umask"), 0o22);
        assert_eq!(s.opt_text("tls_cert"), None);
    }

    #[test]
    fn file_then_overrides() {
        let mut s = Settings::defaults(&schema());
        let text = "# comment\n\nanonymous = yes   # trailing\nmax_sessions=5\n";
        s.apply_text(&schema(), text, Path::new("/etc/x.conf"))
            .unwrap();
        assert!(s.bool("anonymous"));
        assert_eq!(s.uint("max_sessions"), 5);
        s.set(&schema(), "max_sessions", "7", Origin::Option)
            .unwrap();
        assert_eq!(s.uint("max_sessions"), 7);
    }

    #[test]
    fn unknown_key_names_file_line_key() {
        let mut s = Settings::defaults(&schema());
        let err = s
            .apply_text(&schema(), "\nfoo = 1\n", Path::new("/etc/x.conf"))
            .unwrap_err();
        assert_eq!(err.to_string(), "/etc/x.conf:2: key 'foo': unknown key");
    }

    #[test]
    fn bad_values_rejected() {
        let sc = schema();
        let mut s = Settings::defaults(&sc);
        for (k, v) in [
            ("anonymous", "true"),
            ("max_sessions", "-1"),
            ("listen", "localhost"),
            ("listen", "1.2.3.4"),
            ("pasv_ports", "5000-4000"),
            ("pasv_ports", "0-10"),
            ("umask", "999"),
            ("log", "file"),
            ("log_facility", "nope"),
            ("tls_cert", "relative.pem"),
            ("relay_from", "10.0.0.0/33"),
        ] {
            let e = s.set(&sc, k, v, Origin::Option).unwrap_err();
            assert_eq!(e.key, k, "{k}={v}");
        }
        let e = s
            .apply_text(&sc, "just words\n", Path::new("/f"))
            .unwrap_err();
        assert!(e.to_string().starts_with("/f:1:"));
    }

    #[test]
    fn addresses_parse_v4_v6_and_star() {
        let v = parse_value(Kind::Addrs, "127.0.0.1:2121, [::1]:2121,*:21").unwrap();
        let Value::Addrs(a) = v else { panic!() };
        assert_eq!(a.len(), 4);
        assert!(a[1].is_ipv6());
    }

    #[test]
    fn networks_contain() {
        let n = Network::parse("127.0.0.0/8").unwrap();
        assert!(n.contains("127.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!n.contains("10.0.0.1".parse().unwrap()));
        let z = Network::parse("0.0.0.0/0").unwrap();
        assert!(z.contains("8.8.8.8".parse().unwrap()));
        let six = Network::parse("::1/128").unwrap();
        assert!(six.contains("::1".parse().unwrap()));
        assert!(!six.contains("::2".parse().unwrap()));
    }

    #[test]
    fn typed_forms_are_built_once_and_shared() {
        let sc = schema();
        let mut s = Settings::load(&sc, None, &["max_sessions=7".into()]).unwrap();
        s.build_typed(&[], |s| Ok(Box::new(s.uint("max_sessions") * 2)))
            .unwrap();
        assert_eq!(s.common().max_sessions, 7);
        assert_eq!(*s.daemon::<u64>(), 14);
        let copy = s.clone();
        assert!(std::ptr::eq(copy.common(), s.common()));
        assert_eq!(*copy.daemon::<u64>(), 14);
    }

    #[test]
    fn a_failing_builder_fails_the_load() {
        let mut s = Settings::load(&schema(), None, &["umask=077".into()]).unwrap();
        let e = s
            .build_typed(&[], |s| {
                Err(ConfigError {
                    origin: s.origin("umask"),
                    key: "umask".into(),
                    message: "too strict".into(),
                })
            })
            .unwrap_err();
        assert_eq!(e.to_string(), "-o: key 'umask': too strict");
    }

    #[test]
    #[should_panic(expected = "is not a alloc::string::String")]
    fn asking_for_another_type_is_a_programming_error() {
        let mut s = Settings::defaults(&schema());
        s.build_typed(&[], no_daemon_config).unwrap();
        s.daemon::<String>();
    }

    #[test]
    fn render_lists_every_key() {
        let s = Settings::defaults(&schema());
        let r = s.render();
        assert!(r.contains("anonymous = no\n"));
        assert!(r.contains("listen = 0.0.0.0:21,[::]:21\n"));
        assert_eq!(r.lines().count(), schema().keys().len());
    }
}
