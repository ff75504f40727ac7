//! aliases(5), ~/.forward and :include: files, and the expansion of a
//! local recipient through them. The input is sections separated by NUL:
//! the aliases file, the .forward of "demo", an include file, the local
//! part asked for. The expansion ends (loops are detected), stays bounded
//! and names each target once.
#![no_main]
use classicd::smtp::aliases::{self, Aliases, Directory, Resolution};

struct Fake<'a> {
    forward: &'a str,
    include: &'a str,
}

impl Directory for Fake<'_> {
    fn account(&self, name: &str) -> Result<Option<String>, String> {
        Ok(match name {
            "demo" | "root" | "other" => Some(name.to_string()),
            "broken" => return Err("store unavailable".into()),
            _ => None,
        })
    }
    fn forward(&self, account: &str) -> Option<String> {
        (account == "demo").then(|| self.forward.to_string())
    }
    fn include(&self, path: &str) -> Result<String, String> {
        match path {
            "/etc/mail/list" => Ok(self.include.to_string()),
            _ => Err("no such file".into()),
        }
    }
    fn is_local_domain(&self, domain: &str) -> bool {
        domain.eq_ignore_ascii_case("here.test")
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = s.split('\0');
    let table = parts.next().unwrap_or("");
    let dir = Fake {
        forward: parts.next().unwrap_or(""),
        include: parts.next().unwrap_or(""),
    };
    let local = parts.next().unwrap_or("postmaster");
    let (a, _warnings) = Aliases::parse(table);
    let _ = aliases::split_entries(table);
    let (r, _) = aliases::resolve(&a, &dir, local);
    if let Resolution::Targets(t) = r {
        assert!(!t.is_empty() && t.len() <= 1000);
        for (i, x) in t.iter().enumerate() {
            assert!(!t[..i].contains(x), "{x:?} twice");
        }
    }
});
