//! The configuration file (classicd.conf(5)) of each daemon: loaded and
//! built with every check, as at start, SIGHUP and -t. What loads renders
//! (`-t`) to text that loads to the same settings and builds the same way.
#![no_main]
use std::path::Path;
use std::sync::OnceLock;

use classicd::runtime::config::{Schema, Settings};
use classicd::runtime::invocation::schema_for;
use classicd::runtime::Service;

fn services() -> &'static [(&'static Service, Schema)] {
    // Built once: a schema leaks its defaults (once per process start).
    static S: OnceLock<Vec<(&'static Service, Schema)>> = OnceLock::new();
    S.get_or_init(|| {
        [
            &classicd::ftp::SERVICE,
            &classicd::smtp::SERVICE,
            &classicd::pop3::SERVICE,
            &classicd::tftp::SERVICE,
        ]
        .into_iter()
        .map(|s| (s, schema_for(s)))
        .collect()
    })
}

fn load(service: &Service, schema: &Schema, text: &str) -> Option<(Settings, bool)> {
    let mut s = Settings::defaults(schema);
    s.apply_text(schema, text, Path::new("/etc/classicd.conf"))
        .ok()?;
    let built = s
        .build_typed(service.extra_listeners, service.config)
        .is_ok();
    Some((s, built))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&which, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let (service, schema) = &services()[which as usize % services().len()];
    let Some((first, built)) = load(service, schema, text) else {
        return;
    };
    let rendered = first.render();
    let (second, built_again) = load(service, schema, &rendered)
        .unwrap_or_else(|| panic!("-t output does not load:\n{rendered}"));
    assert_eq!(
        second.render(),
        rendered,
        "-t output loads to other settings"
    );
    assert_eq!(
        built, built_again,
        "-t output builds otherwise:\n{rendered}"
    );
});
